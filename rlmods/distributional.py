"""Distributional DQN (C51): a distribution over returns per action, and its greedy action.

A distributional Q-value module reads ``"action_value"`` of shape ``(*batch, atoms, n)``:
log-probabilities over the ``atoms`` points of a fixed ``support`` for each of ``n``
actions. Its greedy action maximises the expected value ``sum_z p(z) z``.
Built in chapter *Distributional DQN*; mirrors ``torchrl.modules`` of torchrl 0.14
(``DistributionalQValueModule``, ``DistributionalQValueActor``, ``DistributionalQValueHook``,
``DistributionalDQNnet``) and adds the C51 projection of the Bellman target.
"""

from __future__ import annotations

import torch
from tensordict.nn import TensorDictModuleBase, dispatch

from rlmods._checks import InvalidValueError, require_key, shape_str, validate_args
from rlmods._keys import ACTION, ACTION_VALUE
from rlmods.actors import SafeSequential, read_entry, write_entry
from rlmods.qvalue import QValueActor, QValueHook, QValueModule, greedy_action, mask_values


def expected_value(log_probs: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """``sum_z p(z) z`` per action: ``(*batch, atoms, n)`` log-probs → ``(*batch, n)``.

    Examples:
        >>> log_probs = torch.tensor([[0.5, 0.0], [0.5, 1.0]]).log()  # 2 atoms, 2 actions
        >>> expected_value(log_probs, torch.tensor([-1.0, 1.0])).tolist()
        [0.0, 1.0]
    """
    return (log_probs.exp() * support.unsqueeze(-1)).sum(-2)


def categorical_projection(probs: torch.Tensor, reward: torch.Tensor, done: torch.Tensor,
                           gamma: float, support: torch.Tensor) -> torch.Tensor:
    """Project the Bellman target ``r + gamma (1 - done) z`` back onto ``support`` (C51).

    Each atom ``z_j`` of the next-state distribution moves to ``Tz_j`` (clipped to the
    support's range) and its mass ``p_j`` is split between the two nearest support points
    in proportion to closeness: support point ``i`` gets ``p_j * max(0, 1 - |b_j - i|)``
    with ``b_j = (Tz_j - v_min) / delta`` (Bellemare et al., 2017, Algorithm 1).
    Total mass is preserved, and so is the mean wherever no atom is clipped.

    Args:
        probs (Tensor): ``(*batch, atoms)`` next-state probabilities of the chosen action.
        reward (Tensor): ``(*batch, 1)`` or ``(*batch,)`` rewards.
        done (Tensor): ``(*batch, 1)`` or ``(*batch,)`` bool: no bootstrap after termination.
        gamma (float): discount.
        support (Tensor): ``(atoms,)`` evenly spaced, increasing.

    Examples:
        >>> support = torch.tensor([0.0, 1.0, 2.0])
        >>> probs = torch.tensor([[0.0, 1.0, 0.0]])  # all mass on z = 1
        >>> done = torch.tensor([[False]])
        >>> categorical_projection(probs, torch.tensor([[0.5]]), done, 1.0, support)
        tensor([[0.0000, 0.5000, 0.5000]])
    """
    atoms = support.shape[-1]
    v_min, v_max = support[0], support[-1]
    reward = reward.reshape(*probs.shape[:-1], 1)
    not_done = (~done.bool()).reshape(*probs.shape[:-1], 1)
    target = (reward + gamma * not_done * support).clamp(v_min, v_max)  # (*batch, atoms)
    position = (target - v_min) / ((v_max - v_min) / (atoms - 1))  # b_j, in [0, atoms - 1]
    # The left neighbour, at most atoms - 2 so that the right one exists: an atom that lands on
    # a grid point gets weight 1 there and 0 next door, with no special case.
    lower = position.floor().clamp(max=atoms - 2)
    upper_weight = position - lower  # in [0, 1]: the hat weight of the right neighbour
    lower = lower.long()
    projected = torch.zeros_like(probs)
    projected.scatter_add_(-1, lower, probs * (1 - upper_weight))
    return projected.scatter_add_(-1, lower + 1, probs * upper_weight)


class DistributionalQValueModule(QValueModule):
    """Greedy action by expected value from per-action return distributions (log-probs).

    Reads ``action_value`` ``(*batch, atoms, n)`` (log-softmax over ``atoms``) and, with
    ``action_mask_key``, a bool mask ``(*batch, n)`` (or ``(*batch, atoms, n)``, as torchrl
    accepts: an action is allowed where any of its atoms is); writes ``action`` and
    ``action_value`` (unchanged). Built in chapter *Distributional DQN*.

    Args:
        action_space (str, optional): as in :class:`~rlmods.QValueModule`; inferred from
            ``spec`` when None.
        support (Tensor): ``(atoms,)`` the return value of each atom.
        action_value_key (NestedKey, optional): defaults to ``"action_value"``.
        action_mask_key (NestedKey, optional): masked actions are never chosen.
        out_keys (list of NestedKey, optional): defaults to ``["action", action_value_key]``.
        var_nums (int or list of int, optional): block sizes of the multi-discrete spaces.
        spec (TensorSpec, optional): the action spec (or a Composite holding it).
        safe (bool): project the action onto the spec. Defaults to False.

    Examples:
        >>> log_probs = torch.full((3, 4), -100.0)  # 3 atoms, 4 actions
        >>> log_probs[0, 0] = log_probs[1, 1] = log_probs[2, 2] = log_probs[0, 3] = 0.0
        >>> support = torch.tensor([-1.0, 0.0, 1.0])
        >>> module = DistributionalQValueModule("categorical", support=support)
        >>> module(log_probs)[0]
        tensor(2)
    """

    def __init__(self, action_space: str | None, support: torch.Tensor, action_value_key=None,
                 action_mask_key=None, out_keys=None, var_nums: int | None = None, spec=None,
                 safe: bool = False):
        super().__init__(action_space=action_space, action_value_key=action_value_key,
                         action_mask_key=action_mask_key, out_keys=out_keys, var_nums=var_nums,
                         spec=spec, safe=safe, strict_shape=False)
        if not isinstance(support, torch.Tensor) or support.ndim != 1:
            raise ValueError(f"{type(self).__name__}: support must be a 1-d tensor of atom "
                             f"values, got {support!r}.")
        self.register_buffer("support", support)

    def _default_out_keys(self, action_value_key):
        return [ACTION, action_value_key]

    def _check_log_probs(self, log_probs: torch.Tensor) -> None:
        owner, key, atoms = type(self).__name__, self.action_value_key, self.support.shape[-1]
        if log_probs.ndim < 2 or log_probs.shape[-2] != atoms:  # torchrl: RuntimeError
            raise InvalidValueError(f"{owner}: {key!r} must have {atoms} atoms in dim -2 (one "
                                    f"per support point), got shape {shape_str(log_probs.shape)}.")
        self._check_values(log_probs)
        # The one check that reads values (a GPU sync): log-probs are never positive.
        check = validate_args() and not torch.compiler.is_compiling()
        if check and (log_probs > 0).any():
            raise ValueError(f"{owner}: {key!r} must hold log-softmax values (<= 0), got a "
                             f"maximum of {log_probs.max().item():.4f}.")

    def _action_mask(self, tensordict, log_probs: torch.Tensor) -> torch.Tensor:
        mask = require_key(tensordict, self.action_mask_key, type(self).__name__)
        if mask.ndim == log_probs.ndim:  # (*batch, atoms, n): allowed where any atom is
            mask = mask.any(-2)
        return mask  # (*batch, n)

    def _forward_td(self, tensordict):
        log_probs = read_entry(tensordict, self.in_keys[0], self)  # (*batch, atoms, n)
        self._check_log_probs(log_probs)
        values = expected_value(log_probs, self.support.to(log_probs.device))  # (*batch, n)
        if self.action_mask_key is not None:
            values = mask_values(values, self._action_mask(tensordict, log_probs))
        action = greedy_action(values, self.action_space, self.var_nums)
        if self.safe:
            action = self._action_spec.project(action)
        write_entry(tensordict, self.out_keys[0], action)
        write_entry(tensordict, self.out_keys[1], log_probs)
        return tensordict


class DistributionalQValueHook(QValueHook):
    """A forward hook that makes a log-prob network return ``(action, log_probs)``.

    Built in chapter *Distributional DQN*.

    Args:
        action_space (str): as in :class:`~rlmods.QValueModule`.
        support (Tensor): ``(atoms,)`` the return value of each atom.
        var_nums (int or list of int, optional): block sizes of the multi-discrete spaces.
        action_value_key (NestedKey, optional): defaults to ``"action_value"``.
        action_mask_key (NestedKey, optional): a bool mask key.
        out_keys (list of NestedKey, optional): defaults to ``["action", action_value_key]``.

    Examples:
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 12), torch.nn.Unflatten(-1, (3, 4)),
        ...                           torch.nn.LogSoftmax(-2))
        >>> _ = net.register_forward_hook(DistributionalQValueHook("one_hot", torch.arange(3.0)))
        >>> [t.shape for t in net(torch.zeros(5, 3))]
        [torch.Size([5, 4]), torch.Size([5, 3, 4])]
    """

    def __init__(self, action_space: str, support: torch.Tensor, var_nums: int | None = None,
                 action_value_key=None, action_mask_key=None, out_keys=None):
        self.qvalue_model = DistributionalQValueModule(
            action_space=action_space, support=support, var_nums=var_nums,
            action_value_key=action_value_key, action_mask_key=action_mask_key, out_keys=out_keys)
        self._set_key()


class DistributionalDQNnet(TensorDictModuleBase):
    """Log-softmax over the atoms (dim -2) of each in_key: ``(*batch, atoms, n)`` → same shape.

    Built in chapter *Distributional DQN*.

    Keyword Args:
        in_keys (list of NestedKey, optional): defaults to ``["action_value"]``.
        out_keys (list of NestedKey, optional): defaults to ``["action_value"]``.

    Examples:
        >>> from tensordict import TensorDict
        >>> td = DistributionalDQNnet()(TensorDict(action_value=torch.zeros(10, 5)))
        >>> torch.allclose(td["action_value"].exp().sum(-2), torch.ones(5))
        True
    """

    def __init__(self, *, in_keys=None, out_keys=None):
        super().__init__()
        self.in_keys = [ACTION_VALUE] if in_keys is None else list(in_keys)
        self.out_keys = [ACTION_VALUE] if out_keys is None else list(out_keys)
        if len(self.in_keys) != len(self.out_keys):
            raise ValueError(f"DistributionalDQNnet: out_keys must have one key per in_key "
                             f"({len(self.in_keys)}), got {self.out_keys}.")

    @dispatch(auto_batch_size=False)
    def forward(self, tensordict):
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            logits = require_key(tensordict, in_key, "DistributionalDQNnet")
            if logits.ndim < 2:
                raise ValueError(f"DistributionalDQNnet: {in_key!r} must have at least 2 dims "
                                 f"(*batch, atoms, actions), got shape {shape_str(logits.shape)}.")
            tensordict.set(out_key, logits.log_softmax(-2))
        return tensordict


class DistributionalQValueActor(QValueActor):
    """A network, a log-softmax over atoms, and a :class:`DistributionalQValueModule`.

    Reads ``in_keys`` (default ``["observation"]``); writes ``action_value``
    ``(*batch, atoms, n)`` (log-probs) and ``action``. Built in chapter *Distributional DQN*.

    Args:
        module (nn.Module): maps the observation to logits ``(*batch, atoms, n)``.
        support (Tensor): ``(atoms,)`` the return value of each atom.
        in_keys (list of NestedKey, optional): the plain module's inputs.
        spec (TensorSpec, optional): the action spec (or a Composite holding it).
        safe (bool): project the action onto the spec. Defaults to False.
        var_nums (int or list of int, optional): block sizes of the multi-discrete spaces.
        action_space (str, optional): inferred from ``spec`` when None.
        action_value_key (NestedKey): defaults to ``"action_value"``.
        action_mask_key (NestedKey, optional): masked actions are never chosen.
        make_log_softmax (bool): insert a :class:`DistributionalDQNnet` unless ``module``
            is one. Defaults to True.

    Examples:
        >>> from tensordict import TensorDict
        >>> from rlmods.specs import OneHot
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 12), torch.nn.Unflatten(-1, (3, 4)))
        >>> actor = DistributionalQValueActor(net, support=torch.arange(3.0), spec=OneHot(4))
        >>> td = actor(TensorDict(observation=torch.zeros(5, 4), batch_size=[5]))
        >>> td["action"].shape, td["action_value"].shape
        (torch.Size([5, 4]), torch.Size([5, 3, 4]))
    """

    def __init__(self, module, support: torch.Tensor, in_keys=None, spec=None, safe=False,
                 var_nums: int | None = None, action_space: str | None = None,
                 action_value_key: str = ACTION_VALUE, action_mask_key=None,
                 make_log_softmax: bool = True):
        self.action_value_key = action_value_key
        module = self._value_module(module, in_keys, action_value_key)
        spec = self._actor_spec(spec, ACTION, (action_value_key,))
        qvalue = DistributionalQValueModule(
            action_space=action_space, support=support, action_value_key=action_value_key,
            action_mask_key=action_mask_key, out_keys=[ACTION, action_value_key],
            var_nums=var_nums, spec=spec, safe=safe)
        self.action_space, self.make_log_softmax = qvalue.action_space, make_log_softmax
        modules = [module, qvalue]
        if make_log_softmax and not isinstance(module, DistributionalDQNnet):
            modules.insert(1, DistributionalDQNnet(in_keys=qvalue.in_keys[:1],
                                                   out_keys=qvalue.in_keys[:1]))
        SafeSequential.__init__(self, *modules)
        self.register_buffer("support", support)
