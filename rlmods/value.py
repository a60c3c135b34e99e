"""Value operators and actor-critic models: critics with torchrl's keys, heads sharing a body.

``ValueOperator`` wraps a critic network: it reads ``"observation"`` (and ``"action"`` for a Q
critic) and writes ``"state_value"`` (or ``"state_action_value"``). ``ActorValueOperator`` runs a
common backbone once and feeds its hidden key to a policy head and a value head;
``ActorCriticOperator`` does the same with a Q critic that reads the policy's action;
``ActorCriticWrapper`` gives the same interface to an actor and a critic that share nothing.
``DdpgMlpActor``, ``DdpgMlpQNet``, ``DdpgCnnActor`` and ``DdpgCnnQNet`` are DDPG's networks.

Built in chapter *Value operators and actor-critic models*; mirrors ``torchrl.modules`` of
torchrl 0.14 (same signatures, keys and ``state_dict`` layout).
"""

from __future__ import annotations

from typing import Sequence

import torch
from tensordict import unravel_key_list
from tensordict.nn import ProbabilisticTensorDictSequential, TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import nn

from rlmods._checks import InvalidValueError
from rlmods._keys import ACTION, OBSERVATION, STATE_ACTION_VALUE, STATE_VALUE
from rlmods.actors import SafeModule, SafeSequential
from rlmods.nets import MLP, ConvNet, SquashDims
from rlmods.probabilistic import SafeProbabilisticTensorDictSequential

# DDPG's last-layer initialisation (Lillicrap et al., 2016): uniform in [-scale/2, scale/2].
MLP_INIT_SCALE, CNN_INIT_SCALE = 6e-3, 6e-4


class ValueOperator(SafeModule):
    """A critic with torchrl's keys: writes ``"state_value"``, or ``"state_action_value"``.

    Reads ``in_keys`` (default ``["observation"]``); writes one value per batch entry,
    ``(*batch, 1)`` for the usual networks, under ``"state_action_value"`` when ``"action"``
    is among the in_keys, else ``"state_value"``.
    Built in chapter *Value operators and actor-critic models*.

    Args:
        module (nn.Module): maps the in_keys' tensors (in order) to the value.
        in_keys (list of NestedKey, optional): defaults to ``["observation"]``.
        out_keys (list of NestedKey, optional): defaults as above.

    Examples:
        >>> from tensordict import TensorDict
        >>> class QNet(nn.Module):
        ...     def forward(self, observation, action):
        ...         return torch.cat([observation, action], -1).sum(-1, keepdim=True)
        >>> critic = ValueOperator(QNet(), in_keys=["observation", "action"])
        >>> td = critic(TensorDict(observation=torch.ones(3, 4), action=torch.ones(3, 2),
        ...                        batch_size=[3]))
        >>> critic.out_keys, td["state_action_value"].tolist()
        (['state_action_value'], [[6.0], [6.0], [6.0]])
    """

    def __init__(self, module: nn.Module, in_keys: Sequence[NestedKey] | None = None,
                 out_keys: Sequence[NestedKey] | None = None) -> None:
        in_keys = unravel_key_list([OBSERVATION] if in_keys is None else
                                   [in_keys] if isinstance(in_keys, (str, tuple)) else in_keys)
        if out_keys is None:
            out_keys = [STATE_ACTION_VALUE] if ACTION in in_keys else [STATE_VALUE]
        super().__init__(module, in_keys=in_keys, out_keys=out_keys)


def _check_operator(module, argument: str, owner: str) -> None:
    if not isinstance(module, TensorDictModuleBase):
        raise TypeError(f"{owner}: {argument} must be a TensorDict module (in_keys -> out_keys; "
                        f"wrap a network in SafeModule or ValueOperator), "
                        f"got {type(module).__name__}.")


def _check_reads(head, head_name: str, writer, writer_name: str, owner: str) -> None:
    """A KeyError unless ``head`` reads at least one key that ``writer`` writes."""
    written = unravel_key_list(list(writer.out_keys))
    if not any(key in written for key in unravel_key_list(list(head.in_keys))):
        raise KeyError(f"{owner}: the {head_name} must read a key the {writer_name} writes "
                       f"(out_keys {written}), got in_keys {head.in_keys}.")


class ActorValueOperator(SafeSequential):
    """A policy head and a value head on one shared backbone, which runs once per call.

    Reads the common operator's in_keys (e.g. ``"observation"``); writes its hidden key, the
    policy head's outputs (``"action"``, ...) and the value head's (``"state_value"``).
    Built in chapter *Value operators and actor-critic models*.

    Args:
        common_operator (TensorDictModule): reads the observation, writes a hidden key.
        policy_operator (TensorDictModule): reads the hidden key, writes the action.
        value_operator (TensorDictModule): reads the hidden key, writes the value.

    Examples:
        >>> from tensordict import TensorDict
        >>> common = SafeModule(nn.Linear(4, 8), in_keys=["observation"], out_keys=["hidden"])
        >>> policy = SafeModule(nn.Linear(8, 2), in_keys=["hidden"], out_keys=["action"])
        >>> value = ValueOperator(nn.Linear(8, 1), in_keys=["hidden"])
        >>> model = ActorValueOperator(common, policy, value)
        >>> td = model(TensorDict(observation=torch.zeros(3, 4), batch_size=[3]))
        >>> td["action"].shape, td["state_value"].shape
        (torch.Size([3, 2]), torch.Size([3, 1]))
        >>> sorted(model.get_policy_operator()(td.exclude("hidden", "action")).keys())
        ['action', 'hidden', 'observation', 'state_value']
    """

    def __init__(self, common_operator: TensorDictModuleBase,
                 policy_operator: TensorDictModuleBase, value_operator: TensorDictModuleBase):
        owner = type(self).__name__
        for module, argument in ((common_operator, "common_operator"),
                                 (policy_operator, "policy_operator"),
                                 (value_operator, "value_operator")):
            _check_operator(module, argument, owner)
        _check_reads(policy_operator, "policy head", common_operator, "common operator", owner)
        _check_reads(value_operator, "value head", common_operator, "common operator", owner)
        super().__init__(common_operator, policy_operator, value_operator)

    def get_policy_operator(self) -> SafeSequential:
        """The backbone then the policy head: observation to action (probabilistic if it is)."""
        common, policy = self.module[0], self.module[1]
        if isinstance(policy, ProbabilisticTensorDictSequential):
            return SafeProbabilisticTensorDictSequential(common, *policy.module)
        return SafeSequential(common, policy)

    def get_value_operator(self) -> SafeSequential:
        """The backbone then the value head: observation to value."""
        return SafeSequential(self.module[0], self.module[2])

    def get_policy_head(self) -> TensorDictModuleBase:
        """The policy head alone (it reads the hidden key)."""
        return self.module[1]

    def get_value_head(self) -> TensorDictModuleBase:
        """The value head alone (it reads the hidden key)."""
        return self.module[2]


class ActorCriticOperator(ActorValueOperator):
    """A policy head and a Q-value head on one backbone: the critic reads the policy's action.

    Reads the common operator's in_keys; writes the hidden key, the policy's outputs and
    ``"state_action_value"`` (the value head's out_key), ``Q(s, a(s))``.
    Built in chapter *Value operators and actor-critic models*.

    Args:
        common_operator (TensorDictModule): reads the observation, writes a hidden key.
        policy_operator (TensorDictModule): reads the hidden key, writes the action.
        value_operator (TensorDictModule): reads the hidden key and the action, writes the
            state-action value (not ``"state_value"``).

    Examples:
        >>> from tensordict import TensorDict
        >>> class QHead(nn.Module):
        ...     def forward(self, hidden, action):
        ...         return hidden.sum(-1, keepdim=True) + action.sum(-1, keepdim=True)
        >>> common = SafeModule(nn.Linear(4, 8), in_keys=["observation"], out_keys=["hidden"])
        >>> policy = SafeModule(nn.Linear(8, 2), in_keys=["hidden"], out_keys=["action"])
        >>> critic = ValueOperator(QHead(), in_keys=["hidden", "action"])
        >>> model = ActorCriticOperator(common, policy, critic)
        >>> td = model(TensorDict(observation=torch.zeros(3, 4), batch_size=[3]))
        >>> td["state_action_value"].shape, model.get_critic_operator() is model
        (torch.Size([3, 1]), True)
    """

    def __init__(self, common_operator: TensorDictModuleBase,
                 policy_operator: TensorDictModuleBase, value_operator: TensorDictModuleBase):
        super().__init__(common_operator, policy_operator, value_operator)
        owner = type(self).__name__
        written = unravel_key_list(list(policy_operator.out_keys))
        if not any(key in written for key in unravel_key_list(list(value_operator.in_keys))):
            # torchrl only looks at the out_key (RuntimeError for "state_value")
            raise InvalidValueError(f"{owner}: the value head must read the action the policy "
                                    f"head writes (one of {written}), got in_keys "
                                    f"{value_operator.in_keys}; for V(s) use ActorValueOperator.")
        if value_operator.out_keys[0] == STATE_VALUE:  # torchrl: RuntimeError
            raise InvalidValueError(f"{owner}: the value head must write a state-action value "
                                    f"such as {STATE_ACTION_VALUE!r}, got out_keys "
                                    f"{value_operator.out_keys}.")

    def get_critic_operator(self) -> "ActorCriticOperator":
        """The whole operator: the critic needs the policy's action, so it runs everything."""
        return self

    def get_value_operator(self):
        """Not available: this critic is ``Q(s, a)``; use ``get_critic_operator()``."""
        raise InvalidValueError(f"{type(self).__name__}: get_value_operator() is for a state "
                                "value V(s), got a state-action critic Q(s, a); call "
                                "get_critic_operator() instead.")


class ActorCriticWrapper(SafeSequential):
    """An actor and a critic with no shared parameters, behind ``ActorValueOperator``'s interface.

    Reads what the policy and the value read (e.g. ``"observation"``); writes the policy's
    outputs and the value's (``"state_value"``). ``get_policy_operator()`` and
    ``get_value_operator()`` return the two modules themselves.
    Built in chapter *Value operators and actor-critic models*.

    Args:
        policy_operator (TensorDictModule): reads the observation, writes the action.
        value_operator (TensorDictModule): reads the observation, writes the value.

    Examples:
        >>> from tensordict import TensorDict
        >>> policy = SafeModule(nn.Linear(4, 2), in_keys=["observation"], out_keys=["action"])
        >>> value = ValueOperator(nn.Linear(4, 1))
        >>> model = ActorCriticWrapper(policy, value)
        >>> td = model(TensorDict(observation=torch.zeros(3, 4), batch_size=[3]))
        >>> td["state_value"].shape, model.get_policy_operator() is policy
        (torch.Size([3, 1]), True)
    """

    def __init__(self, policy_operator: TensorDictModuleBase,
                 value_operator: TensorDictModuleBase):
        owner = type(self).__name__
        _check_operator(policy_operator, "policy_operator", owner)
        _check_operator(value_operator, "value_operator", owner)
        super().__init__(policy_operator, value_operator)

    def get_policy_operator(self) -> TensorDictModuleBase:
        """The policy itself."""
        return self.module[0]

    def get_value_operator(self) -> TensorDictModuleBase:
        """The value network itself."""
        return self.module[1]

    get_policy_head = get_policy_operator
    get_value_head = get_value_operator


def _uniform_(layer: nn.Module, scale: float) -> None:
    """Weights and bias uniform in ``[-scale/2, scale/2]``, as torchrl draws them."""
    with torch.no_grad():
        layer.weight.copy_(torch.rand_like(layer.weight) * scale - scale / 2)
        if layer.bias is not None:
            layer.bias.copy_(torch.rand_like(layer.bias) * scale - scale / 2)


class _InitWhenMaterialized:
    """A forward pre-hook, registered before and after a lazy layer's own: DDPG's init, once.

    Its first call (before the lazy hook) notes whether the layer is still unbuilt; its second
    (after the lazy hook has built it) initialises it then. A ``state_dict`` loaded before the
    first call has built the layer already, and is left as it is.
    """

    def __init__(self, scale: float):
        self.scale, self.unbuilt = scale, None

    def __call__(self, layer: nn.Module, args: tuple) -> None:
        if self.unbuilt is None:  # before the lazy hook
            self.unbuilt = layer.has_uninitialized_params()
            return
        if self.unbuilt:
            _uniform_(layer, self.scale)
        for key, hook in list(layer._forward_pre_hooks.items()):
            if hook is self:
                del layer._forward_pre_hooks[key]


def ddpg_init_last_layer(module: nn.Sequential, scale: float = 6e-4, device=None) -> None:
    """Initialise the last ``Linear``/``Conv2d`` of ``module`` uniformly in ``[-scale/2, scale/2]``.

    DDPG (Lillicrap et al., 2016) starts the last layers near zero, so that the first actions
    and values are near zero. A lazy last layer is initialised when its first input
    arrives (torchrl's initialisation is silently lost there).
    Built in chapter *Value operators and actor-critic models*.

    Args:
        module (nn.Sequential): the network whose last layer is initialised.
        scale (float): the width of the interval. Defaults to ``6e-4``.
        device (torch.device, optional): accepted for torchrl's signature: the draws are made
            where the layer's parameters live.

    Examples:
        >>> mlp = MLP(in_features=4, out_features=2, num_cells=[8])
        >>> ddpg_init_last_layer(mlp, scale=6e-3)
        >>> bool(mlp[-1].weight.abs().max() <= 3e-3)
        True
    """
    last = next((layer for layer in reversed(module) if isinstance(layer, (nn.Linear, nn.Conv2d))),
                None)
    if last is None:  # torchrl: RuntimeError
        raise InvalidValueError(f"ddpg_init_last_layer: module must contain an nn.Linear or "
                                f"nn.Conv2d, got {type(module).__name__} with layers "
                                f"{[type(layer).__name__ for layer in module]}.")
    if isinstance(last, nn.modules.lazy.LazyModuleMixin) and last.has_uninitialized_params():
        hook = _InitWhenMaterialized(scale)
        last.register_forward_pre_hook(hook, prepend=True)
        last.register_forward_pre_hook(hook)
    else:
        _uniform_(last, scale)


class DdpgMlpActor(nn.Module):
    """DDPG's actor: an MLP from the observation to the action (last layer near zero).

    Maps ``(*batch, obs_dim)`` to ``(*batch, action_dim)``; submodule ``mlp`` as in torchrl.
    Built in chapter *Value operators and actor-critic models*.

    Args:
        action_dim (int): the action's length.
        mlp_net_kwargs (dict, optional): updates the MLP defaults ``in_features=None``,
            ``out_features=action_dim``, ``depth=2``, ``num_cells=[400, 300]``,
            ``activation_class=nn.ELU``, ``bias_last_layer=True``.
        device (torch.device, optional): where the parameters live.

    Examples:
        >>> actor = DdpgMlpActor(action_dim=4)
        >>> action = actor(torch.zeros(10, 6))
        >>> action.shape, bool(action.abs().max() < 0.1)
        (torch.Size([10, 4]), True)
    """

    def __init__(self, action_dim: int, mlp_net_kwargs: dict | None = None, device=None):
        super().__init__()
        mlp_net_kwargs = {"in_features": None, "out_features": action_dim, "depth": 2,
                          "num_cells": [400, 300], "activation_class": nn.ELU,
                          "bias_last_layer": True, **(mlp_net_kwargs or {})}
        self.mlp = MLP(device=device, **mlp_net_kwargs)
        ddpg_init_last_layer(self.mlp, MLP_INIT_SCALE, device=device)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return self.mlp(observation)


class DdpgMlpQNet(nn.Module):
    """DDPG's critic: the observation through ``mlp1``, joined by the action, then ``mlp2``.

    Maps an observation ``(*batch, obs_dim)`` and an action ``(*batch, action_dim)`` to
    ``(*batch, 1)``; the action enters after the first layer, as in the DDPG paper.
    Built in chapter *Value operators and actor-critic models*.

    Args:
        mlp_net_kwargs_net1 (dict, optional): updates ``in_features=None``,
            ``out_features=400``, ``depth=0``, ``num_cells=[]``, ``activation_class=nn.ELU``,
            ``bias_last_layer=True``, ``activate_last_layer=True``.
        mlp_net_kwargs_net2 (dict, optional): updates ``in_features=None``,
            ``out_features=1``, ``num_cells=[300]``, ``activation_class=nn.ELU``,
            ``bias_last_layer=True``.
        device (torch.device, optional): where the parameters live.

    Examples:
        >>> net = DdpgMlpQNet()
        >>> net(torch.zeros(5, 3), torch.zeros(5, 1)).shape
        torch.Size([5, 1])
    """

    def __init__(self, mlp_net_kwargs_net1: dict | None = None,
                 mlp_net_kwargs_net2: dict | None = None, device=None):
        super().__init__()
        mlp_net_kwargs_net1 = {"in_features": None, "out_features": 400, "depth": 0,
                               "num_cells": [], "activation_class": nn.ELU,
                               "bias_last_layer": True, "activate_last_layer": True,
                               **(mlp_net_kwargs_net1 or {})}
        mlp_net_kwargs_net2 = {"in_features": None, "out_features": 1, "num_cells": [300],
                               "activation_class": nn.ELU, "bias_last_layer": True,
                               **(mlp_net_kwargs_net2 or {})}
        self.mlp1 = MLP(device=device, **mlp_net_kwargs_net1)
        self.mlp2 = MLP(device=device, **mlp_net_kwargs_net2)
        ddpg_init_last_layer(self.mlp2, MLP_INIT_SCALE, device=device)

    def forward(self, observation: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.mlp2(torch.cat([self.mlp1(observation), action], -1))  # (*batch, 1)


def _conv_defaults(num_cells: list, use_avg_pooling: bool, conv_net_kwargs) -> dict:
    """torchrl's ConvNet defaults for the DDPG nets: three ELU convs, then flatten or pool."""
    aggregator = ((nn.AdaptiveAvgPool2d, {"output_size": (1, 1)}) if use_avg_pooling
                  else (SquashDims, {"ndims_in": 3}))
    return {"in_features": None, "num_cells": num_cells, "kernel_sizes": [8, 4, 3],
            "strides": [4, 2, 1], "paddings": [0, 0, 1], "activation_class": nn.ELU,
            "norm_class": None, "aggregator_class": aggregator[0],
            "aggregator_kwargs": aggregator[1], "squeeze_output": use_avg_pooling,
            **(conv_net_kwargs or {})}


class DdpgCnnActor(nn.Module):
    """DDPG's pixel actor: a ConvNet then an MLP; returns the action and the image embedding.

    Maps images ``(*batch, C, H, W)`` to ``(action (*batch, action_dim), hidden (*batch, D))``;
    submodules ``convnet`` and ``mlp`` as in torchrl.
    Built in chapter *Value operators and actor-critic models*.

    Args:
        action_dim (int): the action's length.
        conv_net_kwargs (dict, optional): updates the ConvNet defaults ``num_cells=[32, 64, 64]``,
            ``kernel_sizes=[8, 4, 3]``, ``strides=[4, 2, 1]``, ``paddings=[0, 0, 1]``, ELU,
            flattened output (or average-pooled with ``use_avg_pooling``).
        mlp_net_kwargs (dict, optional): updates ``out_features=action_dim``, ``depth=2``,
            ``num_cells=200``, ``activation_class=nn.ELU``, ``bias_last_layer=True``.
        use_avg_pooling (bool): average-pool the conv features instead of flattening them.
            Defaults to ``False``.
        device (torch.device, optional): where the parameters live.

    Examples:
        >>> actor = DdpgCnnActor(action_dim=4)
        >>> action, hidden = actor(torch.zeros(2, 3, 64, 64))
        >>> action.shape, hidden.shape
        (torch.Size([2, 4]), torch.Size([2, 2304]))
    """

    def __init__(self, action_dim: int, conv_net_kwargs: dict | None = None,
                 mlp_net_kwargs: dict | None = None, use_avg_pooling: bool = False, device=None):
        super().__init__()
        conv_net_kwargs = _conv_defaults([32, 64, 64], use_avg_pooling, conv_net_kwargs)
        mlp_net_kwargs = {"in_features": None, "out_features": action_dim, "depth": 2,
                          "num_cells": 200, "activation_class": nn.ELU, "bias_last_layer": True,
                          **(mlp_net_kwargs or {})}
        self.convnet = ConvNet(device=device, **conv_net_kwargs)
        self.mlp = MLP(device=device, **mlp_net_kwargs)
        ddpg_init_last_layer(self.mlp, CNN_INIT_SCALE, device=device)

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.convnet(observation)  # (*batch, D)
        return self.mlp(hidden), hidden


class DdpgCnnQNet(nn.Module):
    """DDPG's pixel critic: ConvNet features joined by the action, then an MLP to one value.

    Maps images ``(*batch, C, H, W)`` and actions ``(*batch, action_dim)`` to ``(*batch, 1)``;
    submodules ``convnet`` and ``mlp`` as in torchrl.
    Built in chapter *Value operators and actor-critic models*.

    Args:
        conv_net_kwargs (dict, optional): updates the ConvNet defaults ``num_cells=[32, 64, 128]``,
            ``kernel_sizes=[8, 4, 3]``, ``strides=[4, 2, 1]``, ``paddings=[0, 0, 1]``, ELU,
            average-pooled output (flattened with ``use_avg_pooling=False``).
        mlp_net_kwargs (dict, optional): updates ``out_features=1``, ``depth=2``,
            ``num_cells=200``, ``activation_class=nn.ELU``, ``bias_last_layer=True``.
        use_avg_pooling (bool): average-pool the conv features. Defaults to ``True``.
        device (torch.device, optional): where the parameters live.

    Examples:
        >>> net = DdpgCnnQNet()
        >>> net(torch.zeros(2, 3, 64, 64), torch.zeros(2, 4)).shape
        torch.Size([2, 1])
    """

    def __init__(self, conv_net_kwargs: dict | None = None, mlp_net_kwargs: dict | None = None,
                 use_avg_pooling: bool = True, device=None):
        super().__init__()
        conv_net_kwargs = _conv_defaults([32, 64, 128], use_avg_pooling, conv_net_kwargs)
        mlp_net_kwargs = {"in_features": None, "out_features": 1, "depth": 2, "num_cells": 200,
                          "activation_class": nn.ELU, "bias_last_layer": True,
                          **(mlp_net_kwargs or {})}
        self.convnet = ConvNet(device=device, **conv_net_kwargs)
        self.mlp = MLP(device=device, **mlp_net_kwargs)
        ddpg_init_last_layer(self.mlp, CNN_INIT_SCALE, device=device)

    def forward(self, observation: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([self.convnet(observation), action], -1))  # (*batch, 1)
