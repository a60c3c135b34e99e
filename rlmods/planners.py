"""Model-predictive planners: choose an action by imagining rollouts in a model env.

A planner reads the observation keys of a model environment (shape ``(*B, ...)``), samples
``num_candidates`` action sequences of ``planning_horizon`` steps from a Gaussian, rolls
them all out at once in the model (a batch of ``(*B, num_candidates)``), refits the
Gaussian to the best ones, and after ``optim_steps`` rounds writes the first action of the
mean plan to ``action_key`` (``(*B, *A)``, projected into the action spec).
Built in chapter *Model-predictive planners*; mirrors ``torchrl.modules`` of torchrl 0.14
(``MPCPlannerBase``, ``CEMPlanner``, ``MPPIPlanner``).
"""

from __future__ import annotations

import abc

import torch
from tensordict import LazyStackedTensorDict, TensorDictBase, unravel_key
from torch import nn

from rlmods._checks import InvalidValueError, require_key, shape_str
from rlmods._keys import ACTION, ADVANTAGE, DONE, NEXT, REWARD
from rlmods.actors import SafeModule, write_entry


def elite_indices(scores: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``top_k`` best scores along the last dim and their indices, ``(*B, top_k)`` each."""
    return scores.topk(top_k, dim=-1)


def gather_candidates(actions: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``actions`` ``(*B, N, H, *A)`` at candidate ``index`` ``(*B, k)``: ``(*B, k, H, *A)``."""
    trailing = actions.shape[index.ndim:]  # (H, *A)
    full = index.reshape(*index.shape, *[1] * len(trailing)).expand(*index.shape, *trailing)
    return actions.gather(index.ndim - 1, full)


def cem_refit(actions: torch.Tensor, returns: torch.Tensor, top_k: int):
    """CEM: mean and std of the ``top_k`` candidates with the highest returns.

    ``actions`` is ``(*B, N, H, *A)``, ``returns`` ``(*B, N)``; the mean and the std are
    ``(*B, 1, H, *A)``. The std is the sample std (Bessel's correction, as torchrl), or 0
    for a single elite (torchrl's is NaN there).

    Examples:
        >>> actions = torch.tensor([[1.0], [2.0], [3.0], [10.0]]).view(4, 1, 1)
        >>> mean, std = cem_refit(actions, torch.tensor([0.0, 2.0, 1.0, -5.0]), top_k=2)
        >>> mean.flatten().tolist(), std.flatten().tolist()
        ([2.5], [0.7071067690849304])
    """
    _, index = elite_indices(returns, top_k)
    elites = gather_candidates(actions, index)  # (*B, k, H, *A)
    dim = index.ndim - 1
    return elites.mean(dim, keepdim=True), elites.std(dim, keepdim=True, correction=int(top_k > 1))


def mppi_refit(actions: torch.Tensor, advantage: torch.Tensor, top_k: int,
               temperature: torch.Tensor):
    """MPPI: the mean and std of the ``top_k`` best candidates, weighted by ``exp(T * adv)``.

    The weights are a softmax (the largest advantage subtracted first), so advantages of a
    few hundred do not underflow to ``0 / 0`` as torchrl's ``exp`` does. Shapes as in
    :func:`cem_refit`.

    Examples:
        >>> actions = torch.tensor([0.0, 1.0]).view(2, 1, 1)
        >>> mean, std = mppi_refit(actions, torch.tensor([-500.0, -500.0]), 2, torch.tensor(1.0))
        >>> mean.flatten().tolist(), std.flatten().tolist()
        ([0.5], [0.5])
    """
    best, index = elite_indices(advantage, top_k)
    weights = torch.softmax(temperature * best, dim=-1)  # (*B, k)
    elites = gather_candidates(actions, index)  # (*B, k, H, *A)
    dim = index.ndim - 1
    weights = weights.reshape(*weights.shape, *[1] * (elites.ndim - weights.ndim))
    mean = (weights * elites).sum(dim, keepdim=True)
    std = (weights * (elites - mean).pow(2)).sum(dim, keepdim=True).sqrt()
    return mean, std


def mask_after_done(reward: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
    """Zero the rewards after the first ``done`` along the time dim (``-2``), keep that one.

    Examples:
        >>> reward = torch.ones(4, 1)
        >>> done = torch.tensor([False, True, False, True]).view(4, 1)
        >>> mask_after_done(reward, done).flatten().tolist()
        [1.0, 1.0, 0.0, 0.0]
    """
    done = done.to(torch.int64)
    after = done.cumsum(-2) > done  # (*B, N, H, 1): a done came strictly before
    return torch.where(after, torch.zeros_like(reward), reward)


class MPCPlannerBase(SafeModule, metaclass=abc.ABCMeta):
    """Base class of model-predictive planners: a policy that plans in a model env.

    Reads the env's observation keys (``(*B, ...)``) and writes ``action_key``
    (``(*B, *A)``): ``planning(tensordict)``, projected into the env's action spec. The env
    must step any batch (``batch_locked=False``): imagined rollouts are batched over the
    start states and the candidates, ``(*B, num_candidates)``.

    Built in chapter *Model-predictive planners*.

    Args:
        env (EnvBase): the model environment, batch-unlocked.
        action_key (NestedKey, optional): where the action is written. Defaults to
            ``"action"``. The candidates are written to the env's own action key.

    Examples:
        >>> from tensordict import TensorDict
        >>> from rlmods import Bounded, Composite, EnvBase, Unbounded
        >>> class Line(EnvBase):  # a model: the action moves the point; reward -(next x)^2
        ...     _batch_locked = False
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.observation_spec = Composite(observation=Unbounded(1))
        ...         self.action_spec = Bounded(-1.0, 1.0, (1,))
        ...         self.reward_spec = Unbounded(1)
        ...     def _step(self, td):
        ...         x = td["observation"] + td["action"]
        ...         done = torch.zeros_like(x, dtype=torch.bool)
        ...         return td.empty().update(dict(observation=x, reward=-x ** 2, done=done))
        >>> class Always(MPCPlannerBase):  # the simplest planner: always push right
        ...     def planning(self, tensordict):
        ...         return tensordict["observation"] * 0 + 5.0
        >>> planner = Always(Line())
        >>> planner(TensorDict(observation=torch.zeros(3, 1), batch_size=[3]))["action"].tolist()
        [[1.0], [1.0], [1.0]]
    """

    def __init__(self, env, action_key=ACTION):
        owner = type(self).__name__
        if env.batch_locked:
            raise InvalidValueError(
                f"{owner}: env must step any batch size (batch_locked=False), so that it holds "
                f"(*batch, num_candidates) imagined rollouts; got a batch-locked "
                f"{type(env).__name__} with batch_size {shape_str(env.batch_size)}.")
        super().__init__(env, in_keys=env.observation_keys, out_keys=[action_key],
                         spec=env.action_spec)
        self.env = env
        self.action_spec = env.action_spec
        self._done_keys = [(NEXT, *_as_tuple(k)) for k in env.done_keys
                           if _as_tuple(k)[-1] == DONE]
        self.to(env.device)

    @abc.abstractmethod
    def planning(self, tensordict: TensorDictBase) -> torch.Tensor:
        """The action ``(*B, *A)`` to take in each start state of ``tensordict``."""

    def forward(self, tensordict: TensorDictBase, tensordict_out=None, **kwargs):
        if kwargs:  # torchrl: ValueError for params/vmap; other keywords it ignores
            raise ValueError(f"{type(self).__name__}: forward takes no keyword arguments "
                             f"(functional calls are not supported), got {sorted(kwargs)}.")
        for key in self.in_keys:
            require_key(tensordict, key, type(self).__name__)
        action = self.action_spec.project(self.planning(tensordict))
        out = tensordict if tensordict_out is None else tensordict_out
        return out.set(self.out_keys[0], action)

    def imagine(self, tensordict: TensorDictBase, actions: torch.Tensor) -> TensorDictBase:
        """Roll ``actions`` ``(*B, N, H, *A)`` out from the start states: ``(*B, N, H)``.

        One batched ``env.step`` per time step for all candidates; the result is laid out
        as torchrl's ``env.rollout`` (root entries, the action, ``"next"``).
        """
        batch = (*tensordict.batch_size, actions.shape[tensordict.ndim])  # (*B, N)
        root = tensordict.select(*self.in_keys).unsqueeze(-1).expand(*batch).clone()
        time_dim = len(batch)
        steps, key = [], self.env.action_key
        for t in range(actions.shape[time_dim]):
            write_entry(root, key, actions.select(time_dim, t))
            step = self.env.step(root)
            steps.append(step)
            root = step.get(NEXT).select(*self.in_keys)
        return LazyStackedTensorDict(*steps, stack_dim=time_dim)

    def optimize(self, tensordict: TensorDictBase) -> torch.Tensor:
        """Sample, imagine, refit: ``optim_steps`` rounds; the final mean plan ``(*B, H, *A)``.

        The Gaussian's refit is the subclass's ``refit(actions, rollout, reward) -> (mean,
        std)`` (:class:`CEMPlanner`, :class:`MPPIPlanner`), where ``reward`` ``(*B, N, H, 1)``
        is zero after each candidate's first done; a planner that plans otherwise overrides
        ``planning`` and does not call this.
        """
        action_shape = self.action_spec.shape[len(self.env.batch_size):]  # A
        stats = (*tensordict.batch_size, 1, self.planning_horizon, *action_shape)
        mean = torch.zeros(stats, device=tensordict.device, dtype=self.action_spec.dtype)
        std = torch.ones_like(mean)
        shape = (*tensordict.batch_size, self.num_candidates, *stats[tensordict.ndim + 1:])
        for _ in range(self.optim_steps):
            noise = torch.randn(shape, device=mean.device, dtype=mean.dtype)
            actions = self.action_spec.project(mean + std * noise)  # (*B, N, H, *A)
            rollout = self.imagine(tensordict, actions)
            reward = _stacked(rollout, self.reward_key)  # (*B, N, H, 1)
            done = torch.stack([_stacked(rollout, k) for k in self._done_keys]).any(0)
            mean, std = self.refit(actions, rollout, mask_after_done(reward, done))
        return mean.squeeze(tensordict.ndim)


def _stacked(rollout: LazyStackedTensorDict, key) -> torch.Tensor:
    """One entry of a lazily stacked rollout, stacked along its time dim."""
    return torch.stack([step.get(key) for step in rollout.tensordicts], rollout.stack_dim)


def _as_tuple(key) -> tuple:
    key = unravel_key(key)
    return key if isinstance(key, tuple) else (key,)


def _check_sizes(owner: str, planning_horizon, optim_steps, num_candidates, top_k) -> None:
    """Each count is an int >= 1, and ``top_k <= num_candidates``.

    torchrl checks none of them: a zero horizon or candidate count, or ``top_k`` above the
    candidates, raises RuntimeError deep inside; zero ``optim_steps`` silently returns the
    action 0, zero ``top_k`` returns NaN.
    """
    for name, value in (("planning_horizon", planning_horizon), ("optim_steps", optim_steps),
                        ("num_candidates", num_candidates), ("top_k", top_k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidValueError(f"{owner}: {name} must be an int >= 1, got {value!r}.")
    if top_k > num_candidates:  # torchrl: RuntimeError from topk at the first call
        raise InvalidValueError(f"{owner}: top_k must be <= num_candidates={num_candidates} "
                                f"(the elites are drawn from the candidates), got top_k={top_k}.")


def _check_reward_key(owner: str, env, reward_key):
    """``reward_key`` as a tuple; it must be ``("next", <one of the env's reward keys>)``."""
    keys = [(NEXT, *_as_tuple(key)) for key in env.reward_keys]
    if _as_tuple(reward_key) not in keys:
        raise KeyError(f"{owner}: reward_key must be one of the env's rewards {keys}, got "
                       f"{reward_key!r}.")
    return _as_tuple(reward_key)



class CEMPlanner(MPCPlannerBase):
    """The cross-entropy method: refit a Gaussian over plans to the best ``top_k`` returns.

    Reads the env's observation keys ``(*B, ...)``; writes ``action_key`` ``(*B, *A)``. Each
    of ``optim_steps`` rounds samples ``num_candidates`` plans of ``planning_horizon``
    actions from ``N(mean, std)`` (first ``N(0, 1)``), projects them into the action spec,
    rolls them out in ``env``, sums each one's rewards up to its first ``done`` and refits
    mean and std to the ``top_k`` best. The action is the final mean's first step.

    Built in chapter *Model-predictive planners*.

    Args:
        env (EnvBase): the model environment, batch-unlocked.
        planning_horizon (int): the length of each imagined rollout.
        optim_steps (int): the rounds of sampling and refitting.
        num_candidates (int): the plans sampled per round.
        top_k (int): the elites the Gaussian is refit to.
        reward_key (NestedKey, optional): the reward in the rollout. Defaults to
            ``("next", "reward")``.
        action_key (NestedKey, optional): where the action is written. Defaults to ``"action"``.

    Examples:
        >>> from tensordict import TensorDict
        >>> from rlmods import Bounded, Composite, EnvBase, Unbounded
        >>> class Line(EnvBase):  # a model: the action moves the point; reward -(next x)^2
        ...     _batch_locked = False
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.observation_spec = Composite(observation=Unbounded(1))
        ...         self.action_spec = Bounded(-1.0, 1.0, (1,))
        ...         self.reward_spec = Unbounded(1)
        ...     def _step(self, td):
        ...         x = td["observation"] + td["action"]
        ...         done = torch.zeros_like(x, dtype=torch.bool)
        ...         return td.empty().update(dict(observation=x, reward=-x ** 2, done=done))
        >>> planner = CEMPlanner(Line(), planning_horizon=3, optim_steps=5, num_candidates=64,
        ...                      top_k=8)
        >>> td = TensorDict(observation=torch.tensor([[3.0], [-3.0]]), batch_size=[2])
        >>> planner(td)["action"].sign().flatten().tolist()  # towards 0 from either side
        [-1.0, 1.0]
    """

    def __init__(self, env, planning_horizon: int, optim_steps: int, num_candidates: int,
                 top_k: int, reward_key=(NEXT, REWARD), action_key=ACTION):
        _check_sizes(type(self).__name__, planning_horizon, optim_steps, num_candidates, top_k)
        super().__init__(env=env, action_key=action_key)
        self.planning_horizon, self.optim_steps = planning_horizon, optim_steps
        self.num_candidates, self.top_k = num_candidates, top_k
        self.reward_key = _check_reward_key(type(self).__name__, env, reward_key)

    def refit(self, actions: torch.Tensor, rollout: TensorDictBase, reward: torch.Tensor):
        returns = reward.sum(-2).squeeze(-1)  # (*B, N): the imagined returns
        return cem_refit(actions, returns, self.top_k)

    def planning(self, tensordict: TensorDictBase) -> torch.Tensor:
        return self.optimize(tensordict).select(tensordict.ndim, 0)  # (*B, *A)


class MPPIPlanner(MPCPlannerBase):
    """Model-predictive path integral control: an exponentially weighted average of plans.

    Reads the env's observation keys ``(*B, ...)``; writes ``action_key`` ``(*B, *A)``. As
    :class:`CEMPlanner`, but each round calls ``advantage_module`` on the imagined rollout
    (``(*B, N, H)``, rewards after a ``done`` zeroed), which must write ``"advantage"``
    ``(*B, N, H, 1)``; the ``top_k`` candidates with the best first-step advantage are
    averaged with weights ``exp(temperature * advantage)`` (torchrl's convention: the
    ``temperature`` multiplies, i.e. it is the paper's ``1 / lambda``).

    Built in chapter *Model-predictive planners*.

    Args:
        env (EnvBase): the model environment, batch-unlocked.
        advantage_module (nn.Module or callable): reads the rollout, writes ``"advantage"``.
        temperature (float): the inverse temperature of the weights (stored as a buffer).
        planning_horizon, optim_steps, num_candidates, top_k, reward_key, action_key: as
            for :class:`CEMPlanner`.

    Examples:
        >>> from tensordict.nn import TensorDictModule
        >>> from tensordict import TensorDict
        >>> from rlmods import Bounded, Composite, EnvBase, Unbounded
        >>> class Line(EnvBase):  # a model: the action moves the point; reward -(next x)^2
        ...     _batch_locked = False
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.observation_spec = Composite(observation=Unbounded(1))
        ...         self.action_spec = Bounded(-1.0, 1.0, (1,))
        ...         self.reward_spec = Unbounded(1)
        ...     def _step(self, td):
        ...         x = td["observation"] + td["action"]
        ...         done = torch.zeros_like(x, dtype=torch.bool)
        ...         return td.empty().update(dict(observation=x, reward=-x ** 2, done=done))
        >>> to_go = TensorDictModule(lambda r: r.flip(-2).cumsum(-2).flip(-2),
        ...                          in_keys=[("next", "reward")], out_keys=["advantage"])
        >>> planner = MPPIPlanner(Line(), to_go, temperature=1.0, planning_horizon=3,
        ...                       optim_steps=5, num_candidates=64, top_k=8)
        >>> td = TensorDict(observation=torch.tensor([[3.0], [-3.0]]), batch_size=[2])
        >>> planner(td)["action"].sign().flatten().tolist()
        [-1.0, 1.0]
    """

    def __init__(self, env, advantage_module: nn.Module, temperature: float,
                 planning_horizon: int, optim_steps: int, num_candidates: int, top_k: int,
                 reward_key=(NEXT, REWARD), action_key=ACTION):
        _check_sizes(type(self).__name__, planning_horizon, optim_steps, num_candidates, top_k)
        super().__init__(env=env, action_key=action_key)
        self.advantage_module = advantage_module
        self.planning_horizon, self.optim_steps = planning_horizon, optim_steps
        self.num_candidates, self.top_k = num_candidates, top_k
        self.reward_key = _check_reward_key(type(self).__name__, env, reward_key)
        self.register_buffer("temperature", torch.as_tensor(temperature))

    def refit(self, actions: torch.Tensor, rollout: TensorDictBase, reward: torch.Tensor):
        rollout.set(self.reward_key, reward)  # the advantage sees no reward after a done
        self.advantage_module(rollout)
        owner = type(self).__name__
        advantage = require_key(rollout, ADVANTAGE, owner)  # (*B, N, H, 1)
        if advantage.shape != (*rollout.batch_size, 1):
            raise ValueError(f"{owner}: {ADVANTAGE!r} must have shape "
                             f"{shape_str((*rollout.batch_size, 1))}, got "
                             f"{shape_str(advantage.shape)}.")
        return mppi_refit(actions, advantage[..., 0, 0], self.top_k, self.temperature)

    def planning(self, tensordict: TensorDictBase) -> torch.Tensor:
        return self.optimize(tensordict).select(tensordict.ndim, 0)  # (*B, *A)
