"""Safe modules and deterministic actors: TensorDict modules that know their output spec.

``SafeModule`` is a ``tensordict.nn.TensorDictModule`` that carries a ``Composite`` spec
keyed by its out_keys and, with ``safe=True``, projects every output into it. ``Actor``
adds the RL defaults (``"observation"`` in, ``"action"`` out); ``TanhModule`` squashes
into a box; ``MultiStepActorWrapper`` replays a plan of several actions one step at a
time; ``VmapModule`` vmaps a TensorDict module over a batch dim.

Built in chapter *Safe modules and actors*.
"""

from __future__ import annotations

import functools
import types
from typing import Sequence

import torch
from tensordict import TensorDict, TensorDictBase, unravel_key, unravel_key_list
from tensordict.nn import TensorDictModule, TensorDictModuleBase, TensorDictSequential, dispatch
from tensordict.nn.distributions import Delta
from tensordict.nn.utils import _skip_existing  # skip_existing()'s state: read without its lock
from tensordict.utils import NestedKey, expand_as_right
from torch import nn
from torch.nn.modules.module import _global_forward_hooks, _global_forward_pre_hooks

from rlmods._checks import InvalidTypeError, InvalidValueError, get_entry, key_str, require_key
from rlmods._keys import ACTION, IGNORE, IS_INIT, OBSERVATION
from rlmods._spec_args import as_composite
from rlmods.specs import Composite, TensorSpec

# MultiStepActorWrapper's key conventions (torchrl's): a plan the actor writes under
# "<action>_chunk" or ("vla_action", "chunk") is replayed into "<action>"; a plan written
# under the action key itself is kept under "<action>_orig"; the step within the plan is
# counted under "counter", next to the init key.
CHUNK_SUFFIX, ORIG_SUFFIX, COUNTER = "_chunk", "_orig", "counter"
VLA_CHUNK = ("vla_action", "chunk")


def unbatched_spec(spec: TensorSpec) -> TensorSpec:
    """``spec`` without the leading dims along which it is the same everywhere.

    A spec taken from a batched env has shape ``(*env_batch, *action_shape)`` with the
    same bounds in every env. Projecting against the unbatched spec and letting
    broadcasting do the rest works for data of any batch shape (torchrl projects with
    the batched spec and fails when the data's batch differs from the env's).

    Examples:
        >>> from rlmods.specs import Bounded
        >>> unbatched_spec(Bounded(-1.0, 1.0, shape=(4, 2))).shape
        torch.Size([2])
        >>> per_env = Bounded(torch.tensor([[-1.0], [-2.0]]), 2.0, shape=(2, 1))
        >>> unbatched_spec(per_env).shape  # bounds differ per env: kept
        torch.Size([2, 1])
    """
    while spec.ndim > max(1, spec._event_ndim):
        head = spec[0]
        if head.expand(spec.shape) != spec:
            break
        spec = head
    return spec


def read_entry(tensordict: TensorDictBase, key: NestedKey, owner) -> torch.Tensor:
    """``tensordict[key]``, or a one-line KeyError that names the key and ``owner``'s class.

    The read is ``rlmods._checks.get_entry``'s: a string key of a plain ``TensorDict`` through
    its ``_get_str`` (``get`` first turns the key into a tuple and sorts out its arguments, most
    of a 0.5 µs read at batch 1); the error is built only when the key is missing.
    """
    value = get_entry(tensordict, key)
    return require_key(tensordict, key, type(owner).__name__) if value is None else value


def write_entry(tensordict: TensorDictBase, key: NestedKey, value) -> None:
    """``tensordict.set(key, value)``, by the cheapest path that checks what ``set`` checks.

    A tensor under a string key of a plain ``TensorDict`` whose batch dims and device already
    match is stored with ``_set_str(validated=True)``: ``set`` would run tensordict's general
    validation (about 1 µs at batch 1). Everything else goes through ``set``, never through
    ``TensorDict.from_any`` (tensordict 0.14's module writer: a chain of type checks and, on
    every call where pandas is not installed, a scan of ``sys.path``).
    """
    if type(key) is str and type(tensordict) is TensorDict and isinstance(value, torch.Tensor):
        batch, device = tensordict._batch_size, tensordict._device  # the properties' fields
        if (value.shape[:len(batch)] == batch
                and (device is None or value.device == device)):
            tensordict._set_str(key, value, inplace=False, validated=True)
            return
    tensordict.set(key, value)


def write_outputs(module, tensordict: TensorDictBase, outputs,
                  out_keys: list | None = None) -> TensorDictBase:
    """Write one output per out_key (``"_"`` skips one), projected where ``module`` is safe.

    The one writer of rlmods' TensorDict modules, on the plain call and on tensordict's
    general forward alike. ``outputs`` is a tensor, a tuple, or a dict keyed by out_keys.
    """
    out_keys = module.out_keys_source if out_keys is None else out_keys
    if isinstance(outputs, torch.Tensor):  # the common case first: an ABC's isinstance is slow
        if len(out_keys) == 1 and out_keys[0] != IGNORE and not module.__dict__.get("safe"):
            write_entry(tensordict, out_keys[0], outputs)  # one tensor, as it is: written
            return tensordict
        outputs = (outputs,)
    elif isinstance(outputs, (dict, TensorDictBase)):
        outputs = tuple(outputs[key] for key in out_keys)
    elif not isinstance(outputs, tuple):
        outputs = (outputs,)
    if len(outputs) != len(out_keys):  # torchrl: RuntimeError
        raise InvalidValueError(f"{type(module).__name__}: the module must return one tensor per "
                                f"out_key ({len(out_keys)}: {out_keys}), got {len(outputs)}.")
    # module.__dict__: a plain TensorDictModule has no "safe", and getattr would fall
    # through tensordict's __getattr__ (2 µs) before giving up
    projections = module._projections if module.__dict__.get("safe", False) else {}
    for key, value in zip(out_keys, outputs):
        if key == IGNORE:
            continue
        if key in projections:
            value = projections[key].project(value)
        if not isinstance(value, torch.Tensor) and not isinstance(value, TensorDictBase):
            value = TensorDict.from_any(value)
        write_entry(tensordict, key, value)
    return tensordict


def call_td_module(module: TensorDictModule, tensordict: TensorDictBase) -> TensorDictBase:
    """The plain call of a TensorDict module: read ``in_keys``, call ``module.module``, write."""
    inputs = [read_entry(tensordict, key, module) for key in module.in_keys]
    # module.module, without nn.Module's __getattr__ (0.5 µs) when it is an nn.Module
    function = module._modules.get("module")
    if function is None:  # a plain callable: an ordinary attribute
        function = module.module
    return write_outputs(module, tensordict, function(*inputs))


def own_code(function):
    """A copy of ``function`` with a code object of its own.

    ``torch.compile`` keeps the graphs it compiles on the code object of the frame it starts
    from, and allows ``torch._dynamo.config.recompile_limit`` (8) of them. Modules that share
    one ``forward`` but read different keys would share those 8 and fail at the ninth; with a
    copy per module, each module has its own budget.
    """
    copy = types.FunctionType(function.__code__.replace(), function.__globals__,
                              function.__name__, function.__defaults__, function.__closure__)
    copy.__kwdefaults__, copy.__qualname__ = function.__kwdefaults__, function.__qualname__
    return copy


class DirectCall:
    """Mixin: the plain call ``module(td)`` runs ``_forward_td``, any other call ``_fallback``.

    The plain call is ``module(tensordict)`` on one tensordict outside ``set_skip_existing``,
    on a module whose configuration allows it (``_direct``, decided at construction by
    ``_direct_ok``). A subclass implements ``_forward_td(tensordict)`` (read the keys,
    compute, write in place) and, where tensordict's general forward does more (keyword
    tensors, ``tensordict_out``...), ``_fallback``, which must give the same outputs.
    Sequences call their steps' ``_forward_td`` directly (``sequence_step``). Each module
    runs its own copy of ``forward`` (``own_code``), made when it is created or copied.
    """

    _direct = True

    def __new__(cls, *args, **kwargs):
        module = super().__new__(cls, *args, **kwargs)
        module._own_forward()
        return module

    def _own_forward(self) -> None:
        self.__dict__["forward"] = types.MethodType(own_code(type(self).forward), self)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("forward", None)  # a bound copy: made again by __setstate__
        return state

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        self._own_forward()

    def _direct_ok(self) -> bool:
        """Whether this module's configuration allows the plain call (read at construction)."""
        return True

    def forward(self, *args, **kwargs):
        if (self._direct and len(args) == 1 and not kwargs and (type(args[0]) is TensorDict
                or isinstance(args[0], TensorDictBase)) and not _skip_existing._mode):
            return self._forward_td(args[0])
        return self._fallback(*args, **kwargs)

    def _fallback(self, *args, **kwargs):
        return self._forward_td(*args, **kwargs)


def has_hooks(module: nn.Module) -> bool:
    """Whether calling ``module`` runs hooks, which a direct step would skip."""
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks or _global_forward_hooks
                or _global_forward_pre_hooks)


def sequence_step(module: nn.Module):
    """What a sequence calls for ``module``: its ``_forward_td``, or the module itself.

    The direct step applies to a ``DirectCall`` module whose ``forward`` is ``DirectCall``'s
    and whose configuration allows the plain call; a plain ``TensorDictModule`` runs through
    ``SafeModule``'s reader and writer. Any other module is called as usual.
    """
    if type(module).forward is DirectCall.forward and module._direct:
        return module._forward_td
    if type(module) is TensorDictModule and SafeModule._direct_ok(module):
        return functools.partial(call_td_module, module)
    return None


class SafeModule(DirectCall, TensorDictModule):
    """A ``TensorDictModule`` with an output spec; ``safe=True`` projects outputs into it.

    Reads ``in_keys``, writes ``out_keys`` (shapes as the wrapped module returns them).
    Outputs are written with ``TensorDictBase.set`` directly (tensordict 0.14 writes
    through ``TensorDict.from_any``, see ``call_td_module``).

    Built in chapter *Safe modules and actors*.

    Args:
        module (nn.Module or callable): maps the input tensors to the outputs.
        in_keys (list of NestedKey): keys read, passed to ``module`` in this order.
        out_keys (list of NestedKey): keys written, one per returned tensor (``"_"`` skips one).
        spec (TensorSpec or Composite, optional): the output domain; a single spec needs a
            single out_key, a ``Composite`` is keyed by out_keys.
        safe (bool): project every output into its spec. Defaults to ``False``.
        inplace (bool or str): as in ``TensorDictModule``. Defaults to ``True``.

    Examples:
        >>> from rlmods.specs import Bounded
        >>> module = SafeModule(lambda x: 3 * x, in_keys=["x"], out_keys=["y"],
        ...                     spec=Bounded(-1.0, 1.0, shape=(2,)), safe=True)
        >>> module(TensorDict(x=torch.tensor([[0.1, 0.5]]), batch_size=[1]))["y"]
        tensor([[0.3000, 1.0000]])
    """

    def __init__(self, module, in_keys, out_keys, spec: TensorSpec | None = None,
                 safe: bool = False, inplace: bool | str = True):
        super().__init__(module, in_keys, out_keys, inplace=inplace)
        self.register_spec(safe=safe, spec=spec)
        self._direct = self._direct_ok()

    def register_spec(self, safe: bool, spec) -> None:
        """Store ``spec`` as a Composite keyed by out_keys and prepare the projections."""
        owner = type(self).__name__
        spec = as_composite(spec, self.out_keys, owner)  # a clash: InvalidValueError, as torchrl
        if safe and all(spec.get(key) is None for key in self.out_keys):
            raise InvalidValueError(f"{owner}: safe=True needs a spec for at least one out_key, "
                                    f"got no spec for out_keys={self.out_keys}.")
        self.safe = safe
        self.spec = spec

    @property
    def spec(self) -> Composite:
        return self._spec

    @spec.setter
    def spec(self, spec: Composite) -> None:
        if not isinstance(spec, Composite):
            raise InvalidTypeError(f"{type(self).__name__}: spec must be a Composite, "
                                   f"got {type(spec).__name__}.")
        self._spec = spec
        leaves = spec.keys(True, True)
        self._projections = {key: unbatched_spec(spec[key]) for key in leaves
                             if spec[key] is not None and not isinstance(spec[key], Composite)}

    def _direct_ok(self) -> bool:
        """The plain call: in_keys passed in order to the module's ``__call__``, in place."""
        return (self._kwargs is None and self.method is None and not self._get_kwargs
                and self.inplace is True)

    def _forward_td(self, tensordict: TensorDictBase) -> TensorDictBase:
        """The plain call ``module(tensordict)``: read in_keys, call the module, write out_keys."""
        return call_td_module(self, tensordict)

    def _fallback(self, *args, **kwargs):
        """Keyword tensors, ``tensordict_out``, ``method``...: tensordict's forward, our writer."""
        return TensorDictModule.forward(self, *args, **kwargs)

    def _write_to_tensordict(self, tensordict, tensors, tensordict_out=None, out_keys=None):
        if tensordict_out is None and self.inplace is True:
            tensordict_out = tensordict
        elif tensordict_out is None:
            tensordict_out = tensordict.empty() if self.inplace == "empty" else TensorDict()
        return write_outputs(self, tensordict_out, tensors, out_keys)

    def random(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Write a draw from the first out_key's spec (shaped like ``tensordict``'s batch)."""
        key = self.out_keys[0]
        tensordict.set(key, self.spec[key].rand(tensordict.batch_size))
        return tensordict

    def random_sample(self, tensordict: TensorDictBase) -> TensorDictBase:
        return self.random(tensordict)

    def to(self, *args, **kwargs):
        dest = args[0] if args else kwargs.get("device", kwargs.get("dtype"))
        if isinstance(dest, (str, torch.device, torch.dtype)):
            self.spec = self.spec.to(dest)
        return TensorDictModule.to(self, *args, **kwargs)


class SafeSequential(TensorDictSequential, SafeModule):
    """A ``TensorDictSequential`` whose spec gathers the specs of its modules.

    Reads the union of its modules' missing in_keys; writes every module's out_keys.

    Built in chapter *Safe modules and actors*.

    Args:
        *modules (TensorDictModule): run in order.
        partial_tolerant (bool): run only the modules whose inputs are present.
        inplace (bool or str, optional): as in ``TensorDictSequential``.

    Examples:
        >>> from rlmods.specs import Unbounded
        >>> first = SafeModule(lambda x: x + 1, ["x"], ["h"], spec=Unbounded(2))
        >>> second = TensorDictModule(lambda h: 2 * h, ["h"], ["y"])
        >>> seq = SafeSequential(first, second)
        >>> seq(TensorDict(x=torch.zeros(2))).get("y"), sorted(seq.spec.keys())
        (tensor([2., 2.]), ['h', 'y'])
    """

    module: nn.ModuleList

    def __init__(self, *modules: TensorDictModule, partial_tolerant: bool = False,
                 inplace: bool | str | None = None):
        self.partial_tolerant = partial_tolerant
        in_keys, out_keys = self._compute_in_and_out_keys(modules)
        spec = Composite()
        for module in modules:
            module_spec = getattr(module, "spec", None)
            spec.update(module_spec if isinstance(module_spec, Composite)
                        else Composite({key: None for key in module.out_keys}))
        super(TensorDictSequential, self).__init__(
            spec=spec, module=nn.ModuleList(list(modules)), in_keys=in_keys, out_keys=out_keys,
            inplace=inplace)
        self._steps = [(module, sequence_step(module)) for module in modules]

    forward = DirectCall.forward

    def _direct_ok(self) -> bool:
        """Every module runs, in place, and every key is returned."""
        return (not self.partial_tolerant and self.inplace in (None, True)
                and not self._select_before_return)

    def _forward_td(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Run each module in turn: its direct step, or its ``__call__`` where it has hooks."""
        for module, step in self._steps:
            if step is None or has_hooks(module):
                tensordict = module(tensordict)
            else:
                tensordict = step(tensordict)
        return tensordict

    def _fallback(self, *args, **kwargs):
        return TensorDictSequential.forward(self, *args, **kwargs)

    def select_out_keys(self, *out_keys) -> "SafeSequential":
        out = TensorDictSequential.select_out_keys(self, *out_keys)
        self._direct = self._direct_ok()
        return out


class Actor(SafeModule):
    """A deterministic actor: ``"observation"`` in, ``"action"`` out, with an optional spec.

    Reads ``in_keys`` (default ``["observation"]``), writes ``out_keys`` (default ``["action"]``).

    Built in chapter *Safe modules and actors*.

    Args:
        module (nn.Module): maps the inputs to the action.
        in_keys (list of NestedKey, optional): defaults to ``["observation"]``.
        out_keys (list of NestedKey, optional): defaults to ``["action"]``.

    Keyword Args:
        spec (TensorSpec, optional): the action spec (wrapped as ``Composite(action=spec)``).
        safe (bool): project the action into ``spec``. Defaults to ``False``.

    Examples:
        >>> from rlmods.specs import Bounded
        >>> actor = Actor(nn.Linear(3, 1), spec=Bounded(-2.0, 2.0, shape=(1,)), safe=True)
        >>> out = actor(TensorDict(observation=100 * torch.ones(5, 3), batch_size=[5]))
        >>> out["action"].shape, bool(out["action"].abs().max() <= 2)
        (torch.Size([5, 1]), True)
    """

    def __init__(self, module: nn.Module, in_keys: Sequence[NestedKey] | None = None,
                 out_keys: Sequence[NestedKey] | None = None, *, spec: TensorSpec | None = None,
                 **kwargs):
        in_keys = [OBSERVATION] if in_keys is None else in_keys
        out_keys = [ACTION] if out_keys is None else out_keys
        if ACTION in out_keys and isinstance(spec, TensorSpec) and not isinstance(spec, Composite):
            spec = Composite({ACTION: spec})
        super().__init__(module, in_keys=in_keys, out_keys=out_keys, spec=spec, **kwargs)

    def get_dist(self, tensordict: TensorDictBase) -> torch.distributions.Distribution:
        """A ``Delta`` distribution at the actor's action.

        Its log_prob is ``+inf`` at the action and ``-inf`` elsewhere, as in torchrl (whose
        docstring says 0: a point mass has no finite density).
        """
        return Delta(self(tensordict).get(self.out_keys[0]))


class TanhModule(TensorDictModuleBase):
    """Squash ``in_keys`` with tanh into the box ``[low, high]`` (from the spec, or -1 and 1).

    Reads ``in_keys``, writes ``out_keys`` (default: the same keys), same shapes:
    ``low + (high - low) * (tanh(x) + 1) / 2``, that is ``m + h * tanh(x)`` with the box's
    middle ``m`` and half-width ``h``.

    Built in chapter *Safe modules and actors*.

    Args:
        in_keys (list of NestedKey): the unbounded inputs.
        out_keys (list of NestedKey, optional): where the squashed values go.

    Keyword Args:
        spec (TensorSpec or Composite, optional): the output spec (its bounds are used).
        low, high (float or tensor, optional): the bounds; must equal the spec's if both are given.
        clamp (bool): keep outputs at least one float resolution inside the bounds.

    Examples:
        >>> module = TanhModule(in_keys=["action"], low=-2.0, high=1.0)
        >>> module(TensorDict(action=torch.tensor([-100.0, 0.0, 100.0])))["action"]
        tensor([-2.0000, -0.5000,  1.0000])
    """

    def __init__(self, in_keys, out_keys=None, *, spec=None, low=None, high=None,
                 clamp: bool = False):
        super().__init__()
        out_keys = in_keys if out_keys is None else out_keys
        if len(in_keys) != len(out_keys):
            raise ValueError(f"TanhModule: out_keys must have as many entries as in_keys "
                             f"{in_keys}, got {out_keys}.")
        self.in_keys, self.out_keys = list(in_keys), list(out_keys)
        if not isinstance(spec, Composite):
            spec = Composite({key: spec for key in self.out_keys})
        self.spec = as_composite(spec, self.out_keys, "TanhModule")
        self._buffer_names = []
        for out_key in self.out_keys:
            bound_low, bound_high = self._make_low_high(low, high, self.spec[out_key])
            if (bound_high < bound_low).any():
                raise ValueError(f"TanhModule: high must not be below low for {key_str(out_key)}, "
                                 f"got low={bound_low.tolist()} and high={bound_high.tolist()}.")
            name = out_key if isinstance(out_key, str) else "_".join(out_key)  # torchrl's names
            self.register_buffer(f"{name}_low", bound_low)
            self.register_buffer(f"{name}_high", bound_high)
            self._buffer_names.append((f"{name}_low", f"{name}_high"))
        self.clamp = clamp

    def _make_low_high(self, low, high, leaf_spec):
        bounds = []
        for name, value, default in (("low", low, -1.0), ("high", high, 1.0)):
            from_spec = None if leaf_spec is None else getattr(leaf_spec.space, name)
            if value is None:
                value = from_spec if from_spec is not None else torch.tensor(default)
            elif from_spec is not None and (torch.as_tensor(value) != from_spec).any():
                raise ValueError(f"TanhModule: {name} must match the spec's {name} "
                                 f"{from_spec.tolist()}, got {torch.as_tensor(value).tolist()}.")
            bounds.append(torch.as_tensor(value).clone())
        return bounds[0], bounds[1]

    @dispatch
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        keys = zip(self.in_keys, self.out_keys, self._buffer_names)
        for in_key, out_key, (low_name, high_name) in keys:
            value = tensordict.get(in_key).tanh()
            if self.clamp:
                eps = torch.finfo(value.dtype).resolution
                value = value.clamp(-1 + eps, 1 - eps)
            low, high = getattr(self, low_name), getattr(self, high_name)
            tensordict.set(out_key, low + (high - low) * (value + 1) / 2)
        return tensordict


def _suffix(key: NestedKey, suffix: str) -> NestedKey:
    return key + suffix if isinstance(key, str) else (*key[:-1], key[-1] + suffix)


def _replace_last(key: NestedKey, name: str) -> NestedKey:
    return name if isinstance(key, str) else (*key[:-1], name)


def _last(key: NestedKey) -> str:
    return key if isinstance(key, str) else key[-1]


def _action_key_of(chunk_key: NestedKey) -> NestedKey:
    """The action key a plan key feeds: ``"action_chunk"`` and ``VLA_CHUNK`` -> ``"action"``."""
    if isinstance(chunk_key, tuple) and chunk_key[-2:] == VLA_CHUNK:
        return ACTION
    last = _last(chunk_key)
    if last.endswith(CHUNK_SUFFIX) and last != CHUNK_SUFFIX:
        return _replace_last(chunk_key, last[: -len(CHUNK_SUFFIX)])
    return chunk_key


def _plan_keys(actor_out_keys, action_keys, chunk_keys) -> tuple[list, list]:
    """``(action_keys, chunk_keys)``, each defaulted from the actor's out_keys as torchrl does."""
    out_keys = unravel_key_list(list(actor_out_keys))
    if chunk_keys is None:
        vla = [k for k in out_keys if isinstance(k, tuple) and k[-2:] == VLA_CHUNK]
        chunk_keys = vla or [k for k in out_keys if _last(k).endswith(CHUNK_SUFFIX)]
    chunk_keys = unravel_key_list(chunk_keys if isinstance(chunk_keys, list) else [chunk_keys])
    if action_keys is None:
        action_keys = ([_action_key_of(k) for k in chunk_keys] if chunk_keys
                       else [k for k in out_keys if _last(k) == ACTION])
    action_keys = unravel_key_list(action_keys if isinstance(action_keys, list) else [action_keys])
    chunk_keys = chunk_keys or action_keys
    if len(action_keys) != len(chunk_keys):
        raise ValueError(f"MultiStepActorWrapper: action_keys and chunk_keys must have the same "
                         f"length, got {action_keys} and {chunk_keys}.")
    return action_keys, chunk_keys


def _step_of_plan(plan: torch.Tensor, step: torch.Tensor, time_dim: int,
                  keep_dim: bool) -> torch.Tensor:
    """``plan[..., step, ...]`` along ``time_dim``, one step per batch entry.

    ``plan`` is ``(*B, T, *A)`` with ``len(B) == time_dim``, ``step`` holds ``prod(B)`` ints;
    the result is ``(*B, *A)``, or ``(*B, 1, *A)`` with ``keep_dim``.
    """
    batch, event = plan.shape[:time_dim], plan.shape[time_dim + 1:]
    index = step.long().reshape(*batch, 1, *[1] * len(event))  # (*B, 1, 1...)
    action = plan.gather(time_dim, index.expand(*batch, 1, *event))  # (*B, 1, *A)
    return action if keep_dim else action.squeeze(time_dim)


class MultiStepActorWrapper(TensorDictModuleBase):
    """Run an actor that plans ``n_steps`` actions at once, replaying its plan one step per call.

    Reads the actor's in_keys and ``init_key`` (``"is_init"``, shape ``(*B, 1)``); writes each
    action key (the current step of the plan), the plan itself (``"action_orig"``, shape
    ``(*B, n_steps, *A)``, or the actor's ``"*_chunk"`` key) and ``"counter"``. The actor is
    called again where ``is_init`` is set or the plan is used up (or every
    ``replan_interval`` steps).

    Built in chapter *Safe modules and actors*.

    Args:
        actor (TensorDictModuleBase): writes plans with a time dim right after the batch dims.
        n_steps (int, optional): the plan length (checked against the actor's output).

    Keyword Args:
        action_keys (list of NestedKey, optional): defaults to the actor's out_keys ending in
            ``"action"`` (or those inferred from ``chunk_keys``: ``"action_chunk"`` ->
            ``"action"``).
        chunk_keys (list of NestedKey, optional): the actor's plan keys; default: its
            ``"*_chunk"`` / ``("vla_action", "chunk")`` out_keys, else the action keys.
        init_key (NestedKey, optional): defaults to ``"is_init"``.
        keep_dim (bool): keep a time dim of size 1 in the action. Defaults to ``False``.
        replan_interval (int, optional): call the actor again after this many steps, in
            ``[1, n_steps]``.

    Examples:
        >>> plan = TensorDictModule(lambda obs: obs.unsqueeze(-2) + torch.arange(3.0).view(3, 1),
        ...                         in_keys=["observation"], out_keys=["action"])
        >>> actor = MultiStepActorWrapper(plan, n_steps=3)
        >>> td = TensorDict(observation=torch.zeros(1, 1),
        ...                 is_init=torch.ones(1, 1, dtype=torch.bool), batch_size=[1])
        >>> steps = []
        >>> for _ in range(4):
        ...     steps.append(actor(td)["action"].item())
        ...     td["is_init"] = torch.zeros(1, 1, dtype=torch.bool)
        >>> steps
        [0.0, 1.0, 2.0, 0.0]
    """

    def __init__(self, actor: TensorDictModuleBase, n_steps: int | None = None, *,
                 action_keys: list[NestedKey] | None = None,
                 chunk_keys: list[NestedKey] | None = None, init_key: NestedKey | None = None,
                 keep_dim: bool = False, replan_interval: int | None = None):
        super().__init__()
        owner = "MultiStepActorWrapper"
        interval = None if replan_interval is None else int(replan_interval)
        if interval is not None and not 1 <= interval <= (n_steps or interval):
            raise ValueError(f"{owner}: replan_interval must be in [1, n_steps={n_steps}], "
                             f"got {replan_interval}.")
        if isinstance(init_key, list):
            raise ValueError(f"{owner}: init_key must be a single key, got {init_key}.")
        self.actor, self.n_steps, self.keep_dim, self.replan_interval = (
            actor, n_steps, keep_dim, interval)
        self.init_key = IS_INIT if init_key is None else unravel_key(init_key)
        self.counter_key = _replace_last(self.init_key, COUNTER)
        self.action_keys, self.chunk_keys = _plan_keys(actor.out_keys, action_keys, chunk_keys)
        # where the plan is kept between calls: the chunk key, or "<action>_orig"
        self._cache_keys = {action: (chunk if chunk != action else _suffix(action, ORIG_SUFFIX))
                            for action, chunk in zip(self.action_keys, self.chunk_keys)}

    @property
    def in_keys(self):
        return list(self.actor.in_keys) + [self.init_key]

    @property
    def out_keys(self):
        out_keys = list(self.actor.out_keys)
        for key in [*self.action_keys, *self._cache_keys.values(), self.counter_key]:
            if key not in out_keys:
                out_keys.append(key)
        return out_keys

    def _replan(self, tensordict: TensorDictBase) -> None:
        """Call the actor where a new plan is needed (``is_init`` or the plan used up)."""
        is_init = tensordict.get(self.init_key, None)  # (*B, 1)
        if is_init is None:
            raise KeyError(f"MultiStepActorWrapper: expected key {key_str(self.init_key)} in the "
                           "input tensordict (add an InitTracker transform to the env).")
        counter = tensordict.get(self.counter_key, None)
        counter = is_init.int() if counter is None else counter  # steps taken from the plan
        interval = self.replan_interval or self.n_steps
        if interval is not None:
            is_init = is_init | (counter >= interval)
        if is_init.any():
            counter = counter.masked_fill(is_init, 0)
            output = self.actor(tensordict[is_init.reshape(tensordict.shape)])
            self._store_plans(tensordict, output, is_init)
        tensordict.set(self.counter_key, counter + 1)

    def _store_plans(self, tensordict: TensorDictBase, output: TensorDictBase,
                     is_init: torch.Tensor) -> None:
        """Write the actor's new plans into the cache where ``is_init`` (``(*B, 1)``) is set."""
        for action_key, chunk_key in zip(self.action_keys, self.chunk_keys):
            cache_key = self._cache_keys[action_key]
            plan, cached = output.get(chunk_key), tensordict.get(cache_key, None)
            if cached is None and not is_init.all():  # torchrl: RuntimeError
                raise InvalidValueError(
                    "MultiStepActorWrapper: is_init must be set everywhere on the first call "
                    f"(no cached plan under {key_str(cache_key)}), got it partially set.")
            if cached is not None:
                plan = torch.masked_scatter(cached, expand_as_right(is_init, cached), plan)
            elif isinstance(cache_key, tuple) and output.get(cache_key[:-1], None) is not None:
                # keep the actor's container (a tensorclass, say) and its other entries
                tensordict.set(cache_key[:-1], output.get(cache_key[:-1]))
                continue
            tensordict.set(cache_key, plan)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        owner = "MultiStepActorWrapper"
        self._replan(tensordict)
        counter = tensordict.get(self.counter_key)  # (*B, 1), 1 on the plan's first step
        for action_key, cache_key in self._cache_keys.items():
            plan = tensordict.get(cache_key)  # (*B, T, *A)
            parent = tensordict.get(cache_key[:-1]) if isinstance(cache_key, tuple) else tensordict
            time_dim = parent.ndim  # the time dim follows the batch dims of the plan's container
            length = plan.shape[time_dim]
            if self.n_steps is not None and length != self.n_steps:  # torchrl: RuntimeError
                raise InvalidValueError(
                    f"{owner}: the plan {key_str(cache_key)} must have n_steps={self.n_steps} "
                    f"entries in dim {time_dim}, got shape {tuple(plan.shape)}.")
            if self.replan_interval is not None and length < self.replan_interval:
                raise InvalidValueError(
                    f"{owner}: the plan {key_str(cache_key)} must have at least "
                    f"replan_interval={self.replan_interval} steps, got {length}.")
            step = counter - 1
            if self.n_steps is None and self.replan_interval is None:
                step = step.remainder(length)
            tensordict.set(action_key, _step_of_plan(plan, step, time_dim, self.keep_dim))
        return tensordict


class VmapModule(TensorDictModuleBase):
    """``torch.vmap`` a TensorDict module over one batch dim of its input.

    Reads and writes the wrapped module's keys; the module sees one batch dim fewer.

    Built in chapter *Safe modules and actors*.

    Args:
        module (TensorDictModuleBase): the module to vmap.
        vmap_dim (int, optional): the batch dim to map over. Defaults to the last batch dim.
        mock (bool): loop over the dim and stack instead of vmapping (for debugging).

    Examples:
        >>> first = TensorDictModule(lambda x: x[0], in_keys=["x"], out_keys=["y"])
        >>> td = TensorDict(x=torch.arange(6.0).view(3, 2), batch_size=[3])
        >>> VmapModule(first, 0)(td)["y"]
        tensor([0., 2., 4.])
    """

    def __init__(self, module: TensorDictModuleBase, vmap_dim=None, mock: bool = False):
        super().__init__()
        self.in_keys, self.out_keys = module.in_keys, module.out_keys
        self.module, self.vmap_dim, self.mock = module, vmap_dim, mock

    def mock_(self, value: bool = True) -> None:
        self.mock = value

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        dim = tensordict.ndim - 1 if self.vmap_dim is None else self.vmap_dim
        if self.mock:
            out = torch.stack([self.module(part) for part in tensordict.unbind(dim)], dim)
        else:
            out = torch.vmap(self.module, (dim,), (dim,))(tensordict)
        return tensordict.update(out)
