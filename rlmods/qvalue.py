"""Q-value actors: turn a vector of action values into the greedy action.

A Q-value module reads ``"action_value"`` (``(*batch, n)``: one value per action) and
writes ``"action"`` (the argmax, encoded as the action space wants), ``"action_value"``
and ``"chosen_action_value"`` (``(*batch, 1)``: the value of the chosen action).
Built in chapter *Q-value actors*; mirrors ``torchrl.modules`` of torchrl 0.14
(``QValueModule``, ``QValueActor``, ``QValueHook``, ``DuelingCnnDQNet``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tensordict.nn import TensorDictModuleBase, dispatch
from torch import nn

from rlmods._checks import InvalidTypeError, InvalidValueError, shape_str
from rlmods._keys import ACTION, ACTION_VALUE, CHOSEN_ACTION_VALUE, OBSERVATION
from rlmods._spec_args import as_composite
from rlmods.actors import DirectCall, SafeModule, SafeSequential, read_entry, write_entry
from rlmods.nets import MLP, ConvNet
from rlmods.specs import (Binary, Categorical, Composite, MultiCategorical, MultiOneHot, OneHot,
                          TensorSpec)

# Every spelling torchrl accepts, mapped to one name per action space.
ACTION_SPACES = {
    "one_hot": "one_hot", "one-hot": "one_hot",
    "mult_one_hot": "mult_one_hot", "mult-one-hot": "mult_one_hot",
    "multi_one_hot": "mult_one_hot", "multi-one-hot": "mult_one_hot",
    "categorical": "categorical", "binary": "binary",
    "mult_categorical": "mult_categorical", "multi_categorical": "mult_categorical",
    "multi-categorical": "mult_categorical", "multi_discrete": "mult_categorical",
    "multi-discrete": "mult_categorical",
}
# Subclasses first: in rlmods.specs MultiOneHot is a OneHot and Binary a Categorical.
SPEC_SPACES = ((MultiOneHot, "mult_one_hot"), (OneHot, "one_hot"), (Binary, "binary"),
               (MultiCategorical, "mult_categorical"), (Categorical, "categorical"))


def greedy_action(values: torch.Tensor, action_space: str, var_nums=None) -> torch.Tensor:
    """The action that maximises ``values`` (``(*batch, n)``), encoded for ``action_space``.

    ``one_hot``: ``(*batch, n)``; ``categorical``: ``(*batch,)``; ``mult_one_hot``: one one-hot
    block per ``var_nums`` entry, ``(*batch, sum(var_nums))``; ``mult_categorical``: one index
    per block, ``(*batch, len(var_nums))``; ``binary``: ``values`` is the gain of setting each
    bit, so the best bit vector sets exactly the bits with a positive gain. Ties go to the
    first maximum (a valid one-hot vector, always).

    Examples:
        >>> values = torch.tensor([[1.0, 3.0, 2.0], [-1.0, 0.5, -2.0]])
        >>> greedy_action(values, "categorical").tolist()
        [1, 1]
        >>> greedy_action(values, "one_hot").tolist()
        [[0, 1, 0], [0, 1, 0]]
        >>> greedy_action(values, "binary").tolist()
        [[1, 1, 1], [0, 1, 0]]
        >>> greedy_action(values, "mult_categorical", var_nums=[1, 2]).tolist()
        [[0, 0], [0, 0]]
    """
    if action_space == "categorical":
        return values.argmax(-1)
    if action_space == "one_hot":
        return F.one_hot(values.argmax(-1), values.shape[-1])
    if action_space == "binary":
        return (values > 0).long()
    blocks = values.split(list(var_nums), -1)
    if action_space == "mult_one_hot":
        return torch.cat([F.one_hot(block.argmax(-1), block.shape[-1]) for block in blocks], -1)
    return torch.stack([block.argmax(-1) for block in blocks], -1)


def chosen_action_value(values: torch.Tensor, action: torch.Tensor, action_space: str,
                        var_nums=None) -> torch.Tensor:
    """The value of ``action`` under ``values``: ``(*batch, 1)``, summed over blocks and bits.

    Examples:
        >>> values = torch.tensor([[1.0, 3.0, 2.0]])
        >>> chosen_action_value(values, torch.tensor([2]), "categorical").tolist()
        [[2.0]]
        >>> chosen_action_value(values, torch.tensor([[0, 1]]), "mult_categorical", [1, 2]).tolist()
        [[3.0]]
    """
    if action_space == "categorical":
        return values.gather(-1, action.unsqueeze(-1))
    if action_space == "mult_categorical":
        blocks = values.split(list(var_nums), -1)
        return sum(block.gather(-1, action[..., i, None]) for i, block in enumerate(blocks))
    return (action * values).sum(-1, keepdim=True)


def mask_values(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``values`` where ``mask`` is True, the dtype's lowest number elsewhere (never the max)."""
    return torch.where(mask, values, torch.finfo(values.dtype).min)


def _leaf_action_spec(spec: Composite, action_key, owner: str):
    """The action leaf of a Composite: ``action_key`` if there, else a leaf named ``"action"``."""
    leaves = list(spec.keys(True, True))
    nested = [key for key in leaves if isinstance(key, tuple) and key[-1] == ACTION]
    for key in (action_key, ACTION, *nested):
        if key in leaves:
            return spec[key]  # None where the Composite only reserves the key
    raise KeyError(f"{owner}: spec must hold the action key {action_key!r} or a leaf named "
                   f"'action', got keys {sorted(map(str, leaves))}.")


def spec_action_space(owner: str, action_spec) -> str | None:
    """The action space a discrete spec implies (``None`` when there is no spec).

    Examples:
        >>> spec_action_space("Demo", MultiOneHot([2, 3]))
        'mult_one_hot'
    """
    if action_spec is None:
        return None
    inferred = next((name for cls, name in SPEC_SPACES if isinstance(action_spec, cls)), None)
    if inferred is None:
        raise ValueError(f"{owner}: spec must be a discrete action spec (OneHot, Categorical, "
                         f"MultiOneHot, MultiCategorical or Binary), got {action_spec}.")
    return inferred


def resolve_var_nums(owner: str, action_space: str, action_spec, var_nums):
    """Block sizes of a multi-discrete space: ``var_nums``, or the spec's ``nvec``; they agree.

    Examples:
        >>> resolve_var_nums("Demo", "mult_categorical", MultiCategorical([2, 3]), None)
        [2, 3]
    """
    if not action_space.startswith("mult_"):
        return var_nums
    nvec = None if action_spec is None else [int(n) for n in action_spec.nvec]
    if var_nums is None:
        var_nums = nvec
    if var_nums is None:
        raise ValueError(f"{owner}: var_nums must be given for the {action_space!r} action "
                         "space (or pass a spec with nvec), got None.")
    var_nums = [int(n) for n in ([var_nums] if isinstance(var_nums, int) else var_nums)]
    if nvec is not None and var_nums != nvec:
        raise ValueError(f"{owner}: var_nums must match the spec's nvec {nvec}, "
                         f"got {var_nums}.")
    return var_nums


def process_action_space(owner: str, action_space, spec, var_nums=None, action_key=ACTION):
    """Resolve ``(action_space, action_spec, var_nums)`` from either argument, or both.

    One argument is enough; when both are given they must agree. ``var_nums`` of the
    multi-discrete spaces comes from the spec's ``nvec`` when not given.
    """
    if isinstance(action_space, TensorSpec):  # torchrl: TypeError or RuntimeError
        raise InvalidTypeError(f"{owner}: action_space must be a string such as 'one_hot', got "
                               f"a {type(action_space).__name__} spec; pass specs as spec=.")
    action_spec = spec
    if isinstance(spec, Composite):
        action_spec = _leaf_action_spec(spec, action_key, owner)
    inferred = spec_action_space(owner, action_spec)
    if action_space is None and inferred is None:
        raise ValueError(f"{owner}: action_space or spec must be given to infer the action "
                         "space, got neither.")
    action_space = inferred if action_space is None else action_space
    if action_space not in ACTION_SPACES:
        raise ValueError(f"{owner}: action_space must be one of "
                         f"{sorted(set(ACTION_SPACES.values()))}, got {action_space!r}.")
    action_space = ACTION_SPACES[action_space]
    if inferred is not None and inferred != action_space:
        raise ValueError(f"{owner}: action_space and spec must agree, got action_space="
                         f"{action_space!r} and a {type(action_spec).__name__} spec "
                         f"(action space {inferred!r}).")
    return action_space, action_spec, resolve_var_nums(owner, action_space, action_spec, var_nums)


class QValueModule(DirectCall, TensorDictModuleBase):
    """Greedy action from action values (one-hot, categorical, multi-discrete, binary actions).

    Reads ``action_value`` ``(*batch, n)`` (and ``action_mask_key`` ``(*batch, n)``, bool);
    writes ``action``, ``action_value`` (masked entries set to the dtype's lowest number, as
    torchrl does) and ``chosen_action_value`` ``(*batch, 1)``. Works with a TensorDict, a
    tensor or keyword arguments (``tensordict.nn.dispatch``).
    Built in chapter *Q-value actors*.

    Args:
        action_space (str, optional): ``"one_hot"``, ``"categorical"``, ``"mult_one_hot"``,
            ``"mult_categorical"`` or ``"binary"`` (torchrl's dashed spellings work too).
            Inferred from ``spec`` when omitted.
        action_value_key (NestedKey, optional): defaults to ``"action_value"``.
        action_mask_key (NestedKey, optional): a bool mask; masked actions are never chosen.
        out_keys (list of NestedKey, optional): action, action value and chosen action value
            keys. Defaults to ``["action", action_value_key, "chosen_action_value"]``.
        var_nums (int or list of int, optional): block sizes of the multi-discrete spaces;
            read from the spec's ``nvec`` when omitted.
        spec (TensorSpec, optional): the action spec (or a Composite holding it).
        safe (bool): project the action onto the spec. Defaults to False.
        strict_shape (bool or "auto"): check the action's shape against the spec (True or
            None), reshape it ("auto"), or neither (False). Defaults to True.

    Examples:
        >>> from tensordict import TensorDict
        >>> module = QValueModule(spec=OneHot(3))
        >>> td = module(TensorDict({"action_value": torch.tensor([[1.0, 3.0, 2.0]])}, [1]))
        >>> td["action"].tolist(), td["chosen_action_value"].tolist()
        ([[0, 1, 0]], [[3.0]])
        >>> module(torch.tensor([1.0, 3.0, 2.0]))[0].tolist()
        [0, 1, 0]
    """

    def __init__(self, action_space: str | None = None, action_value_key=None,
                 action_mask_key=None, out_keys=None, var_nums: int | None = None,
                 spec: TensorSpec | None = None, safe: bool = False, strict_shape=True):
        super().__init__()
        owner = type(self).__name__
        action_value_key = ACTION_VALUE if action_value_key is None else action_value_key
        if out_keys is None:
            out_keys = self._default_out_keys(action_value_key)
        out_keys = list(out_keys)
        if action_value_key not in out_keys:  # torchrl: RuntimeError
            raise InvalidValueError(f"{owner}: out_keys must contain the action_value_key "
                                    f"{action_value_key!r}, got {out_keys}.")
        if strict_shape not in (True, False, None, "auto"):
            raise ValueError(f"{owner}: strict_shape must be True, False, None or 'auto', "
                             f"got {strict_shape!r}.")
        self.action_space, action_spec, self.var_nums = process_action_space(
            owner, action_space, spec, var_nums, out_keys[0])
        self.action_mask_key = action_mask_key
        mask_keys = [] if action_mask_key is None else [action_mask_key]
        self.in_keys = [action_value_key, *mask_keys]
        self.out_keys = out_keys
        self.safe, self.strict_shape = safe, strict_shape
        self._set_spec(spec, action_spec)

    def _default_out_keys(self, action_value_key):
        return [ACTION, action_value_key, CHOSEN_ACTION_VALUE]

    def _set_spec(self, spec, action_spec) -> None:
        """Keep the spec, and what it fixes: the values' last dim and the action's shape."""
        action_key = self.out_keys[0]
        self.spec = spec if isinstance(spec, Composite) else Composite({action_key: action_spec})
        self._action_spec = action_spec
        self._num_values = self._count_values(action_spec)
        parent = action_key[:-1] if isinstance(action_key, tuple) else ()
        batch_ndim = len(self.spec[parent].shape) if parent else len(self.spec.shape)
        self._action_shape = None if action_spec is None else action_spec.shape[batch_ndim:]
        # Decided here, not per call: whether the greedy action can differ from the spec's
        # shape at all (the values' last dim is checked, so greedy_action's shape is known).
        self._shape_known = (self._action_shape is None or self.strict_shape is False
                             or self._action_shape == self._greedy_shape())

    def _greedy_shape(self) -> torch.Size | None:
        """The trailing shape of ``greedy_action``'s output for this module's values."""
        if self._num_values is None:
            return None
        if self.action_space == "categorical":
            return torch.Size([])
        if self.action_space == "mult_categorical":
            return torch.Size([len(self.var_nums)])
        return torch.Size([self._num_values])  # one-hot, multi-one-hot, binary

    def _count_values(self, action_spec) -> int | None:
        if self.var_nums is not None:
            return sum(self.var_nums)
        if action_spec is None:
            return None
        if self.action_space in ("one_hot", "binary"):
            return action_spec.shape[-1]
        return action_spec.n

    @property
    def action_value_key(self):
        return self.in_keys[0]

    def _check_values(self, values: torch.Tensor) -> None:
        # Under every strict_shape (torchrl checks nothing with a categorical spec and fails
        # later with RuntimeError with a one-hot one).
        if self._num_values is not None and values.shape[-1] != self._num_values:
            raise InvalidValueError(f"{type(self).__name__}: {self.action_value_key!r} must have "
                                    f"{self._num_values} entries in its last dim, got shape "
                                    f"{shape_str(values.shape)}.")

    def _shape_action(self, action: torch.Tensor, batch_shape) -> torch.Tensor:
        # Called only where the spec's shape is not greedy_action's (_shape_known is False).
        target = torch.Size([*batch_shape, *self._action_shape])
        if self.strict_shape == "auto" and action.numel() == target.numel():
            return action.reshape(target)
        hint = "." if self.strict_shape == "auto" else "; strict_shape='auto' reshapes it."
        raise InvalidValueError(f"{type(self).__name__}: the action must have shape "
                                f"{shape_str(target)} to match the spec, got shape "
                                f"{shape_str(action.shape)}{hint}")

    def _forward_td(self, tensordict):
        values = read = read_entry(tensordict, self.in_keys[0], self)  # (*batch, n)
        self._check_values(values)
        if self.action_mask_key is not None:
            values = mask_values(values, read_entry(tensordict, self.action_mask_key, self))
        action = greedy_action(values, self.action_space, self.var_nums)
        chosen = chosen_action_value(values, action, self.action_space, self.var_nums)  # (*B, 1)
        if not self._shape_known:
            action = self._shape_action(action, values.shape[:-1])
        if self.safe:
            action = self._action_spec.project(action)
        action_key, values_key, chosen_key = self.out_keys
        write_entry(tensordict, action_key, action)
        if values is not read or values_key != self.in_keys[0]:  # else it is already there
            write_entry(tensordict, values_key, values)
        write_entry(tensordict, chosen_key, chosen)
        return tensordict

    @dispatch(auto_batch_size=False)
    def _fallback(self, tensordict):
        """Tensors in (``module(values)``, ``module(action_value=...)``), the out_keys' out."""
        return self._forward_td(tensordict)


class QValueHook:
    """A forward hook that makes an ``nn.Module`` return ``(action, values, chosen)``.

    Register it with ``module.register_forward_hook(hook)``: the module then returns the
    triplet of a :class:`QValueModule` called on its output.
    Built in chapter *Q-value actors*.

    Args:
        action_space (str): as in :class:`QValueModule`.
        var_nums (int or list of int, optional): block sizes of the multi-discrete spaces.
        action_value_key (NestedKey, optional): defaults to ``"action_value"``.
        action_mask_key (NestedKey, optional): a bool mask key.
        out_keys (list of NestedKey, optional): as in :class:`QValueModule`.

    Examples:
        >>> net = nn.Linear(3, 4)
        >>> _ = net.register_forward_hook(QValueHook("one_hot"))
        >>> [t.shape for t in net(torch.zeros(5, 3))]
        [torch.Size([5, 4]), torch.Size([5, 4]), torch.Size([5, 1])]
    """

    def __init__(self, action_space: str, var_nums: int | None = None, action_value_key=None,
                 action_mask_key=None, out_keys=None):
        self.qvalue_model = QValueModule(action_space=action_space, var_nums=var_nums,
                                         action_value_key=action_value_key,
                                         action_mask_key=action_mask_key, out_keys=out_keys)
        self._set_key()

    def _set_key(self) -> None:
        key = self.qvalue_model.in_keys[0]  # dispatch joins nested keys with "_"
        self.action_value_key = "_".join(key) if isinstance(key, tuple) else key

    def __call__(self, net: nn.Module, observation: torch.Tensor, values: torch.Tensor):
        return self.qvalue_model(**{self.action_value_key: values})


class QValueActor(SafeSequential):
    """A network followed by a :class:`QValueModule`: observation in, greedy action out.

    Reads ``in_keys`` (default ``["observation"]``); writes ``action``, ``action_value``
    ``(*batch, n)`` and ``chosen_action_value`` ``(*batch, 1)``.
    Built in chapter *Q-value actors*.

    Args:
        module (nn.Module): maps the observation to action values; a TensorDict module must
            write ``action_value_key``.

    Keyword Args:
        in_keys (list of NestedKey, optional): the plain module's inputs.
        spec (TensorSpec, optional): the action spec (or a Composite holding it).
        safe (bool): project the action onto the spec. Defaults to False.
        action_space (str, optional): as in :class:`QValueModule`; inferred from ``spec``.
        action_value_key, action_key, chosen_action_value_key (NestedKey, optional): output
            keys, defaulting to ``"action_value"``, ``"action"`` and ``"chosen_action_value"``.
        action_mask_key (NestedKey, optional): a bool mask; masked actions are never chosen.
        strict_shape (bool or "auto"): as in :class:`QValueModule`.

    Examples:
        >>> from tensordict import TensorDict
        >>> actor = QValueActor(nn.Linear(3, 4), spec=Categorical(4))
        >>> td = actor(TensorDict({"observation": torch.zeros(5, 3)}, [5]))
        >>> td["action"].shape, td["action_value"].shape, td["chosen_action_value"].shape
        (torch.Size([5]), torch.Size([5, 4]), torch.Size([5, 1]))
    """

    def __init__(self, module, *, in_keys=None, spec=None, safe=False,
                 action_space: str | None = None, action_value_key=None, action_key=None,
                 chosen_action_value_key=None, action_mask_key=None, strict_shape=True):
        self.action_value_key = action_value_key  # as given, like torchrl (None by default)
        action_value_key = ACTION_VALUE if action_value_key is None else action_value_key
        action_key = ACTION if action_key is None else action_key
        chosen_key = chosen_action_value_key or CHOSEN_ACTION_VALUE
        module = self._value_module(module, in_keys, action_value_key)
        spec = self._actor_spec(spec, action_key, (action_value_key, chosen_key))
        qvalue = QValueModule(action_space=action_space, action_value_key=action_value_key,
                              action_mask_key=action_mask_key,
                              out_keys=[action_key, action_value_key, chosen_key], spec=spec,
                              safe=safe, strict_shape=strict_shape)
        self.action_space = qvalue.action_space
        super().__init__(module, qvalue)

    def _value_module(self, module, in_keys, action_value_key) -> TensorDictModuleBase:
        """``module`` as a TensorDict module that writes ``action_value_key``."""
        if isinstance(module, TensorDictModuleBase):
            if action_value_key not in module.out_keys:
                raise KeyError(f"{type(self).__name__}: the module's out_keys must contain the "
                               f"action_value_key {action_value_key!r}, got {module.out_keys}.")
            return module
        # rlmods' SafeModule, not tensordict's TensorDictModule: it writes without from_any.
        return SafeModule(module, in_keys=[OBSERVATION] if in_keys is None else in_keys,
                          out_keys=[action_value_key])

    def _actor_spec(self, spec, action_key, value_keys) -> Composite:
        """torchrl's actor spec: the action's spec, and None (no constraint) for the values."""
        spec = as_composite(spec, [action_key], type(self).__name__, batch_shape=True,
                            strict=False)
        for key in value_keys:
            spec[key] = None
        return spec


class DuelingCnnDQNet(nn.Module):
    """Dueling DQN (Wang et al., 2016): ``Q = V + A - mean(A)`` on top of a shared ConvNet.

    Maps images ``(*batch, C, H, W)`` to action values ``(*batch, out_features)``.
    Same submodule names as torchrl (``features``, ``advantage``, ``value``), so torchrl
    checkpoints load. Built in chapter *Q-value actors*.

    Args:
        out_features (int): number of actions (advantage outputs).
        out_features_value (int): value outputs. Defaults to 1.
        cnn_kwargs (dict, optional): updates the ConvNet defaults ``num_cells=[32, 64, 64]``,
            ``strides=[4, 2, 1]``, ``kernel_sizes=[8, 4, 3]``.
        mlp_kwargs (dict, optional): updates the MLP defaults ``depth=1``,
            ``activation_class=nn.ELU``, ``num_cells=512``, ``bias_last_layer=True``.
        device (torch.device, optional): where the parameters live.

    Examples:
        >>> net = DuelingCnnDQNet(out_features=6)
        >>> net(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 6])
    """

    def __init__(self, out_features: int, out_features_value: int = 1,
                 cnn_kwargs: dict | None = None, mlp_kwargs: dict | None = None, device=None):
        super().__init__()
        cnn_kwargs = {"num_cells": [32, 64, 64], "strides": [4, 2, 1],
                      "kernel_sizes": [8, 4, 3], **(cnn_kwargs or {})}
        mlp_kwargs = {"depth": 1, "activation_class": nn.ELU, "num_cells": 512,
                      "bias_last_layer": True, **(mlp_kwargs or {})}
        self.out_features, self.out_features_value = out_features, out_features_value
        self.features = ConvNet(device=device, **cnn_kwargs)
        self.advantage = MLP(out_features=out_features, device=device, **mlp_kwargs)
        self.value = MLP(out_features=out_features_value, device=device, **mlp_kwargs)
        for layer in self.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)) and isinstance(layer.bias, torch.Tensor):
                layer.bias.data.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        advantage = self.advantage(x)  # (*batch, out_features)
        return self.value(x) + advantage - advantage.mean(dim=-1, keepdim=True)
