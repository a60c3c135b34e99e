"""Exploration: noise on actions (ε-greedy, Gaussian, Ornstein-Uhlenbeck) and on weights.

The action modules read ``"action"`` (shape ``(*B, *spec.shape)``) and write it back, noisy,
but only under ``ExplorationType.RANDOM`` (or when no exploration type is set, as in
torchrl); under DETERMINISTIC / MODE / MEAN the action passes through untouched.
Built in chapter *Exploration*; mirrors torchrl 0.14's ``EGreedyModule``,
``AdditiveGaussianModule``, ``OrnsteinUhlenbeckProcessModule`` (and their deprecated
wrappers), ``ConsistentDropout(Module)``, ``NoisyLinear``, ``NoisyLazyLinear``,
``reset_noise``.
"""

from __future__ import annotations

import math
import warnings

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase, TensorDictSequential
from tensordict.nn.probabilistic import _interaction_type  # exploration_type()'s state
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.dropout import _DropoutNd
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from rlmods._checks import (InvalidTypeError, InvalidValueError, check_trailing_shape, key_str,
                            require_key, shape_str, validate_args)
from rlmods._keys import ACTION, IS_INIT
from rlmods._spec_args import as_composite, leaf_spec
from rlmods.actors import DirectCall, read_entry, write_entry
from rlmods.envs import ExplorationType, TensorDictPrimer, exploration_type
from rlmods.nets import LAZY_LAYERS, NO_SHARED_BIAS
from rlmods.specs import Composite, TensorSpec, Unbounded

OU_NOISE, OU_STEPS = "_ou_prev_noise", "_ou_steps"


def _exploring() -> bool:
    """True under ExplorationType.RANDOM, and when no type is set (torchrl's default)."""
    # exploration_type() reads the same state under a lock: a microsecond per call
    return _interaction_type._mode in (ExplorationType.RANDOM, None)


def _required_spec(spec, action_key, owner: str) -> TensorSpec:
    """The action's leaf spec; a missing (None) spec is a RuntimeError too, as in torchrl."""
    if spec is None:
        raise InvalidTypeError(f"{owner}: spec must be a TensorSpec (the action spec, e.g. "
                               "env.action_spec), got None.")
    return leaf_spec(spec, action_key, owner)


class _Annealed(DirectCall, TensorDictModuleBase):
    """A noise scale that goes linearly from ``<name>_init`` to ``<name>_end`` with ``step()``.

    The scale is a buffer (``eps`` or ``sigma``, as in torchrl's state_dict); ``repr`` and
    ``annealing_progress`` show where the schedule stands, so a forgotten ``step()`` shows.
    """

    _scale = "eps"

    def _init_schedule(self, init: float, end: float, annealing_num_steps: int, device) -> None:
        name, owner = self._scale, type(self).__name__
        if end > init:
            raise InvalidValueError(f"{owner}: {name}_end must not exceed {name}_init (the noise "
                                    f"decreases or stays constant), got {name}_init={init} and "
                                    f"{name}_end={end}.")
        if annealing_num_steps <= 0:
            raise ValueError(f"{owner}: annealing_num_steps must be a positive number of steps, "
                             f"got {annealing_num_steps}.")
        self.annealing_num_steps = annealing_num_steps
        self.register_buffer(f"{name}_init", torch.as_tensor(init, device=device))
        self.register_buffer(f"{name}_end", torch.as_tensor(end, device=device))
        self.register_buffer(name, torch.as_tensor(init, dtype=torch.float32, device=device))

    def _set_spec(self, spec, device=None) -> None:
        """Keep ``Composite({action_key: spec, other out_keys: None})`` and the action's leaf."""
        owner = type(self).__name__
        _required_spec(spec, self.action_key, owner)
        spec = as_composite(spec, self.out_keys, owner, leaf_key=self.action_key,
                            batch_shape=True, strict=False)
        self._spec = spec if device is None else spec.to(device)
        self._action_spec = self._spec[self.action_key]

    @property
    def spec(self) -> Composite | None:
        """The spec as torchrl keeps it, a Composite holding the action's spec."""
        return self._spec

    def step(self, frames: int = 1) -> None:
        """Anneal the noise scale by ``frames`` steps (one op, whatever ``frames``)."""
        if not isinstance(frames, int) or frames < 0:
            raise ValueError(f"{type(self).__name__}: frames must be a non-negative int, "
                             f"got {frames!r}.")
        name = self._scale
        scale = getattr(self, name)
        init, end = getattr(self, f"{name}_init"), getattr(self, f"{name}_end")
        delta = (init - end) / self.annealing_num_steps
        scale.copy_(torch.maximum(end, scale - frames * delta))

    @property
    def annealing_progress(self) -> float:
        """How far the schedule has gone: 0.0 at ``<name>_init``, 1.0 at ``<name>_end``."""
        name = self._scale
        init, end = float(getattr(self, f"{name}_init")), float(getattr(self, f"{name}_end"))
        return 1.0 if init == end else (init - float(getattr(self, name))) / (init - end)

    def _read_action(self, tensordict: TensorDictBase):
        """The action (trailing shape checked) and the batch shape of the tensordict holding it.

        For a nested key such as ``("agents", "action")`` that is the sub-tensordict's.
        """
        action, shape = read_entry(tensordict, self.action_key, self), self._action_spec.shape
        if action.ndim < len(shape) or action.shape[action.ndim - len(shape):] != shape:
            check_trailing_shape(action, shape, type(self).__name__, key_str(self.action_key))
        nested = isinstance(self.action_key, tuple) and len(self.action_key) > 1
        holder = tensordict.get(self.action_key[:-1]) if nested else tensordict
        return action, holder.batch_size

    def __repr__(self) -> str:
        name = self._scale
        init, end = (round(float(getattr(self, name + suffix)), 6)
                     for suffix in ("_init", "_end"))
        return (f"{type(self).__name__}({name}={float(getattr(self, name)):.4f}, "
                f"{name}_init={init}, {name}_end={end}, "
                f"annealing_num_steps={self.annealing_num_steps}, "
                f"annealing_progress={self.annealing_progress:.1%}, "
                f"action_key={self.action_key!r})")


def egreedy_action(action: torch.Tensor, random_action: torch.Tensor,
                   explore: torch.Tensor) -> torch.Tensor:
    """``random_action`` where ``explore`` (``(*B,)``, bool) is True, else ``action`` ``(*B, *A)``.

    Examples:
        >>> greedy, rand = torch.zeros(3, 2), torch.ones(3, 2)
        >>> egreedy_action(greedy, rand, torch.tensor([True, False, True])).sum(-1).tolist()
        [2.0, 0.0, 2.0]
    """
    for _ in range(action.ndim - explore.ndim):  # (*B, 1, ...): broadcast over the action
        explore = explore.unsqueeze(-1)
    if random_action.device != action.device:
        random_action = random_action.to(action.device)
    return torch.where(explore, random_action, action)


def _check_action_mask(mask: torch.Tensor, groups, owner: str, what: str) -> None:
    """Raise unless every row of ``mask`` allows an action in each group of its last dim.

    ``groups`` are the sizes the last dim splits into (``[n]``, or a multi-discrete spec's
    ``nvec``). Reads the mask's values: run it only while :func:`rlmods.validate_args` is on.

    Examples:
        >>> _check_action_mask(torch.tensor([[True, False], [False, True]]), [2], "Demo", "'mask'")
    """
    allowed = torch.stack([part.any(-1) for part in mask.split(list(groups), -1)])  # (G, *B)
    if not bool(allowed.all()):
        raise InvalidValueError(f"{owner}: {what} must allow at least one action in every row, "
                                f"got {int((~allowed).sum())} row(s) of all False.")


class EGreedyModule(_Annealed):
    """ε-greedy: with probability ε, replace a sample's action by a random one from the spec.

    Reads ``action_key`` (``(*B, *spec.shape)``) and, with ``action_mask_key``, a boolean mask
    of allowed actions; writes ``action_key``. ε anneals from ``eps_init`` to ``eps_end``
    over ``annealing_num_steps`` calls of ``step()`` (call it in the training loop).
    Built in chapter *Exploration*.

    Args:
        spec (TensorSpec): the action spec random actions are drawn from.
        eps_init (float): initial ε, in [0, 1]. Defaults to 1.0.
        eps_end (float): final ε, in [0, eps_init]. Defaults to 0.1.
        annealing_num_steps (int): steps from eps_init to eps_end. Defaults to 1000.

    Keyword Args:
        action_key (NestedKey): the action. Defaults to ``"action"``.
        action_mask_key (NestedKey, optional): boolean mask of allowed actions (discrete
            specs); a mask that allows nothing in a row is an error while
            :func:`rlmods.validate_args` is on.
        device (torch.device, optional): where the ε buffers live.

    Examples:
        >>> from rlmods.specs import OneHot
        >>> from tensordict import TensorDict
        >>> module = EGreedyModule(OneHot(4), eps_init=0.5, eps_end=0.1, annealing_num_steps=4)
        >>> module.step(2)
        >>> round(float(module.eps), 4), round(module.annealing_progress, 4)
        (0.3, 0.5)
        >>> td = TensorDict({"action": torch.eye(4)[torch.zeros(8, dtype=torch.long)]}, [8])
        >>> module(td)["action"].sum(-1).tolist() == [1] * 8
        True
    """

    def __init__(self, spec: TensorSpec, eps_init: float = 1.0, eps_end: float = 0.1,
                 annealing_num_steps: int = 1000, *, action_key=ACTION, action_mask_key=None,
                 device: torch.device | None = None):
        super().__init__()
        for name, value in (("eps_init", eps_init), ("eps_end", eps_end)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"EGreedyModule: {name} must be a probability in [0, 1], "
                                 f"got {value}.")
        self._init_schedule(eps_init, eps_end, annealing_num_steps, device)
        self.action_key, self.action_mask_key = action_key, action_mask_key
        mask = [action_mask_key] if action_mask_key is not None else []
        self.in_keys, self.out_keys = [action_key, *mask], [action_key]
        self._set_spec(spec, device)
        if action_mask_key is not None and not hasattr(self._action_spec, "update_mask"):
            raise TypeError("EGreedyModule: action_mask_key needs a discrete spec (OneHot, "
                            "Categorical, MultiOneHot, MultiCategorical), got "
                            f"{type(self._action_spec).__name__}.")

    def _forward_td(self, tensordict: TensorDictBase) -> TensorDictBase:
        if not _exploring():
            return tensordict
        action, batch_shape = self._read_action(tensordict)
        explore = torch.rand(batch_shape, device=self.eps.device) < self.eps  # (*B,), drawn first
        random_action = self._random_action(tensordict, action)
        write_entry(tensordict, self.action_key, egreedy_action(action, random_action, explore))
        return tensordict

    def _random_action(self, tensordict: TensorDictBase, action: torch.Tensor) -> torch.Tensor:
        """A random action per sample, among the allowed ones when there is a mask."""
        spec = self._action_spec
        if self.action_mask_key is None:
            return spec.rand(action.shape[:action.ndim - spec.ndim])
        mask = require_key(tensordict, self.action_mask_key, "EGreedyModule")
        if validate_args() and not torch.compiler.is_compiling():  # reads values: a GPU sync
            groups = getattr(spec, "nvec", None) or [mask.shape[-1]]
            _check_action_mask(mask, groups, "EGreedyModule", key_str(self.action_mask_key))
        spec = spec.expand(action.shape) if spec.shape != action.shape else spec.clone()
        spec.update_mask(mask)
        return spec.rand()


class AdditiveGaussianModule(_Annealed):
    """Adds ``sigma * N(mean, std)`` to the action, then projects it into the spec.

    Reads and writes ``action_key`` (``(*B, *spec.shape)``). sigma anneals from ``sigma_init``
    to ``sigma_end`` over ``annealing_num_steps`` calls of ``step()``.
    Built in chapter *Exploration*.

    Args:
        spec (TensorSpec, optional): the action spec; may be set later via ``module.spec``.
        sigma_init (float): initial noise scale. Defaults to 1.0.
        sigma_end (float): final noise scale. Defaults to 0.1.
        annealing_num_steps (int): steps from sigma_init to sigma_end. Defaults to 1000.
        mean (float): mean of the unit noise. Defaults to 0.0.
        std (float): standard deviation of the unit noise. Defaults to 1.0.

    Keyword Args:
        action_key (NestedKey): the action. Defaults to ``"action"``.
        safe (bool): accepted as in torchrl, where the noisy action is always projected.
        device (torch.device, optional): where the buffers live.

    Examples:
        >>> from rlmods.specs import Bounded
        >>> from tensordict import TensorDict
        >>> module = AdditiveGaussianModule(Bounded(-1.0, 1.0, (2,)), sigma_init=5.0)
        >>> action = module(TensorDict({"action": torch.zeros(100, 2)}, [100]))["action"]
        >>> bool(action.abs().max() <= 1), bool((action != 0).all())
        (True, True)
    """

    _scale = "sigma"

    def __init__(self, spec: TensorSpec | None = None, sigma_init: float = 1.0,
                 sigma_end: float = 0.1, annealing_num_steps: int = 1000, mean: float = 0.0,
                 std: float = 1.0, *, action_key=ACTION, safe: bool = False,
                 device: torch.device | None = None):
        super().__init__()
        if sigma_end < 0:
            raise ValueError(f"AdditiveGaussianModule: sigma_end must be >= 0, got {sigma_end}.")
        self._init_schedule(sigma_init, sigma_end, annealing_num_steps, device)
        self.register_buffer("mean", torch.tensor(mean, device=device))
        self.register_buffer("std", torch.tensor(std, device=device))
        self.action_key, self.safe = action_key, safe
        self.in_keys = self.out_keys = [action_key]
        self._spec = self._action_spec = None
        if spec is not None:
            self._set_spec(spec)

    @_Annealed.spec.setter
    def spec(self, value: TensorSpec) -> None:
        self._set_spec(value)

    def _forward_td(self, tensordict: TensorDictBase) -> TensorDictBase:
        if not _exploring():
            return tensordict
        if self._action_spec is None:
            raise InvalidValueError("AdditiveGaussianModule: spec must be set before the first "
                                    "call (pass it at construction or assign module.spec), "
                                    "got None.")
        action, _ = self._read_action(tensordict)
        mean, std = self.mean.float().expand(action.shape), self.std.float().expand(action.shape)
        noise = torch.normal(mean, std).to(action.device)  # (*B, *A)
        noisy = self._action_spec.project(action + noise * self.sigma)
        write_entry(tensordict, self.action_key, noisy)
        return tensordict


class _OrnsteinUhlenbeckProcess(nn.Module):
    """One OU step on tensors: ``x' = x + θ(μ - x)dt + σ_n √dt W``, with σ annealed per sample.

    ``sigma_n = max(sigma_min, sigma + m * n)`` where ``n`` counts the steps since ``is_init``.
    """

    def __init__(self, theta: float, mu: float = 0.0, sigma: float = 0.2, dt: float = 1e-2,
                 x0=None, sigma_min: float | None = None, n_steps_annealing: int = 1000,
                 device=None):
        super().__init__()
        self.register_buffer("_empty_tensor_device", torch.zeros(0, device=device))  # as torchrl
        self.theta, self.mu, self.sigma, self.dt = theta, mu, sigma, dt
        self.c, self.sigma_min = sigma, sigma if sigma_min is None else sigma_min
        self.m = (self.sigma_min - sigma) / float(n_steps_annealing)  # the slope of σ_n
        if isinstance(x0, torch.Tensor):
            self.register_buffer("x0", x0)
        else:
            self.x0 = 0.0 if x0 is None else torch.as_tensor(x0)

    def current_sigma(self, n_steps: torch.Tensor) -> torch.Tensor:
        return (self.m * n_steps + self.c).clamp_min(self.sigma_min)

    def forward(self, prev_noise: torch.Tensor, n_steps: torch.Tensor) -> torch.Tensor:
        prev = prev_noise + self.x0  # (*B, *A)
        n_steps = n_steps.reshape(*n_steps.shape, *[1] * (prev.ndim - n_steps.ndim))  # (*B, 1..)
        return (prev + self.theta * (self.mu - prev) * self.dt
                + self.current_sigma(n_steps) * math.sqrt(self.dt) * torch.randn_like(prev))


class OrnsteinUhlenbeckProcessModule(_Annealed):
    """Temporally correlated (Ornstein-Uhlenbeck) noise added to the action, as in DDPG.

    Reads ``action_key`` (``(*B, *A)``) and ``is_init_key``; reads and writes its state
    ``"_ou_prev_noise"`` (``(*B, *A)``) and ``"_ou_steps"`` (``(*B,)``), which restart
    where ``is_init`` is True. The state lives in the tensordict, so a rollout is
    reproducible from its data. ``eps`` scales the noise and anneals with ``step()``.
    Built in chapter *Exploration*.

    Args:
        spec (TensorSpec): the action spec (the noisy action is projected into it when
            ``safe``).
        eps_init, eps_end (float): the noise factor's schedule. Defaults to 1.0 and 0.1.
        annealing_num_steps (int): steps from eps_init to eps_end. Defaults to 1000.
        theta, mu, sigma, dt (float): the OU equation's parameters. Defaults 0.15, 0.0, 0.2,
            0.01.
        x0 (tensor, optional): the process's offset. Defaults to 0.
        sigma_min (float, optional): sigma anneals per episode step down to this. Defaults
            to sigma.
        n_steps_annealing (int): episode steps for sigma's annealing. Defaults to 1000.

    Keyword Args:
        action_key (NestedKey): the action. Defaults to ``"action"``.
        is_init_key (NestedKey): the episode-start flag. Defaults to ``"is_init"``.
        safe (bool): project the noisy action into the spec. Defaults to True.
        device (torch.device, optional): where the buffers live.

    Examples:
        >>> from rlmods.specs import Bounded
        >>> from tensordict import TensorDict
        >>> ou = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (4,)))
        >>> is_init = torch.ones(10, 1, dtype=torch.bool)
        >>> td = ou(TensorDict({"action": torch.zeros(10, 4), "is_init": is_init}, [10]))
        >>> td["_ou_prev_noise"].shape, td["_ou_steps"].tolist() == [1] * 10
        (torch.Size([10, 4]), True)
    """

    def __init__(self, spec: TensorSpec, eps_init: float = 1.0, eps_end: float = 0.1,
                 annealing_num_steps: int = 1000, theta: float = 0.15, mu: float = 0.0,
                 sigma: float = 0.2, dt: float = 1e-2, x0=None, sigma_min: float | None = None,
                 n_steps_annealing: int = 1000, *, action_key=ACTION, is_init_key=IS_INIT,
                 safe: bool = True, device: torch.device | None = None):
        super().__init__()
        self.ou = _OrnsteinUhlenbeckProcess(theta, mu, sigma, dt, x0, sigma_min,
                                            n_steps_annealing, device)
        self._init_schedule(eps_init, eps_end, annealing_num_steps, device)
        self.action_key, self.is_init_key, self.safe = action_key, is_init_key, safe
        self.noise_key, self.steps_key = OU_NOISE, OU_STEPS
        self.in_keys = [action_key]
        self.out_keys = [action_key, OU_NOISE, OU_STEPS]
        self._set_spec(spec)

    def _is_init(self, tensordict: TensorDictBase, batch_shape: torch.Size) -> torch.Tensor | None:
        """``is_init`` brought to the action's batch shape ``(*B,)``, or None if absent."""
        is_init = tensordict.get(self.is_init_key, None)
        if is_init is None:
            warnings.warn(f"OrnsteinUhlenbeckProcessModule: expected key "
                          f"{key_str(self.is_init_key)} to reset the noise at episode starts, "
                          "found none: the noise never restarts. Add InitTracker() to the "
                          "environment.", stacklevel=3)
            return None
        if is_init.ndim > 1 and is_init.shape[-1] == 1:
            is_init = is_init.squeeze(-1)
        if is_init.ndim > len(batch_shape):
            is_init = is_init.flatten(len(batch_shape)).any(-1)
        if is_init.shape != batch_shape[:is_init.ndim]:
            got = shape_str(tensordict.get(self.is_init_key).shape)
            raise InvalidValueError(f"OrnsteinUhlenbeckProcessModule: {key_str(self.is_init_key)} "
                                    f"must have the action's batch shape {shape_str(batch_shape)}, "
                                    f"got shape {got}.")
        missing = (1,) * (len(batch_shape) - is_init.ndim)
        return is_init.reshape(is_init.shape + missing).expand(batch_shape)

    def _forward_td(self, tensordict: TensorDictBase) -> TensorDictBase:
        if not _exploring():
            return tensordict
        action, batch_shape = self._read_action(tensordict)
        is_init = self._is_init(tensordict, batch_shape)
        noise = tensordict.get(OU_NOISE, None)
        if noise is None:
            noise = torch.zeros(action.shape, device=action.device)  # (*B, *A)
            steps = torch.zeros(batch_shape, dtype=torch.long, device=action.device)  # (*B,)
        else:
            steps = tensordict.get(OU_STEPS)
        if is_init is not None:  # restart the process where an episode starts
            event_dims = [1] * (noise.ndim - len(batch_shape))
            noise = noise.masked_fill(is_init.reshape(*batch_shape, *event_dims), 0)
            steps = steps.masked_fill(is_init, 0)
        noise = self.ou(noise, steps)
        action = action + self.eps * noise
        tensordict.set(OU_NOISE, noise - self.ou.x0)
        tensordict.set(self.action_key, self._action_spec.project(action) if self.safe else action)
        tensordict.set(OU_STEPS, steps + 1)
        return tensordict


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated (torchrl 0.14 removed it): use "
                  f"TensorDictSequential(policy, {new}(spec, ...)) instead.", DeprecationWarning,
                  stacklevel=3)


def _policy_spec(policy, spec, action_key, owner: str) -> TensorSpec:
    """The wrapper's ``spec``, else the policy's own ``spec`` (as the old wrappers did)."""
    spec = spec if spec is not None else getattr(policy, "spec", None)
    if spec is None:
        raise ValueError(f"{owner}: spec must be given (or the policy must have one), got None.")
    return leaf_spec(spec, action_key, owner)


class _ExplorationWrapper(TensorDictSequential):
    """``TensorDictSequential(policy, module)``, with the module's ``step`` and schedule exposed."""

    def step(self, frames: int = 1) -> None:
        self.module[-1].step(frames)

    @property
    def annealing_progress(self) -> float:
        return self.module[-1].annealing_progress


class EGreedyWrapper(_ExplorationWrapper):
    """[Deprecated] ``TensorDictSequential(policy, EGreedyModule(...))``.

    Built in chapter *Exploration*.
    """

    def __init__(self, policy, *, eps_init: float = 1.0, eps_end: float = 0.1,
                 annealing_num_steps: int = 1000, action_key=ACTION, action_mask_key=None,
                 spec: TensorSpec | None = None):
        _deprecated("EGreedyWrapper", "EGreedyModule")
        spec = _policy_spec(policy, spec, action_key, "EGreedyWrapper")
        super().__init__(policy, EGreedyModule(spec, eps_init, eps_end, annealing_num_steps,
                                               action_key=action_key,
                                               action_mask_key=action_mask_key))


class AdditiveGaussianWrapper(_ExplorationWrapper):
    """[Deprecated] ``TensorDictSequential(policy, AdditiveGaussianModule(...))``.

    Built in chapter *Exploration*.
    """

    def __init__(self, policy, *, sigma_init: float = 1.0, sigma_end: float = 0.1,
                 annealing_num_steps: int = 1000, mean: float = 0.0, std: float = 1.0,
                 action_key=ACTION, spec: TensorSpec | None = None, safe: bool | None = True,
                 device: torch.device | None = None):
        _deprecated("AdditiveGaussianWrapper", "AdditiveGaussianModule")
        spec = _policy_spec(policy, spec, action_key, "AdditiveGaussianWrapper")
        super().__init__(policy, AdditiveGaussianModule(
            spec, sigma_init, sigma_end, annealing_num_steps, mean, std, action_key=action_key,
            safe=bool(safe), device=device))


class OrnsteinUhlenbeckProcessWrapper(_ExplorationWrapper):
    """[Deprecated] ``TensorDictSequential(policy, OrnsteinUhlenbeckProcessModule(...))``.

    ``key`` is the old name of ``action_key``. Built in chapter *Exploration*.
    """

    def __init__(self, policy, *, eps_init: float = 1.0, eps_end: float = 0.1,
                 annealing_num_steps: int = 1000, theta: float = 0.15, mu: float = 0.0,
                 sigma: float = 0.2, dt: float = 1e-2, x0=None, sigma_min: float | None = None,
                 n_steps_annealing: int = 1000, action_key=ACTION, is_init_key=IS_INIT,
                 spec: TensorSpec = None, safe: bool = True, key=None,
                 device: torch.device | None = None):
        _deprecated("OrnsteinUhlenbeckProcessWrapper", "OrnsteinUhlenbeckProcessModule")
        action_key = key if key is not None else action_key
        spec = _policy_spec(policy, spec, action_key, "OrnsteinUhlenbeckProcessWrapper")
        super().__init__(policy, OrnsteinUhlenbeckProcessModule(
            spec, eps_init, eps_end, annealing_num_steps, theta, mu, sigma, dt, x0, sigma_min,
            n_steps_annealing, action_key=action_key, is_init_key=is_init_key, safe=safe,
            device=device))


class ConsistentDropout(_DropoutNd):
    """Dropout whose mask can be given back: ``(x * mask, mask)`` in train mode, ``x`` in eval.

    Hausknecht & Wagener (2022): reuse the rollout's masks in the update. Follows
    ``train()`` / ``eval()`` like ``nn.Dropout``, not the exploration type.
    The mask is 0 or ``1 / (1 - p)``, shape of ``x``. Built in chapter *Exploration*.

    Args:
        p (float): the drop probability, in [0, 1]. Defaults to 0.5.

    Examples:
        >>> drop = ConsistentDropout(0.5)
        >>> x = torch.ones(4, 3)
        >>> y, mask = drop(x)
        >>> torch.equal(drop(x, mask=mask)[0], y), sorted(mask.unique().tolist()) <= [0.0, 2.0]
        (True, True)
    """

    def __init__(self, p: float = 0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"ConsistentDropout: p must be a probability in [0, 1], got {p}.")
        super().__init__(p)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        if not self.training:
            return x
        mask = self.make_mask(input=x) if mask is None else mask
        return x * mask, mask

    def make_mask(self, *, input=None, shape=None) -> torch.Tensor:
        """A fresh mask shaped like ``input`` (or ``shape``): 0 w.p. p, else 1 / (1 - p)."""
        if input is None and shape is None:
            raise InvalidValueError("ConsistentDropout: make_mask needs input or shape, "
                                    "got neither.")
        ones = torch.ones_like(input) if input is not None else torch.ones(shape)
        return F.dropout(ones, self.p, self.training)


def _mask_key(key) -> str:
    """``"mask_<in_key>"``: the same name in every process (torchrl uses ``id(self)``)."""
    return "mask_" + "_".join(key if isinstance(key, tuple) else (key,))


class _MaskPrimer(TensorDictPrimer):
    """A TensorDictPrimer whose reset value is a fresh dropout mask."""

    def __init__(self, dropout: ConsistentDropout, key, spec: TensorSpec):
        super().__init__(primers={key: spec})
        self.dropout = dropout

    def _value(self, key, spec: TensorSpec) -> torch.Tensor:
        return self.dropout.make_mask(shape=(*self.batch_size, *spec.shape)).to(spec.dtype)


class ConsistentDropoutModule(TensorDictModuleBase):
    """:class:`ConsistentDropout` on a tensordict: reads ``[x, mask]``, writes ``[x, mask]``.

    In train mode a missing mask is drawn and written, a present one is reused (so the
    update replays the rollout's mask); in eval mode ``x`` passes through. The mask key
    defaults to ``"mask_<in_key>"``. Built in chapter *Exploration*.

    Args:
        p (float): the drop probability, in [0, 1).
        in_keys (NestedKey or list of 2): the input, or ``[input, mask]``.
        out_keys (NestedKey or list of 2, optional): defaults to ``in_keys``.
        input_shape (tuple, optional): the input's shape, for :meth:`make_tensordict_primer`.
        input_dtype (torch.dtype, optional): the mask's dtype in the primer.

    Examples:
        >>> from tensordict import TensorDict
        >>> module = ConsistentDropoutModule(0.1, in_keys="x")
        >>> td = module(TensorDict({"x": torch.ones(3, 4)}, [3]))
        >>> sorted(td.keys()), td["mask_x"].shape
        (['mask_x', 'x'], torch.Size([3, 4]))
    """

    def __init__(self, p: float, in_keys, out_keys=None, input_shape: torch.Size = None,
                 input_dtype: torch.dtype | None = None):
        if isinstance(in_keys, (str, tuple)):
            in_keys = [in_keys, _mask_key(in_keys)]
        out_keys = list(in_keys) if out_keys is None else out_keys
        if isinstance(out_keys, (str, tuple)):
            out_keys = [out_keys, in_keys[1]]
        if len(in_keys) != 2 or len(out_keys) != 2:
            raise ValueError("ConsistentDropoutModule: in_keys and out_keys must be a key or "
                             f"[value, mask], got in_keys={in_keys} and out_keys={out_keys}.")
        if not 0.0 <= p < 1.0:
            raise ValueError(f"ConsistentDropoutModule: p must be in [0, 1), got {p}.")
        super().__init__()
        self.in_keys, self.out_keys = list(in_keys), list(out_keys)
        self.input_shape, self.input_dtype = input_shape, input_dtype
        self.consistent_dropout = ConsistentDropout(p)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        x = require_key(tensordict, self.in_keys[0], "ConsistentDropoutModule")
        if not self.consistent_dropout.training:
            tensordict.set(self.out_keys[0], x)
            return tensordict
        x, mask = self.consistent_dropout(x, mask=tensordict.get(self.in_keys[1], None))
        tensordict.set(self.out_keys[0], x)
        tensordict.set(self.out_keys[1], mask)
        return tensordict

    def make_tensordict_primer(self) -> TensorDictPrimer:
        """A primer that draws a fresh mask at every reset (kept through the episode)."""
        if self.input_shape is None:
            raise InvalidValueError("ConsistentDropoutModule: input_shape must be given at "
                                    "construction to build a primer, got None.")
        dtype = self.input_dtype or torch.get_default_dtype()
        spec = Unbounded(shape=self.input_shape, dtype=dtype)
        return _MaskPrimer(self.consistent_dropout, self.in_keys[1], spec)


class NoisyLinear(nn.Linear):
    """A linear layer with factorised Gaussian noise on its weights (Fortunato et al., 2017).

    ``weight = weight_mu + weight_sigma * (ε_out ⊗ ε_in)``,
    ``bias = bias_mu + bias_sigma * ε_out``,
    ``ε = sign(z) √|z|`` with ``z ~ N(0, 1)``, used only under ``ExplorationType.RANDOM``
    (or in train mode with ``use_exploration_type=False``); otherwise the mean weights.
    The noise is drawn at construction and by :meth:`reset_noise` only, never by forward:
    call ``net.apply(reset_noise)`` after each optimiser step. Built in chapter *Exploration*.

    Args:
        in_features, out_features (int): the layer's sizes.
        bias (bool): with a noisy bias. Defaults to True.
        device, dtype: of the parameters.
        std_init (float): initial noise scale; weight_sigma = std_init / √in_features.
            Defaults to 0.5.
        use_exploration_type (bool): noise follows the exploration type (True) or
            ``self.training`` (False).

    Examples:
        >>> from rlmods.envs import ExplorationType, set_exploration_type
        >>> layer = NoisyLinear(4, 2)
        >>> x = torch.ones(4)
        >>> with set_exploration_type(ExplorationType.RANDOM):
        ...     y0, y1 = layer(x), layer(x)
        >>> torch.equal(y0, y1), torch.equal(layer(x), x @ layer.weight_mu.T + layer.bias_mu)
        (True, True)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype: torch.dtype | None = None, std_init: float = 0.5,
                 use_exploration_type: bool | None = True):
        nn.Module.__init__(self)
        if std_init < 0:
            raise ValueError(f"{type(self).__name__}: std_init must be >= 0, got {std_init}.")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.std_init = std_init
        self._use_exploration_type = use_exploration_type is not False
        kwargs = {"device": device, "dtype": dtype}
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features, **kwargs))
        self.weight_sigma = nn.Parameter(torch.empty(out_features, in_features, **kwargs))
        self.register_buffer("weight_epsilon", torch.empty_like(self.weight_mu))
        self.bias_mu = nn.Parameter(torch.empty(out_features, **kwargs)) if bias else None
        if bias:
            self.bias_sigma = nn.Parameter(torch.empty(out_features, **kwargs))
            self.register_buffer("bias_epsilon", torch.empty(out_features, **kwargs))
        self.reset_parameters()
        self.reset_noise()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.in_features)
        with torch.no_grad():
            self.weight_mu.uniform_(-bound, bound)
            self.weight_sigma.fill_(self.std_init / math.sqrt(self.in_features))
            if self.bias_mu is not None:
                self.bias_mu.uniform_(-bound, bound)
                self.bias_sigma.fill_(self.std_init / math.sqrt(self.out_features))

    def reset_noise(self) -> None:
        """Draw new factorised noise: ``ε_out ⊗ ε_in`` for the weight, ``ε_out`` for the bias."""
        eps_in = self._scale_noise(self.in_features)  # (in,)
        eps_out = self._scale_noise(self.out_features)  # (out,)
        self.weight_epsilon.copy_(eps_out.outer(eps_in))  # (out, in)
        if self.bias_mu is not None:
            self.bias_epsilon.copy_(eps_out)

    def _scale_noise(self, size: int) -> torch.Tensor:
        z = torch.randn(size, device=self.weight_mu.device)
        return z.sign().mul_(z.abs().sqrt_())

    def _noisy(self) -> bool:
        if self._use_exploration_type:
            return exploration_type() is ExplorationType.RANDOM
        return self.training

    @property
    def weight(self) -> torch.Tensor:
        if self._noisy():
            return self.weight_mu + self.weight_sigma * self.weight_epsilon
        return self.weight_mu

    @property
    def bias(self) -> torch.Tensor | None:
        if self.bias_mu is None or not self._noisy():
            return self.bias_mu
        return self.bias_mu + self.bias_sigma * self.bias_epsilon


class NoisyLazyLinear(LazyModuleMixin, NoisyLinear):
    """:class:`NoisyLinear` whose ``in_features`` is read from the first input.

    Becomes a NoisyLinear after the first call. Built in chapter *Exploration*.

    Args:
        out_features (int): the output size. Other arguments as :class:`NoisyLinear`.

    Examples:
        >>> layer = NoisyLazyLinear(2)
        >>> layer(torch.ones(3, 5)).shape, type(layer).__name__, layer.in_features
        (torch.Size([3, 2]), 'NoisyLinear', 5)
    """

    cls_to_become = NoisyLinear

    def __init__(self, out_features: int, bias: bool = True, device=None,
                 dtype: torch.dtype | None = None, std_init: float = 0.5,
                 use_exploration_type: bool | None = True):
        super().__init__(0, 0, False, device=device, std_init=std_init,
                         use_exploration_type=use_exploration_type)
        kwargs = {"device": device, "dtype": dtype}
        self.out_features = out_features
        self.weight_mu = UninitializedParameter(**kwargs)
        self.weight_sigma = UninitializedParameter(**kwargs)
        self.register_buffer("weight_epsilon", UninitializedBuffer(**kwargs))
        if bias:
            self.bias_mu = UninitializedParameter(**kwargs)
            self.bias_sigma = UninitializedParameter(**kwargs)
            self.register_buffer("bias_epsilon", UninitializedBuffer(**kwargs))

    def _ready(self) -> bool:
        return not self.has_uninitialized_params() and self.in_features != 0

    def reset_parameters(self) -> None:
        if self._ready():
            NoisyLinear.reset_parameters(self)

    def reset_noise(self) -> None:
        if self._ready():
            NoisyLinear.reset_noise(self)

    def initialize_parameters(self, input: torch.Tensor) -> None:
        if self.has_uninitialized_params():
            with torch.no_grad():
                self.in_features = input.shape[-1]
                shape = (self.out_features, self.in_features)
                for name in ("weight_mu", "weight_sigma", "weight_epsilon"):
                    getattr(self, name).materialize(shape)
                for name in ("bias_mu", "bias_sigma", "bias_epsilon"):
                    if getattr(self, name, None) is not None:
                        getattr(self, name).materialize(shape[:1])
                self.reset_parameters()
                self.reset_noise()


# MLP(in_features=None, layer_class=NoisyLinear) builds a NoisyLazyLinear first layer.
LAZY_LAYERS[NoisyLinear] = NoisyLazyLinear
NO_SHARED_BIAS.add(NoisyLinear)  # torchrl refuses a shared last bias on a noisy layer


def reset_noise(layer: nn.Module) -> None:
    """Resample a noisy layer's noise; a no-op for other modules: ``net.apply(reset_noise)``.

    Built in chapter *Exploration*.

    Examples:
        >>> net = nn.Sequential(NoisyLinear(4, 8), nn.ReLU(), NoisyLinear(8, 2))
        >>> before = net[0].weight_epsilon.clone()
        >>> _ = net.apply(reset_noise)
        >>> torch.equal(before, net[0].weight_epsilon)
        False
    """
    if hasattr(layer, "reset_noise"):
        layer.reset_noise()
