"""Environments that speak TensorDict: reset, step and rollout with specs.

An environment reads ``"action"`` from a TensorDict and writes what follows under
``"next"``: ``("next", "observation")``, ``("next", "reward")``, ``("next", "done")``,
``("next", "terminated")``, ``("next", "truncated")``. A rollout stacks those
transitions along a time dim after the env's batch dims.
Built in chapter *TensorDict, specs and environments*; mirrors ``torchrl.envs`` of
torchrl 0.14 (``EnvBase``, ``GymEnv``, ``TransformedEnv``, ``Transform``, ``Compose``,
``TensorDictPrimer``, ``InitTracker``, ``step_mdp``).
"""

from __future__ import annotations

import difflib

import numpy as np
import torch
from tensordict import LazyStackedTensorDict, TensorDict, TensorDictBase, unravel_key
from tensordict.nn import InteractionType, set_interaction_type
from tensordict.nn.probabilistic import interaction_type
from torch import nn

from rlmods._checks import (InvalidValueError, get_entry, require_key, shape_str,
                            validate_args)
from rlmods._keys import (ACTION, DONE, IS_INIT, NEXT, OBSERVATION, REWARD, TERMINATED,
                          TRUNCATED)
from rlmods.specs import (Binary, Bounded, Categorical, Composite, MultiCategorical,
                          MultiOneHot, OneHot, TensorSpec, Unbounded)

try:  # gymnasium's errors for an unknown id, which torchrl's GymEnv lets through
    from gymnasium.error import NameNotFound, NamespaceNotFound, VersionNotFound
    _GYM_ID_ERRORS = (NameNotFound, NamespaceNotFound, VersionNotFound)
except ImportError:  # pragma: no cover - gymnasium is only needed by GymEnv
    _GYM_ID_ERRORS = ()

# torchrl calls tensordict's interaction types "exploration types": the same objects.
ExplorationType = InteractionType
set_exploration_type = set_interaction_type
exploration_type = interaction_type


class _UnknownEnvError(ValueError, *_GYM_ID_ERRORS):
    """An unknown gymnasium id: a ValueError, and each of gymnasium's errors torchrl raises."""


def _seed_generator(seed: int) -> int:
    """The next seed of a chain, as torchrl draws it (so both libraries agree)."""
    rng = np.random.default_rng(seed)
    return int.from_bytes(rng.bytes(8), "big") % (2**32 - 1)


def step_mdp(tensordict: TensorDictBase, next_tensordict: TensorDictBase | None = None,
             keep_other: bool = True, exclude_reward: bool = True, exclude_done: bool = False,
             exclude_action: bool = True, reward_keys=REWARD, done_keys=DONE,
             action_keys=ACTION) -> TensorDictBase:
    """Move time forward: the ``"next"`` entries become the new root.

    Root entries that ``"next"`` does not hold (a policy's own state, say) are carried over
    (unless ``keep_other=False``), except the excluded ones: by default the action and the
    reward. Each ``*_keys`` is a key or a list of keys; with ``next_tensordict`` the result
    is written there. torchrl's signature and rules.

    Examples:
        >>> td = TensorDict({"observation": torch.zeros(2), "action": torch.ones(1),
        ...                  "next": {"observation": torch.ones(2), "reward": torch.ones(1)}})
        >>> sorted(step_mdp(td).keys()), step_mdp(td)["observation"].tolist()
        (['observation'], [1.0, 1.0])
    """
    excluded = _excluded_keys(exclude_reward, exclude_done, exclude_action, reward_keys,
                              done_keys, action_keys)
    if keep_other:
        out = _next_root(tensordict, excluded)
    else:
        nxt = tensordict.get(NEXT)
        out = nxt.empty()
        if not exclude_action:  # only the action comes along from the root
            for key in (action_keys if isinstance(action_keys, list) else [action_keys]):
                out.set(key, tensordict.get(key))
        _copy_leaves(nxt, out, excluded)
    return out if next_tensordict is None else next_tensordict.update(out)


def _next_root(tensordict: TensorDictBase, excluded: set) -> TensorDictBase:
    """``step_mdp`` keeping the other entries: the root's (not ``"next"``), then ``"next"``'s."""
    nxt = tensordict.get(NEXT)
    out = nxt.empty()
    if (type(tensordict) is TensorDict and type(nxt) is TensorDict
            and nxt.batch_size == tensordict.batch_size and nxt.device == tensordict.device):
        _copy_flat(tensordict, nxt, out, excluded)
    else:
        _copy_leaves(tensordict, out, excluded | {(NEXT,)})
        _copy_leaves(nxt, out, excluded)
    return out


def _excluded_keys(exclude_reward: bool, exclude_done: bool, exclude_action: bool,
                   reward_keys, done_keys, action_keys) -> set:
    """The keys ``step_mdp`` leaves behind, as tuples (``rollout`` works them out once)."""
    excluded = set()
    for exclude, keys in ((exclude_reward, reward_keys), (exclude_done, done_keys),
                          (exclude_action, action_keys)):
        if exclude:
            excluded |= {_key_tuple(key) for key in (keys if isinstance(keys, list) else [keys])}
    return excluded


def _stack_alike(tensordicts: list, dim: int) -> TensorDict | None:
    """``torch.stack(tensordicts, dim)`` key by key, or None unless they are all alike.

    Alike: plain TensorDicts with the same batch size, device and keys, nested ones alike in
    turn, and tensors of one shape under each key, as a rollout's steps usually are. Then the
    stack is one ``torch.stack`` per key (tensordict's general stack costs about 20 µs per
    TensorDict, more than a CartPole step). Otherwise the caller stacks as tensordict does.
    """
    first = tensordicts[0]
    keys, batch, device = first._tensordict.keys(), first.batch_size, first.device
    if any(type(td) is not TensorDict or td.batch_size != batch or td.device != device
           or td._tensordict.keys() != keys for td in tensordicts):
        return None
    stacked = {}
    for key, value in first._tensordict.items():
        values = [td._tensordict[key] for td in tensordicts]
        if type(value) is TensorDict:
            value = _stack_alike(values, dim)
        elif isinstance(value, torch.Tensor):
            try:
                value = torch.stack(values, dim)
            except RuntimeError:  # shapes that differ: a lazy stack's business
                return None
        else:  # non-tensor data
            return None
        if value is None:
            return None
        stacked[key] = value
    batch_size = (*batch[:dim], len(tensordicts), *batch[dim:])
    return TensorDict(stacked, batch_size=batch_size, device=device)


def _key_tuple(key) -> tuple:
    key = unravel_key(key)
    return key if isinstance(key, tuple) else (key,)


def _copy_flat(root: TensorDict, nxt: TensorDict, out: TensorDict, excluded: set) -> None:
    """``step_mdp``'s common case: root then ``"next"`` entries, top-level ones stored directly.

    Both tensordicts have ``out``'s batch size and device, so their top-level tensors are
    valid entries of ``out`` as they are: ``_set_str(validated=True)`` skips ``set``'s
    checks. Nested entries are merged leaf by leaf (``_copy_leaves``).
    """
    for source, skip in ((root, excluded | {(NEXT,)}), (nxt, excluded)):
        for key, value in source.items():
            if (key,) in skip:
                continue
            if isinstance(value, torch.Tensor):
                out._set_str(key, value, inplace=False, validated=True)
            elif isinstance(value, TensorDictBase):
                _copy_leaves(value, out, skip, (key,))
            else:
                out.set(key, value)


def _copy_leaves(source: TensorDictBase, out: TensorDictBase, excluded: set,
                 prefix: tuple = ()) -> None:
    """Copy ``source``'s leaves into ``out`` (merging nested entries), skipping ``excluded``."""
    for key in source.keys():
        path = (*prefix, key)
        if path in excluded:
            continue
        value = source.get(key)
        if isinstance(value, TensorDictBase):  # merge leaf by leaf: never alias the source
            _copy_leaves(value, out, excluded, path)
        else:
            out.set(path, value)


def _spec_property(full: str, key: str, leaf: bool) -> property:
    """``env.<x>_spec``: reads ``env.full_<x>_spec`` (its single leaf if ``leaf``) and writes it.

    A spec that is not a Composite is stored under the default ``key``, as torchrl does, so
    ``env.action_spec = Bounded(...)`` puts it at ``env.full_action_spec["action"]``.
    """

    def get(self):
        spec = getattr(self, full)
        keys = spec.keys(True, True)
        return spec[keys[0]] if leaf and len(keys) == 1 else spec

    def set(self, spec) -> None:
        if not isinstance(spec, Composite):
            spec = Composite({key: spec}, shape=self.batch_size)
        setattr(self, full, spec)
        self._lock_specs()  # a spec set anew is locked too, as torchrl does

    return property(get, set)


_FULL_SPECS = ("full_observation_spec", "full_state_spec", "full_action_spec",
               "full_reward_spec", "full_done_spec")


class _LockSpecsAfterInit(type):
    """EnvBase's metaclass: once a subclass's ``__init__`` has set the specs, lock them.

    torchrl's metaclass does the same for ``spec_locked=True`` (the default): an entry can no
    longer be added to ``env.observation_spec`` in place; setting the spec anew still works.
    """

    def __call__(cls, *args, **kwargs):
        env = super().__call__(*args, **kwargs)
        env._built = True
        env._lock_specs()
        return env


class EnvBase(nn.Module, metaclass=_LockSpecsAfterInit):
    """Base class of environments: specs, ``reset``, ``step``, ``rollout``.

    A subclass sets its specs in ``__init__`` (``self.observation_spec = Composite(...)``,
    ``self.action_spec = ...``, ``self.reward_spec = ...``; done specs default to
    boolean ``"done"`` and ``"terminated"``) and implements three methods, batched over
    ``batch_size``:

    * ``_reset(tensordict) -> TensorDict`` with the first observation (entries where
      ``tensordict["_reset"]`` is False are restored by ``EnvBase``, so a batched env may
      reset every entry);
    * ``_step(tensordict) -> TensorDict`` with the next observation, reward and done flags;
    * ``_set_seed(seed)``.

    Reads ``"action"`` (shape ``(*batch_size, *action_spec.shape[len(batch_size):])``) and
    writes ``"next"``: ``"observation"``, ``"reward"``, ``"done"``, ``"terminated"`` (and
    ``"truncated"`` when the done spec has it). Built in chapter *TensorDict, specs and
    environments*.

    Keyword Args:
        device: where the env's tensors live, or None.
        batch_size: the env's batch dims (several environments stepped together).
        run_type_checks (bool): always check the action's values (even while
            ``rlmods.set_validate_args(False)``) and check the dtypes ``_step`` returns.
        allow_done_after_reset (bool): let an entry be done right after a reset (an error
            otherwise, as in torchrl).
        spec_locked (bool): lock the specs once ``__init__`` has set them, as torchrl does:
            no entry can be added in place, a spec can be set anew. Defaults to True.
        auto_reset (bool): torchrl's environments that reset themselves inside ``step``;
            only False is supported.

    Examples:
        >>> class Counter(EnvBase):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.observation_spec = Composite(observation=Unbounded(1))
        ...         self.action_spec = Bounded(-1.0, 1.0, (1,))
        ...         self.reward_spec = Unbounded(1)
        ...     def _reset(self, tensordict=None, **kwargs):
        ...         return TensorDict({"observation": torch.zeros(1)})
        ...     def _step(self, tensordict):
        ...         count = tensordict["observation"] + 1
        ...         return TensorDict({"observation": count, "reward": count, "done": count > 2})
        ...     def _set_seed(self, seed):
        ...         pass
        >>> rollout = Counter().rollout(10)
        >>> rollout["next", "observation"].squeeze(-1).tolist(), rollout["next", "done"][-1].item()
        ([1.0, 2.0, 3.0], True)
    """

    def __init__(self, *, device=None, batch_size=None, run_type_checks: bool = False,
                 allow_done_after_reset: bool = False, spec_locked: bool = True,
                 auto_reset: bool = False):
        super().__init__()
        if auto_reset:
            raise InvalidValueError(
                f"{type(self).__name__}: auto_reset=True (an env that resets itself inside "
                "step) is not supported, got True; rollout and step_and_maybe_reset reset "
                "finished episodes.")
        self.device = torch.device(device) if device is not None else None
        self.batch_size = torch.Size(batch_size if batch_size is not None else [])
        self.run_type_checks = run_type_checks
        self.allow_done_after_reset = allow_done_after_reset
        self.spec_locked, self._built = spec_locked, False  # _built: set by the metaclass
        self._leaves_cache = {}
        self.full_observation_spec = Composite(shape=self.batch_size)
        self.full_state_spec = Composite(shape=self.batch_size)
        self.full_action_spec = Composite(shape=self.batch_size)
        self.full_reward_spec = Composite(shape=self.batch_size)
        flag = Categorical(2, (*self.batch_size, 1), dtype=torch.bool)
        self.full_done_spec = Composite({DONE: flag, TERMINATED: flag.clone()},
                                        shape=self.batch_size)

    # A model env that steps any batch (a planner's candidates) sets this to False, as in
    # torchrl (``_batch_locked = False`` or ``batch_locked = False`` on the subclass).
    _batch_locked = True

    @property
    def batch_locked(self) -> bool:
        """Whether a tensordict must have exactly the env's batch size (torchrl's flag)."""
        return self._batch_locked

    # -- specs: env.action_spec reads and writes env.full_action_spec, and so on -----
    observation_spec = _spec_property("full_observation_spec", OBSERVATION, leaf=False)
    action_spec = _spec_property("full_action_spec", ACTION, leaf=True)
    reward_spec = _spec_property("full_reward_spec", REWARD, leaf=True)
    done_spec = _spec_property("full_done_spec", DONE, leaf=True)
    state_spec = _spec_property("full_state_spec", "state", leaf=False)

    def _leaves(self, full: str) -> list:
        """``[(key, leaf spec)]`` of ``self.<full>``, kept while that spec is locked.

        A locked spec cannot change in place (a new one can be set), so ``step`` and
        ``rollout`` read its leaves once instead of walking the Composite at every step.
        """
        spec = getattr(self, full)
        cached = self._leaves_cache.get(full)
        if cached is not None and cached[0] is spec and spec.is_locked:
            return cached[1]
        leaves = [(key, spec[key]) for key in spec.keys(True, True)]
        if spec.is_locked:
            self._leaves_cache[full] = (spec, leaves)
        return leaves

    @property
    def action_keys(self) -> list:
        return [key for key, _ in self._leaves("full_action_spec")]

    @property
    def reward_keys(self) -> list:
        return [key for key, _ in self._leaves("full_reward_spec")]

    @property
    def done_keys(self) -> list:
        return [key for key, _ in self._leaves("full_done_spec")]

    @property
    def observation_keys(self) -> list:
        return [key for key, _ in self._leaves("full_observation_spec")]

    @property
    def action_key(self):
        return self._leaves("full_action_spec")[0][0]

    @property
    def reward_key(self):
        return self._leaves("full_reward_spec")[0][0]

    @property
    def specs(self) -> Composite:
        shape = self.batch_size
        output = Composite(full_observation_spec=self.full_observation_spec,
                           full_reward_spec=self.full_reward_spec,
                           full_done_spec=self.full_done_spec, shape=shape)
        inputs = Composite(full_action_spec=self.full_action_spec,
                           full_state_spec=self.full_state_spec, shape=shape)
        return Composite(output_spec=output, input_spec=inputs, shape=shape)

    def _lock_specs(self) -> None:
        """Lock every full spec (``spec_locked``), once ``__init__`` is done."""
        if self._built and self.spec_locked:
            for name in _FULL_SPECS:
                getattr(self, name).lock_()

    # -- the MDP ------------------------------------------------------------------------
    def _complete_done(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Fill ``done`` from ``terminated | truncated`` (and ``terminated`` from ``done``)."""
        done_keys = self.done_keys
        if all(get_entry(tensordict, key) is not None for key in done_keys):
            return tensordict  # an env that wrote them all: the common case
        done, terminated = get_entry(tensordict, DONE), get_entry(tensordict, TERMINATED)
        if done is None and terminated is not None:
            truncated = get_entry(tensordict, TRUNCATED)
            tensordict.set(DONE, terminated if truncated is None else terminated | truncated)
        elif terminated is None and done is not None and TERMINATED in done_keys:
            tensordict.set(TERMINATED, done)
        for key, spec in self._leaves("full_done_spec"):
            if get_entry(tensordict, key) is None:
                tensordict.set(key, spec.zero())
        return tensordict

    def reset(self, tensordict: TensorDictBase | None = None, *, set_state: bool | None = None,
              **kwargs) -> TensorDictBase:
        """Start (or, where ``tensordict["_reset"]`` is set, restart) episodes."""
        if set_state:
            raise InvalidValueError(f"{type(self).__name__}.reset: set_state=True (set a "
                                    "simulator's state from the tensordict) is not supported.")
        out = self._complete_done(self._reset(tensordict, **kwargs))
        reset = None if tensordict is None else tensordict.get("_reset", None)
        if not self.allow_done_after_reset and validate_args(self.run_type_checks):
            self._check_not_done(out, reset)
        if tensordict is None:
            return out
        fresh = out.keys()
        for key in tensordict.keys():
            if key not in fresh and key not in (NEXT, "_reset"):
                out.set(key, tensordict.get(key))
        if reset is not None and not bool(reset.all()):  # keep the entries not asked to reset
            for key in out.keys(True, True):
                old = tensordict.get(key, None)
                if old is not None and old.shape == out.get(key).shape:
                    ones = [1] * (old.ndim - len(self.batch_size))
                    mask = reset.reshape((*self.batch_size, *ones))  # () for a 0-dim entry
                    out.set(key, torch.where(mask, out.get(key), old))
        return out

    def _check_not_done(self, tensordict: TensorDictBase, reset) -> None:
        """A fresh episode must not be done (unless ``allow_done_after_reset``), as in torchrl."""
        for key in self.done_keys:
            done = get_entry(tensordict, key)
            if reset is not None:  # only the entries asked to reset
                done = done & reset.reshape(done.shape)
            if done.any():
                raise InvalidValueError(
                    f"{type(self).__name__}: {key!r} must be False after reset (pass "
                    "allow_done_after_reset=True to allow it), got True.")

    def _check_action(self, tensordict: TensorDictBase) -> None:
        """The action's shape always; its values while ``validate_args(self.run_type_checks)``."""
        owner = type(self).__name__
        for key, spec in self._leaves("full_action_spec"):
            action = require_key(tensordict, key, owner)
            # a batch-unlocked env takes any leading dims before the per-sample shape
            want = spec.shape if self.batch_locked else spec.shape[len(self.batch_size):]
            got = action.shape if self.batch_locked else action.shape[action.ndim - len(want):]
            if got != want or action.ndim < len(want):
                what = "shape" if self.batch_locked else "a shape ending in"
                raise ValueError(f"{owner}: {key!r} must have {what} {shape_str(want)}, "
                                 f"got shape {shape_str(action.shape)}.")
            if not validate_args(self.run_type_checks):  # the value checks below sync a GPU
                continue
            cast = action if action.dtype == spec.dtype else action.to(spec.dtype)
            # A discrete action must survive the cast: 0.5 is not category 0.
            lossy = (cast is not action and spec.domain == "discrete"
                     and not torch.equal(cast.to(action.dtype), action))
            if lossy or not spec.is_in(cast):
                raise ValueError(f"{owner}: {key!r} must lie in the action spec {spec}, "
                                 f"got {action.tolist()}.")

    def _type_check(self, next_tensordict: TensorDictBase) -> None:
        """With ``run_type_checks``: each output's dtype must be its spec's, as in torchrl."""
        owner = type(self).__name__
        for full in (self.full_observation_spec, self.full_reward_spec, self.full_done_spec):
            for key in full.keys(True, True):
                value, spec = next_tensordict.get(key, None), full[key]
                if value is not None and spec is not None and value.dtype != spec.dtype:
                    raise TypeError(f"{owner}: {key!r} must have dtype {spec.dtype} (its "
                                    f"spec's), got {value.dtype}.")

    def step(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Apply ``tensordict["action"]``; write the result under ``"next"``."""
        self._check_action(tensordict)
        next_tensordict = self._complete_done(self._step(tensordict))
        if self.run_type_checks:
            self._type_check(next_tensordict)
        if (type(tensordict) is TensorDict and type(next_tensordict) is TensorDict
                and next_tensordict.batch_size == tensordict.batch_size
                and next_tensordict.device == tensordict.device):
            # what set checks holds already: store it directly (a microsecond a step)
            tensordict._set_str(NEXT, next_tensordict, inplace=False, validated=True)
        else:
            tensordict.set(NEXT, next_tensordict)
        return tensordict

    def step_and_maybe_reset(self, tensordict: TensorDictBase):
        """``step``, then the root of the next step (reset where an episode ended)."""
        tensordict = self.step(tensordict)
        root = step_mdp(tensordict, action_keys=self.action_keys, reward_keys=self.reward_keys)
        return tensordict, self.maybe_reset(root)

    def maybe_reset(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Reset the entries of a root tensordict (as ``step_mdp`` returns) that are done."""
        done = get_entry(tensordict, DONE)
        if done is None or not done.any():
            return tensordict
        if done.all():  # every entry ended (an unbatched env's only one): a plain reset
            return self.reset(tensordict)
        return self.reset(tensordict.clone(False).set("_reset", done))

    def rand_action(self, tensordict: TensorDictBase | None = None) -> TensorDictBase:
        if tensordict is None:
            tensordict = TensorDict(batch_size=self.batch_size, device=self.device)
        for key, spec in self._leaves("full_action_spec"):
            tensordict.set(key, spec.rand())
        return tensordict

    def rand_step(self, tensordict: TensorDictBase | None = None) -> TensorDictBase:
        return self.step(self.rand_action(tensordict))

    def set_seed(self, seed: int | None = None, static_seed: bool = False) -> int | None:
        """Seed the environment; return the next seed of the chain, as torchrl does."""
        self._set_seed(seed)
        if seed is not None and not static_seed:
            seed = _seed_generator(seed)
        return seed

    def rollout(self, max_steps: int, policy=None, callback=None, *, actions=None,
                auto_reset: bool = True, auto_cast_to_device: bool = False,
                break_when_any_done: bool | None = None, break_when_all_done: bool | None = None,
                return_contiguous: bool | None = False, tensordict: TensorDictBase | None = None,
                set_truncated: bool = False, out=None, trust_policy: bool = False,
                storing_device=None, set_state: bool | None = None) -> TensorDictBase:
        """Run ``policy`` (random actions if None) for up to ``max_steps`` steps.

        Returns the transitions stacked along a new dim after the batch dims, with
        ``"next"`` inside: ``rollout[t]["next", "observation"]`` is what followed step t.
        ``break_when_any_done`` (the default) stops at the first step where an entry is
        done; ``break_when_all_done`` lets finished entries repeat their last transition
        until every entry is done; with neither, finished entries are reset and go on.
        ``out`` receives the stacked result, as in ``torch.stack(..., out=out)``.

        Args:
            max_steps (int): the most steps to run.
            policy (callable, optional): reads the root tensordict and writes the action.
            callback (callable, optional): ``callback(env, tensordict)`` after each step but
                the last, with the next root (as torchrl).

        Keyword Args:
            actions (iterable, optional): actions to replay instead of a policy (a sized
                iterable caps ``max_steps``), written under the top-level action key.
            auto_reset (bool): reset first; else start from ``tensordict`` (its entries
                that are done start afresh).
            auto_cast_to_device (bool): only False: put the policy on the env's device.
            break_when_any_done, break_when_all_done (bool): the stopping rule (above).
            return_contiguous (bool): stack densely (True) or as tensordict's lazy stack
                (made dense where the steps agree, the default).
            tensordict (TensorDictBase, optional): where to start (or what to reset).
            set_truncated (bool): mark the last step truncated (and done).
            out (TensorDictBase, optional): where to write the stacked result.
            trust_policy (bool): accepted for torchrl's signature; the policy is always
                called on the tensordict.
            storing_device: where the stacked transitions go (default: where they are).
            set_state: only None or False (see ``reset``).
        """
        owner = f"{type(self).__name__}.rollout"
        any_done, all_done = self._rollout_flags(owner, break_when_any_done, break_when_all_done,
                                                 auto_cast_to_device, set_truncated)
        if actions is not None:
            policy, max_steps = self._replay(owner, actions, policy, max_steps)
        if auto_reset:
            tensordict = self.reset(tensordict, set_state=set_state)
        elif tensordict is None:
            raise InvalidValueError(f"{owner}: with auto_reset=False a tensordict to start from "
                                    "is required, got None.")
        else:  # as torchrl: entries of the given tensordict that are done start afresh
            tensordict = self.maybe_reset(tensordict)
        steps = self._rollout_steps(tensordict, max_steps, policy, callback, any_done, all_done)
        if set_truncated:  # the last transition ends the trajectory, as in torchrl
            last = steps[-1].get(NEXT)
            last.set(TRUNCATED, torch.ones_like(last.get(TRUNCATED)))
            last.set(DONE, torch.ones_like(last.get(DONE)))
        if storing_device is not None:
            steps = [step.to(storing_device) for step in steps]
        dim = len(self.batch_size)
        stacked = _stack_alike(steps, dim) if out is None else None
        if stacked is not None:
            return stacked
        if return_contiguous:
            return torch.stack(steps, dim, out=out)
        return LazyStackedTensorDict.maybe_dense_stack(steps, dim, out=out)

    def _rollout_flags(self, owner: str, break_when_any_done, break_when_all_done,
                       auto_cast_to_device: bool, set_truncated: bool) -> tuple[bool, bool]:
        """Check rollout's flags; return the stopping rule as (any_done, all_done)."""
        if break_when_any_done is None:
            break_when_any_done = not break_when_all_done
        if break_when_any_done and break_when_all_done:
            raise TypeError(f"{owner}: break_when_any_done and break_when_all_done cannot both "
                            "be True.")
        if auto_cast_to_device:
            raise InvalidValueError(f"{owner}: auto_cast_to_device=True is not supported, got "
                                    "True; put the policy on the env's device.")
        if set_truncated and TRUNCATED not in self.done_keys:
            raise InvalidValueError(f"{owner}: set_truncated=True needs a {TRUNCATED!r} done "
                                    f"key, got done keys {self.done_keys}.")
        return bool(break_when_any_done), bool(break_when_all_done)

    def _replay(self, owner: str, actions, policy, max_steps: int):
        """A policy that writes the given actions in turn, and the capped number of steps."""
        if policy is not None:
            raise ValueError(f"{owner}: give a policy or actions, not both.")
        key, steps = next(iter(self.full_action_spec.keys())), iter(actions)
        if hasattr(actions, "__len__"):
            max_steps = min(max_steps, len(actions))
        return (lambda tensordict: tensordict.set(key, next(steps))), max_steps

    def _act(self, tensordict: TensorDictBase, policy) -> TensorDictBase:
        """The policy's action (a random one when ``policy`` is None), checked for its key."""
        if policy is None:
            return self.rand_action(tensordict)
        out = policy(tensordict)
        if out is not tensordict:  # a policy that writes in place returns its input
            tensordict.update(out)
        for key, _ in self._leaves("full_action_spec"):
            if get_entry(tensordict, key) is None:
                written = sorted(map(str, tensordict.keys(True, True)))
                raise KeyError(f"{type(self).__name__}.rollout: the policy must write the "
                               f"action key {key!r}, it wrote keys {written}.")
        return tensordict

    def _rollout_steps(self, tensordict, max_steps, policy, callback, any_done: bool,
                       all_done: bool) -> list:
        """The transitions of ``rollout``: act, step, store, move time forward."""
        steps, running = [], None  # running: the entries still stepping (break_when_all_done)
        # step_mdp's excluded keys (the action and the reward), worked out once
        excluded = _excluded_keys(True, False, True, self.reward_keys, None, self.action_keys)
        for t in range(max_steps):
            tensordict = self.step(self._act(tensordict, policy))
            done = get_entry(get_entry(tensordict, NEXT), DONE).reshape(self.batch_size)
            if running is not None:  # an entry that ended repeats its last transition
                tensordict = torch.where(running, tensordict, steps[-1])
            steps.append(tensordict)
            if t == max_steps - 1:
                break
            root = _next_root(tensordict, excluded)
            if all_done:
                running = ~done if running is None else running & ~done
                if not running.any():
                    break
            elif done.any():
                if any_done:
                    break
                root = self.maybe_reset(root)
            tensordict = root
            if callback is not None:
                callback(self, tensordict)
        return steps

    def _reset(self, tensordict, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement _reset(tensordict).")

    def _step(self, tensordict):
        raise NotImplementedError(f"{type(self).__name__} must implement _step(tensordict).")

    def _set_seed(self, seed):
        raise NotImplementedError(f"{type(self).__name__} must implement _set_seed(seed).")

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}: call step(), reset() or rollout(), "
                                  "not the env itself.")


def _space_to_spec(space, categorical_action_encoding: bool = False) -> TensorSpec:
    """The spec of a gymnasium space (Box, Discrete, MultiDiscrete, MultiBinary, Dict)."""
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        dtype = torch.as_tensor(np.zeros((), dtype=space.dtype)).dtype
        shape = space.shape or (1,)
        low = torch.as_tensor(space.low, dtype=dtype)
        high = torch.as_tensor(space.high, dtype=dtype)
        if low.isinf().all() and high.isinf().all():
            return Unbounded(shape, dtype=dtype)
        return Bounded(low.reshape(shape), high.reshape(shape), shape, dtype=dtype)
    if isinstance(space, spaces.Discrete):
        cls = Categorical if categorical_action_encoding else OneHot
        return cls(int(space.n), dtype=torch.int64)
    if isinstance(space, spaces.MultiDiscrete):
        cls = MultiCategorical if categorical_action_encoding else MultiOneHot
        return cls([int(n) for n in space.nvec], dtype=torch.int64)
    if isinstance(space, spaces.MultiBinary):  # n may be a shape, e.g. MultiBinary([2, 3])
        return Binary(shape=space.shape)
    if isinstance(space, spaces.Dict):
        return Composite({key: _space_to_spec(sub, categorical_action_encoding)
                          for key, sub in space.spaces.items()})
    raise TypeError(f"GymEnv: cannot convert the gymnasium space {space} to a spec.")


class GymEnv(EnvBase):
    """A gymnasium environment behind the TensorDict interface.

    Args:
        env_name (str): a registered gymnasium id, e.g. ``"Pendulum-v1"``.

    Keyword Args:
        categorical_action_encoding (bool): a ``Discrete`` action space becomes
            ``Categorical`` (an index) instead of ``OneHot``. Defaults to False.
        frame_skip (int): repeat each action this many times, summing rewards.
        device: where the tensors go.
        batch_size: only empty (one gymnasium environment).
        allow_done_after_reset, spec_locked, auto_reset: as for ``EnvBase``.
        **kwargs: passed to ``gymnasium.make``.

    Examples:
        >>> env = GymEnv("Pendulum-v1")
        >>> _ = env.set_seed(0)
        >>> rollout = env.rollout(5)
        >>> rollout.batch_size, rollout["next", "observation"].shape
        (torch.Size([5]), torch.Size([5, 3]))
    """

    def __init__(self, env_name: str, *, categorical_action_encoding: bool = False,
                 frame_skip: int | None = None, device=None, batch_size=None,
                 allow_done_after_reset: bool = False, spec_locked: bool = True,
                 auto_reset: bool = False, **kwargs):
        import gymnasium as gym

        if env_name not in gym.registry:
            close = difflib.get_close_matches(env_name, list(gym.registry), n=3)
            hint = f"; close matches: {close}." if close else "."
            raise _UnknownEnvError("GymEnv: env_name must be a registered gymnasium id, got "
                                   f"{env_name!r}{hint}")
        if frame_skip is not None and (not isinstance(frame_skip, int) or frame_skip < 1):
            raise ValueError(f"GymEnv: frame_skip must be a positive int, got {frame_skip!r}.")
        if batch_size is not None and tuple(batch_size) != ():
            raise ValueError("GymEnv: batch_size must be empty (one gymnasium env), got "
                             f"{tuple(batch_size)}.")
        super().__init__(device=device, allow_done_after_reset=allow_done_after_reset,
                         spec_locked=spec_locked, auto_reset=auto_reset)
        self.env_name = env_name
        self.frame_skip = frame_skip or 1
        self._env = gym.make(env_name, **kwargs)
        observation = _space_to_spec(self._env.observation_space)
        self.observation_spec = (observation if isinstance(observation, Composite)
                                 else Composite({OBSERVATION: observation}))
        self.action_spec = _space_to_spec(self._env.action_space, categorical_action_encoding)
        self.reward_spec = Unbounded(1)
        flag = Categorical(2, (1,), dtype=torch.bool)
        self.full_done_spec = Composite({DONE: flag, TERMINATED: flag.clone(),
                                         TRUNCATED: flag.clone()})
        if self.device is not None:  # the specs' device is where encode puts the tensors
            for name in ("full_observation_spec", "full_action_spec", "full_reward_spec",
                         "full_done_spec"):
                setattr(self, name, getattr(self, name).to(self.device))

    def _observation(self, observation, entries: dict) -> TensorDict:
        """The observation, encoded by its spec, and ``entries`` (reward, done flags)."""
        if isinstance(observation, dict):  # a Dict space: encoded entry by entry
            return self.full_observation_spec.encode(observation).update(entries)
        # One TensorDict built from its entries, which are tensors of an unbatched env made
        # just now: nothing for the constructor to check (it would spend 1.5 µs doing so).
        observation = self.full_observation_spec[OBSERVATION].encode(observation)
        return TensorDict._new_unsafe({OBSERVATION: observation, **entries},
                                      batch_size=self.batch_size)

    def _reset(self, tensordict=None, seed: int | None = None, **kwargs) -> TensorDict:
        observation, _ = self._env.reset(seed=seed, **kwargs)  # e.g. options=...
        flags = {key: spec.zero() for key, spec in self._leaves("full_done_spec")}
        return self._observation(observation, flags)

    def _to_gym(self, action: torch.Tensor):
        spec = self._leaves("full_action_spec")[0][1]  # the action spec, kept while locked
        if isinstance(spec, (OneHot, MultiOneHot)):
            action = spec.to_categorical(action)
        if action.ndim == 0 and isinstance(spec, (Categorical, OneHot)):
            return action.item()  # a Discrete space's index, as a Python int
        return action.detach().cpu().numpy()

    def _step(self, tensordict: TensorDictBase) -> TensorDict:
        action = self._to_gym(require_key(tensordict, self.action_key, type(self).__name__))
        reward = 0.0
        for _ in range(self.frame_skip):
            observation, r, terminated, truncated, _ = self._env.step(action)
            reward += float(r)
            if terminated or truncated:
                break
        specs = dict((*self._leaves("full_reward_spec"), *self._leaves("full_done_spec")))
        values = {REWARD: reward, TERMINATED: bool(terminated), TRUNCATED: bool(truncated),
                  DONE: bool(terminated or truncated)}
        # torch.full: a fifth of encode's cost for one number
        entries = {key: torch.full(specs[key].shape, value, dtype=specs[key].dtype,
                                   device=specs[key].device) for key, value in values.items()}
        return self._observation(observation, entries)

    def _set_seed(self, seed: int | None) -> None:
        # As torchrl with gymnasium: seeding is a reset with that seed.
        self.reset(seed=seed)

    def close(self) -> None:
        self._env.close()

    def __repr__(self) -> str:
        return (f"GymEnv(env={self.env_name!r}, batch_size={self.batch_size}, "
                f"device={self.device})")


class Transform(nn.Module):
    """Base class of environment transforms: hooks on reset, step and the specs.

    ``_reset(tensordict, tensordict_reset)`` edits what a reset returns,
    ``_step(tensordict, next_tensordict)`` edits what a step returns and
    ``transform_observation_spec(spec)`` declares the entries it adds. As in torchrl, the
    base ``_step`` (and ``forward``, outside an env) applies ``_apply_transform`` to each of
    ``in_keys`` and writes the matching ``out_keys``: a transform of one tensor need only
    write ``_apply_transform``.

    Args:
        in_keys (list of keys, optional): what ``_apply_transform`` reads.
        out_keys (list of keys, optional): where it writes, one per in_key.

    Examples:
        >>> class Double(Transform):
        ...     def _apply_transform(self, value):
        ...         return 2 * value
        >>> Double(["a"], ["b"])(TensorDict(a=torch.ones(2)))["b"].tolist()
        [2.0, 2.0]
    """

    def __init__(self, in_keys=None, out_keys=None):
        super().__init__()
        self.in_keys = list(in_keys or [])
        self.out_keys = list(out_keys or [])
        if self.in_keys and len(self.in_keys) != len(self.out_keys):
            raise ValueError(f"{type(self).__name__}: out_keys must hold one key per in_key, "
                             f"got in_keys={self.in_keys} and out_keys={self.out_keys}.")
        self.set_container(None)

    def set_container(self, container) -> None:
        """Remember the env this transform belongs to (not as a submodule: no cycle)."""
        self.__dict__["parent"] = container

    def _reset(self, tensordict, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return tensordict_reset

    def _step(self, tensordict: TensorDictBase,
              next_tensordict: TensorDictBase) -> TensorDictBase:
        return self._call(next_tensordict)

    def _call(self, tensordict: TensorDictBase) -> TensorDictBase:
        """``_apply_transform`` on each in_key, written to its out_key (a missing key raises)."""
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            value = require_key(tensordict, in_key, type(self).__name__)
            tensordict.set(out_key, self._apply_transform(value))
        return tensordict

    def _apply_transform(self, value: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement _apply_transform(value) "
                                  "to transform its in_keys (or override _step).")

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        return observation_spec

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        return self._call(tensordict)

    @property
    def batch_size(self) -> torch.Size:
        return self.parent.batch_size if self.parent is not None else torch.Size([])


class Compose(Transform):
    """Several transforms applied in order."""

    def __init__(self, *transforms: Transform):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)

    def _reset(self, tensordict, tensordict_reset):
        for transform in self.transforms:
            tensordict_reset = transform._reset(tensordict, tensordict_reset)
        return tensordict_reset

    def _step(self, tensordict, next_tensordict):
        for transform in self.transforms:
            next_tensordict = transform._step(tensordict, next_tensordict)
        return next_tensordict

    def transform_observation_spec(self, observation_spec):
        for transform in self.transforms:
            observation_spec = transform.transform_observation_spec(observation_spec)
        return observation_spec

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        for transform in self.transforms:
            tensordict = transform(tensordict)
        return tensordict

    def append(self, transform: Transform) -> None:
        transform.set_container(self.parent)
        self.transforms.append(transform)

    def __getitem__(self, index) -> Transform:
        return self.transforms[index]

    def __len__(self) -> int:
        return len(self.transforms)


class TransformedEnv(EnvBase):
    """An environment whose resets and steps go through a transform.

    Args:
        base_env (EnvBase): the environment to wrap.
        transform (Transform, optional): a transform, or a ``Compose`` of several.
        cache_specs (bool): accepted for torchrl's signature; the specs are computed when
            the env is built and when a transform is appended either way.

    Keyword Args:
        auto_unwrap: only None or False: a TransformedEnv of a TransformedEnv stays nested.
        device: only the base env's device (rlmods does not move environments).
        run_type_checks, spec_locked, auto_reset: as for ``EnvBase``. Any other keyword
            is a TypeError that names it.

    Examples:
        >>> env = TransformedEnv(GymEnv("Pendulum-v1"), InitTracker())
        >>> td = env.reset()
        >>> bool(td["is_init"]), bool(env.rand_step(td)["next", "is_init"])
        (True, False)
    """

    def __init__(self, base_env: EnvBase, transform: Transform | None = None,
                 cache_specs: bool = True, *, auto_unwrap: bool | None = None, device=None,
                 **kwargs):
        owner = "TransformedEnv"
        unknown = sorted(set(kwargs) - {"run_type_checks", "spec_locked", "auto_reset"})
        if unknown:
            raise TypeError(f"{owner}: unexpected keyword arguments {unknown}.")
        if device is not None and torch.device(device) != base_env.device:
            raise InvalidValueError(f"{owner}: device must be the base env's "
                                    f"({base_env.device}), got {device}; rlmods does not move "
                                    "environments.")
        if auto_unwrap:
            raise InvalidValueError(f"{owner}: auto_unwrap=True is not supported, got True; a "
                                    "TransformedEnv of a TransformedEnv stays nested.")
        super().__init__(device=base_env.device, batch_size=base_env.batch_size, **kwargs)
        self.base_env = base_env
        self.cache_specs = cache_specs
        self.transform = transform if isinstance(transform, Compose) else Compose(
            *([transform] if transform is not None else []))
        self._refresh_specs()

    def _refresh_specs(self) -> None:
        for transform in [self.transform, *self.transform.transforms]:
            transform.set_container(self)
        env = self.base_env
        self.full_action_spec = env.full_action_spec
        self.full_reward_spec = env.full_reward_spec
        self.full_done_spec = env.full_done_spec
        self.full_state_spec = env.full_state_spec
        self.full_observation_spec = self.transform.transform_observation_spec(
            env.full_observation_spec.clone())
        self._lock_specs()

    def append_transform(self, transform: Transform) -> "TransformedEnv":
        self.transform.append(transform)
        self._refresh_specs()
        return self

    def _reset(self, tensordict=None, **kwargs):
        return self.transform._reset(tensordict, self.base_env.reset(tensordict, **kwargs))

    def _step(self, tensordict):
        next_tensordict = self.base_env._complete_done(self.base_env._step(tensordict))
        return self.transform._step(tensordict, next_tensordict)

    def _set_seed(self, seed):
        return self.base_env._set_seed(seed)


class TensorDictPrimer(Transform):
    """Adds entries (a recurrent state, say) to every reset, and carries them through steps.

    Args:
        primers (dict or Composite): key -> spec of each entry to add. May also be
            given as keyword arguments.
        random (bool): draw the initial values with ``spec.rand`` instead of zeros.
        default_value (float or dict): the initial value (per key if a dict).
        reset_key, expand_specs, single_default_value, call_before_env_reset: torchrl's
            options; only their defaults (and ``expand_specs=True``) are supported: the
            specs are always expanded to the env's batch dims.

    Examples:
        >>> primer = TensorDictPrimer(hidden=Unbounded((2, 8)))
        >>> env = TransformedEnv(GymEnv("Pendulum-v1"), primer)
        >>> env.reset()["hidden"].shape
        torch.Size([2, 8])
    """

    def __init__(self, primers=None, random: bool | None = None, default_value=None,
                 reset_key=None, expand_specs: bool | None = None,
                 single_default_value: bool = False, call_before_env_reset: bool = False,
                 **kwargs):
        owner = "TensorDictPrimer"
        if not isinstance(primers, Composite):
            primers = Composite(primers or {}, **kwargs)
        if random and default_value is not None:
            raise ValueError(f"{owner}: give random=True or a default_value, not both.")
        unsupported = (("reset_key", reset_key, reset_key is not None),
                       ("expand_specs", expand_specs, expand_specs is False),
                       ("single_default_value", single_default_value, single_default_value),
                       ("call_before_env_reset", call_before_env_reset, call_before_env_reset))
        for name, value, given in unsupported:  # rlmods always expands to the batch dims
            if given:
                raise InvalidValueError(f"{owner}: {name} is not supported, got "
                                        f"{name}={value!r}.")
        super().__init__(out_keys=primers.keys(True, True))
        self.primers = primers
        self.random = bool(random)
        self.default_value = default_value

    def _value(self, key, spec: TensorSpec) -> torch.Tensor:
        spec = spec if spec.shape[:len(self.batch_size)] == self.batch_size else spec.expand(
            *self.batch_size, *spec.shape)
        if self.random:
            return spec.rand()
        default = self.default_value
        if isinstance(default, dict):
            default = default.get(key, 0.0)
        value = spec.zero()
        return value if default is None else value.fill_(default)

    def _reset(self, tensordict, tensordict_reset):
        for key in self.out_keys:
            tensordict_reset.set(key, self._value(key, self.primers[key]))
        return tensordict_reset

    def _step(self, tensordict, next_tensordict):
        # A policy that updates the entry (a recurrent module) writes it under "next" before
        # the step: that value goes on; otherwise the root value is carried over.
        for key in self.out_keys:
            if key not in next_tensordict.keys(True):
                value = tensordict.get((NEXT, *_key_tuple(key)), None)
                next_tensordict.set(key, tensordict.get(key) if value is None else value)
        return next_tensordict

    def transform_observation_spec(self, observation_spec):
        for key in self.out_keys:
            spec = self.primers[key]
            if spec.shape[:len(self.batch_size)] != self.batch_size:
                spec = spec.expand(*self.batch_size, *spec.shape)
            observation_spec[key] = spec
        return observation_spec


class InitTracker(Transform):
    """Writes ``"is_init"``: True on the first step of an episode, False after.

    Recurrent modules read it to reset their hidden state at episode starts.
    """

    def __init__(self, init_key: str = IS_INIT):
        super().__init__(out_keys=[init_key])
        self.init_key = init_key

    def _flag(self, value: bool) -> torch.Tensor:
        return torch.full((*self.batch_size, 1), value, dtype=torch.bool)

    def _reset(self, tensordict, tensordict_reset):
        tensordict_reset.set(self.init_key, self._flag(True))
        return tensordict_reset

    def _step(self, tensordict, next_tensordict):
        next_tensordict.set(self.init_key, self._flag(False))
        return next_tensordict

    def transform_observation_spec(self, observation_spec):
        observation_spec[self.init_key] = Categorical(2, (*self.batch_size, 1), dtype=torch.bool)
        return observation_spec
