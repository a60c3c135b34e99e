"""Networks: the MLP and conv stacks of torchrl, their positive mappings, and BatchRenorm1d.

Built in chapter *Networks*. Every network here is an ``nn.Sequential`` whose layer order
(and so its ``state_dict`` keys) is torchrl 0.14's, so a torchrl checkpoint loads as is.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from copy import deepcopy
from numbers import Number

import torch
from tensordict.nn import utils as tensordict_utils
from torch import nn
from torch.nn import functional as F

from rlmods._checks import InvalidValueError, shape_str

# Layer classes that have a lazy twin (input size inferred at the first call). Later
# chapters register theirs here (NoisyLinear -> NoisyLazyLinear).
LAZY_LAYERS: dict[type, type] = {nn.Linear: nn.LazyLinear}
# Layer classes whose bias cannot be replaced by one shared bias (single_bias_last_layer):
# a noisy layer's bias is part of its noise. Chapter 6 registers NoisyLinear here.
NO_SHARED_BIAS: set[type] = set()


def inv_softplus(bias: float | torch.Tensor) -> float | torch.Tensor:
    """The ``y`` with ``softplus(y) = bias``: ``log(exp(bias) - 1)``, floored for tiny ``bias``.

    A float in gives a float out (computed in float32, as tensordict does).

    Built in chapter *Networks*.

    Examples:
        >>> round(inv_softplus(1.0), 4)
        0.5413
        >>> round(float(F.softplus(torch.tensor(inv_softplus(2.0)))), 4)
        2.0
    """
    value = bias if isinstance(bias, torch.Tensor) else torch.tensor(bias)
    out = value.expm1().clamp_min(1e-6).log()
    return out if isinstance(bias, torch.Tensor) or out.numel() != 1 else out.item()


class biased_softplus(nn.Module):
    """``softplus(x + b) + min_val``, with ``b`` chosen so that ``x = 0`` maps to ``bias``.

    A scale head whose raw output starts near 0 then starts at the scale ``bias``, and the
    scale never drops below ``min_val``.

    Built in chapter *Networks*.

    Args:
        bias (float): the value returned for ``x = 0``.
        min_val (float): the lower bound of the output. Defaults to ``0.01``.

    Examples:
        >>> f = biased_softplus(2.0)
        >>> round(float(f(torch.zeros(1))), 4), round(float(f(torch.tensor([-50.0]))), 4)
        (2.0, 0.01)
    """

    def __init__(self, bias: float, min_val: float = 0.01) -> None:
        super().__init__()
        self.bias = inv_softplus(bias - min_val)
        self.min_val = min_val

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(x + self.bias) + self.min_val


def expln(x: torch.Tensor) -> torch.Tensor:
    """``exp(x)`` for ``x <= 0``, ``log1p(x) + 1`` above: positive, and only logarithmic growth.

    Without boolean indexing (tensordict's version), so it compiles and its gradient has no NaN.

    Built in chapter *Networks*.

    Examples:
        >>> expln(torch.tensor([-1.0, 0.0, 1.0])).round(decimals=4)
        tensor([0.3679, 1.0000, 1.6931])
    """
    return torch.where(x <= 0, x.clamp_max(0).exp(), x.clamp_min(0).log1p() + 1)


_MAPPINGS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "softplus": F.softplus,
    "exp": torch.exp,
    "relu": torch.relu,
    "biased_softplus": biased_softplus(1.0),
    "none": lambda x: x,
    "expln": expln,
}


def mappings(key: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The positive mapping ``R -> R+`` named ``key`` (tensordict's ``mappings``).

    ``"softplus"``, ``"exp"``, ``"relu"``, ``"expln"``, ``"none"``, ``"biased_softplus"``
    (bias 1), ``"biased_softplus_<bias>"`` or ``"biased_softplus_<bias>_<min_val>"``, and any
    name added with ``tensordict.nn.add_custom_mapping`` (torchrl's way to add one).

    Built in chapter *Networks*.

    Examples:
        >>> f = mappings("biased_softplus_0.5_0.1")
        >>> round(f.bias, 4), f.min_val, round(float(f(torch.zeros(()))), 4)
        (-0.7096, 0.1, 0.5)
    """
    if key in _MAPPINGS:
        return _MAPPINGS[key]
    custom = tensordict_utils._MAPPINGS  # where tensordict.nn.add_custom_mapping writes
    if key in custom:
        return custom[key]
    head, _, args = key.partition("biased_softplus_")
    numbers = args.split("_")
    if head or not args or len(numbers) > 2:  # torchrl: NotImplementedError
        raise InvalidValueError(f"mappings: key must be one of {sorted(custom | _MAPPINGS)} or "
                                f"'biased_softplus_<bias>[_<min_val>]', got {key!r}.")
    try:
        values = [float(n) for n in numbers]
    except ValueError:
        raise ValueError(f"mappings: key must be 'biased_softplus_<bias>[_<min_val>]' with float "
                         f"numbers, got {key!r}.") from None
    return biased_softplus(*values)


class SqueezeLayer(nn.Module):
    """Squeeze the given singleton dims (all counted from the end) of its input.

    Built in chapter *Networks*.

    Args:
        dims (sequence of negative int): the dims to squeeze, in order. Defaults to ``(-1,)``.

    Examples:
        >>> SqueezeLayer((-2, -1))(torch.zeros(4, 3, 1, 1)).shape
        torch.Size([4, 3])
    """

    def __init__(self, dims: Sequence[int] = (-1,)):
        super().__init__()
        if any(dim >= 0 for dim in dims):  # torchrl: RuntimeError
            raise InvalidValueError(f"{type(self).__name__}: dims must all be negative (counted "
                                    "from the end, so that batch dims may vary), "
                                    f"got {tuple(dims)}.")
        self.dims = dims

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        shape = input.shape
        for dim in self.dims:
            if input.shape[dim] != 1:  # torchrl: RuntimeError
                raise InvalidValueError(f"{type(self).__name__}: input must have size 1 in dims "
                                        f"{tuple(self.dims)}, got shape {shape_str(shape)}.")
            input = input.squeeze(dim)
        return input


class Squeeze2dLayer(SqueezeLayer):
    """Squeeze the last two singleton dims: a ``(B, C, 1, 1)`` conv output becomes ``(B, C)``.

    Built in chapter *Networks*.

    Examples:
        >>> Squeeze2dLayer()(torch.zeros(4, 3, 1, 1)).shape
        torch.Size([4, 3])
    """

    def __init__(self):
        super().__init__((-2, -1))


class SquashDims(nn.Module):
    """Flatten the last ``ndims_in`` dims: ``(B, C, H, W) -> (B, C * H * W)``.

    Built in chapter *Networks*.

    Examples:
        >>> SquashDims()(torch.zeros(1, 2, 3, 4)).shape
        torch.Size([1, 24])
    """

    def __init__(self, ndims_in: int = 3):
        super().__init__()
        self.ndims_in = ndims_in

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return value.flatten(-self.ndims_in, -1)


class _SharedBias(nn.Module):
    """One bias shared by all output features (``single_bias_last_layer``)."""

    def __init__(self, device=None, dtype=None):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, device=device, dtype=dtype))

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.bias)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return input + self.bias


class _ExecutableLayer(nn.Module):
    """A plain function (say ``torch.relu``) as a layer."""

    def __init__(self, func):
        super().__init__()
        self.func = func

    def forward(self, *args, **kwargs):
        return self.func(*args, **kwargs)


def _make(factory: Callable, device, *args, **kwargs) -> nn.Module:
    """``factory(*args, **kwargs)`` on ``device`` (passed in if it takes one), as a module."""
    try:
        takes_device = "device" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        takes_device = False
    out = factory(*args, device=device, **kwargs) if takes_device else factory(*args, **kwargs)
    if not isinstance(out, nn.Module):
        return _ExecutableLayer(out)
    return out.to(device) if device is not None and not takes_device else out


def _per_layer(kwargs: dict | Sequence[dict] | None, n: int, owner: str,
               argument: str) -> list[dict]:
    """One (copied) kwargs dict per layer from ``None``, one dict, or a list of ``n`` dicts."""
    if kwargs is None or isinstance(kwargs, dict):
        return [deepcopy(kwargs or {}) for _ in range(n)]
    if len(kwargs) != n:
        raise ValueError(f"{owner}: {argument} must be a dict or a list of {n} dicts (one per "
                         f"layer), got a list of {len(kwargs)}.")
    return [deepcopy(k) for k in kwargs]


def _hidden_sizes(depth: int | None, num_cells: Sequence[int] | int | None) -> list[int]:
    """The hidden layer sizes from ``depth`` and ``num_cells``, resolved as torchrl does."""
    if num_cells is None:
        return [] if depth is None else [32] * depth
    if not isinstance(num_cells, Sequence):
        if depth is None:  # torchrl: RuntimeError
            raise InvalidValueError(f"MLP: depth must be given when num_cells is an int, "
                                    f"got num_cells={num_cells} and depth=None.")
        return [num_cells] * depth
    if depth is not None and len(num_cells) != depth:  # torchrl: RuntimeError
        raise InvalidValueError(f"MLP: num_cells must have depth={depth} entries, "
                                f"got {list(num_cells)}.")
    return list(num_cells)


class MLP(nn.Sequential):
    """A multi-layer perceptron: ``Linear -> [Dropout] -> [norm] -> activation``, repeated.

    Reads one tensor ``(*B, in_features)`` (several are concatenated on the last dim) and
    writes ``(*B, out_features)``, reshaped to ``(*B, *out_features)`` when that is a shape.
    Layer order, hence ``state_dict`` keys, is torchrl's: ``0.weight, 0.bias, 2.weight, ...``.

    Built in chapter *Networks*.

    Args:
        in_features (int, optional): input size; ``None`` makes the first layer lazy.
        out_features (int or shape): output size or shape. Required.
        depth (int, optional): number of hidden layers; taken from ``num_cells`` when it is a list.
        num_cells (int or list of int, optional): hidden sizes. Defaults to ``32`` per hidden
            layer (no hidden layer when ``depth`` is also None).
        activation_class: activation class or factory. Defaults to ``nn.Tanh``.
        activation_kwargs (dict or list of dict, optional): its kwargs, or one dict per activation.
        norm_class: normalization class or factory, placed between dropout and activation.
        norm_kwargs (dict or list of dict, optional): its kwargs, or one dict per norm layer.
        dropout (float, optional): dropout probability after each hidden linear layer.
        bias_last_layer (bool): the last linear layer has a bias. Defaults to True.
        single_bias_last_layer (bool): one bias shared by all outputs. Defaults to False.
        layer_class: linear layer class. Defaults to ``nn.Linear``.
        layer_kwargs (dict or list of dict, optional): its kwargs, or one dict per linear layer.
        activate_last_layer (bool): activate the output too. Defaults to False.
        device: where the parameters live.

    Examples:
        >>> mlp = MLP(in_features=3, out_features=(2, 4), num_cells=[32, 32])
        >>> mlp(torch.zeros(5, 3)).shape, list(mlp.state_dict())[:3]
        (torch.Size([5, 2, 4]), ['0.weight', '0.bias', '2.weight'])
    """

    def __init__(self, in_features: int | None = None,
                 out_features: int | torch.Size | None = None, depth: int | None = None,
                 num_cells: Sequence[int] | int | None = None,
                 activation_class: type[nn.Module] | Callable = nn.Tanh,
                 activation_kwargs: dict | list[dict] | None = None,
                 norm_class: type[nn.Module] | Callable | None = None,
                 norm_kwargs: dict | list[dict] | None = None, dropout: float | None = None,
                 bias_last_layer: bool = True, single_bias_last_layer: bool = False,
                 layer_class: type[nn.Module] | Callable = nn.Linear,
                 layer_kwargs: dict | None = None, activate_last_layer: bool = False, device=None):
        if out_features is None:
            raise ValueError("MLP: out_features must be an int or a shape, got None.")
        self.num_cells = _hidden_sizes(depth, num_cells)
        self.depth = len(self.num_cells)
        lazy = LAZY_LAYERS.get(layer_class)
        if in_features is None and lazy is None:
            raise ValueError(f"MLP: in_features must be given for layer_class={layer_class!r}, "
                             "which has no lazy version in rlmods.nets.LAZY_LAYERS, got None.")
        self.in_features, self.out_features = in_features, out_features
        self.activation_class, self.norm_class = activation_class, norm_class
        self.layer_class, self.dropout = layer_class, dropout
        self.bias_last_layer, self.single_bias_last_layer = bias_last_layer, single_bias_last_layer
        self.activate_last_layer = activate_last_layer
        self._reshape_out = not isinstance(out_features, Number)
        n_act = self.depth + activate_last_layer
        acts = _per_layer(activation_kwargs, n_act, "MLP", "activation_kwargs")
        norms = _per_layer(norm_kwargs, n_act, "MLP", "norm_kwargs")
        linears = _per_layer(layer_kwargs, self.depth + 1, "MLP", "layer_kwargs")
        super().__init__(*self._layers(lazy, device, linears, norms, acts))

    def _layers(self, lazy, device, linears, norms, acts) -> list[nn.Module]:
        """Per layer: ``Linear``, then ``[Dropout]``, ``[norm]``, activation (torchrl's order)."""
        out = self.out_features
        n_out = out if isinstance(out, Number) else math.prod(out)
        sizes = [self.in_features, *self.num_cells, n_out]
        layers = []
        for i, kwargs in enumerate(linears):
            last = i == self.depth
            bias = kwargs.pop("bias", self.bias_last_layer if last else True)
            shared = last and self.single_bias_last_layer and bias
            factory, size = (lazy, ()) if sizes[i] is None else (self.layer_class, (sizes[i],))
            layers.append(_make(factory, device, *size, sizes[i + 1], bias=bias and not shared,
                                **kwargs))
            noisy = isinstance(layers[-1], tuple(NO_SHARED_BIAS))
            if last and self.single_bias_last_layer and noisy:
                raise ValueError(f"MLP: single_bias_last_layer=True is incompatible with "
                                 f"{type(layers[-1]).__name__} (its bias is noisy), got both.")
            if shared:
                weight = next(layers[-1].parameters())
                layers.append(_SharedBias(device=weight.device, dtype=weight.dtype))
            if not last or self.activate_last_layer:
                if self.dropout is not None:
                    layers.append(nn.Dropout(p=self.dropout))
                if self.norm_class is not None:
                    layers.append(_make(self.norm_class, device, **norms[i]))
                layers.append(_make(self.activation_class, device, **acts[i]))
        return layers

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = inputs[0] if len(inputs) == 1 else torch.cat(inputs, -1)  # (*B, in_features)
        if self.in_features is not None and x.shape[-1] != self.in_features:
            raise InvalidValueError(  # torchrl: RuntimeError (in the matmul)
                f"MLP: input must have in_features={self.in_features} entries in its last dim "
                f"(after concatenation), got shape {shape_str(x.shape)}.")
        out = nn.Sequential.forward(self, x)  # (*B, prod(out_features))
        if self._reshape_out:
            out = out.view(*out.shape[:-1], *self.out_features)
        return out


def _conv_fields(name: str, depth: int | None, fields: dict) -> tuple[int, dict]:
    """``depth``, and each field as one entry per layer (an int is repeated), as torchrl does."""
    if depth is None:  # as torchrl: the last list among the fields sets the depth
        lengths = [len(v) for v in fields.values() if isinstance(v, (list, tuple))]
        if not lengths:
            raise ValueError(f"{name}: depth must be given when num_cells, kernel_sizes, strides "
                             "and paddings are all ints, got depth=None.")
        depth = lengths[-1]
    if depth < 1:
        raise ValueError(f"{name}: depth must be at least 1, got {depth}.")
    out = {}
    for field, value in fields.items():
        value = list(value) if isinstance(value, Sequence) else [value] * depth
        if len(value) != depth:  # torchrl: RuntimeError (ConvNet), ValueError (Conv3dNet)
            raise InvalidValueError(f"{name}: {field} must have depth={depth} entries, "
                                    f"got {value}.")
        out[field] = value
    return depth, out


class _ConvStack(nn.Sequential):
    """ConvNet and Conv3dNet: ``conv -> activation -> [norm]`` per layer, then an aggregator.

    Subclasses set ``_conv`` / ``_lazy_conv`` (the layer classes), ``_squeeze`` (dims that
    ``squeeze_output`` removes) and ``_dims`` (the names of the dims one sample has).
    """

    _conv: type
    _lazy_conv: type
    _squeeze: tuple
    _dims: tuple

    def __init__(self, in_features: int | None = None, depth: int | None = None,
                 num_cells: Sequence[int] | int = None, kernel_sizes: Sequence[int] | int = 3,
                 strides: Sequence[int] | int = 1, paddings: Sequence[int] | int = 0,
                 activation_class: type[nn.Module] | Callable = nn.ELU,
                 activation_kwargs: dict | list[dict] | None = None,
                 norm_class: type[nn.Module] | Callable | None = None,
                 norm_kwargs: dict | list[dict] | None = None, bias_last_layer: bool = True,
                 aggregator_class: type[nn.Module] | Callable | None = SquashDims,
                 aggregator_kwargs: dict | None = None, squeeze_output: bool = False, device=None):
        name = type(self).__name__
        if num_cells is None:
            num_cells = [32] * (3 if depth is None else depth)
        fields = {"num_cells": num_cells, "kernel_sizes": kernel_sizes, "strides": strides,
                  "paddings": paddings}
        depth, fields = _conv_fields(name, depth, fields)
        for field, value in fields.items():
            setattr(self, field, value)
        self.in_features, self.depth, self.out_features = in_features, depth, self.num_cells[-1]
        self.activation_class, self.norm_class = activation_class, norm_class
        self.bias_last_layer, self.squeeze_output = bias_last_layer, squeeze_output
        self.aggregator_class = aggregator_class
        self.aggregator_kwargs = ({"ndims_in": len(self._dims)} if aggregator_kwargs is None
                                  else aggregator_kwargs)
        acts = _per_layer(activation_kwargs, depth, name, "activation_kwargs")
        norms = _per_layer(norm_kwargs, depth, name, "norm_kwargs")
        super().__init__(*self._layers(device, acts, norms))

    def _layers(self, device, acts, norms) -> list[nn.Module]:
        """``conv -> activation -> [norm]`` per layer, then the aggregator and the squeeze."""
        layers = []
        for i, (c_in, c_out) in enumerate(zip([self.in_features, *self.num_cells], self.num_cells)):
            # torchrl ignores bias_last_layer in conv nets (its test is always true); we honour it.
            bias = i < self.depth - 1 or self.bias_last_layer
            conv = dict(kernel_size=self.kernel_sizes[i], stride=self.strides[i],
                        padding=self.paddings[i], bias=bias, device=device)
            layers.append(self._lazy_conv(c_out, **conv) if c_in is None
                          else self._conv(c_in, c_out, **conv))
            layers.append(_make(self.activation_class, device, **acts[i]))
            if self.norm_class is not None:
                layers.append(_make(self.norm_class, device, **norms[i]))
        if self.aggregator_class is not None:
            layers.append(_make(self.aggregator_class, device, **self.aggregator_kwargs))
        if self.squeeze_output:
            layers.append(SqueezeLayer(self._squeeze))
        return layers

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        name, n = type(self).__name__, len(self._dims)  # one sample: (C, H, W) or (C, D, H, W)
        if inputs.dim() < n:
            raise ValueError(f"{name}: input must have at least {n} dims "
                             f"({', '.join(self._dims)}), got shape {shape_str(inputs.shape)}.")
        if self.in_features is not None and inputs.shape[-n] != self.in_features:
            raise InvalidValueError(  # torchrl: RuntimeError
                f"{name}: input must have in_features={self.in_features} channels in dim {-n}, "
                f"got shape {shape_str(inputs.shape)}.")
        batch = inputs.shape[:-n]
        if len(batch) > 1:
            inputs = inputs.flatten(0, len(batch) - 1)
        out = nn.Sequential.forward(self, inputs)
        return out.unflatten(0, batch) if len(batch) > 1 else out


class ConvNet(_ConvStack):
    """A 2d convolutional network: ``(*B, C, H, W) -> (*B, features)``.

    ``Conv2d -> activation -> [norm]`` per layer (ELU by default), then ``SquashDims``.

    Built in chapter *Networks*.

    Args:
        in_features (int, optional): input channels; ``None`` makes the first conv lazy.
        depth (int, optional): number of conv layers; else the length of a list argument.
        num_cells (int or list of int): output channels per layer. Defaults to ``[32, 32, 32]``,
            or ``[32] * depth`` when ``depth`` is given.
        kernel_sizes, strides, paddings (int or list): per layer, or one for all.
            Default to 3, 1 and 0.
        activation_class, activation_kwargs, norm_class, norm_kwargs: as for ``MLP``;
            the activation defaults to ``nn.ELU`` and the norm follows the activation.
        bias_last_layer (bool): the last conv has a bias. Defaults to True.
        aggregator_class: applied at the end. Defaults to ``SquashDims`` (flatten C, H, W).
        aggregator_kwargs (dict, optional): its kwargs. Defaults to ``{"ndims_in": 3}``.
        squeeze_output (bool): squeeze the last two (singleton) dims. Defaults to False.
        device: where the parameters live.

    Examples:
        >>> net = ConvNet(in_features=3, num_cells=[8, 16], kernel_sizes=3, strides=[2, 1])
        >>> net(torch.zeros(5, 3, 16, 16)).shape
        torch.Size([5, 400])
    """

    _conv, _lazy_conv = nn.Conv2d, nn.LazyConv2d
    _squeeze, _dims = (-2, -1), ("C", "H", "W")

    @classmethod
    def default_atari_dqn(cls, num_actions: int) -> nn.Sequential:
        """The DQN of Mnih et al. (2015): three ReLU convs, then a 512-unit MLP."""
        cnn = ConvNet(activation_class=nn.ReLU, num_cells=[32, 64, 64], kernel_sizes=[8, 4, 3],
                      strides=[4, 2, 1])
        mlp = MLP(activation_class=nn.ReLU, out_features=num_actions, num_cells=[512])
        return nn.Sequential(cnn, mlp)


class Conv3dNet(_ConvStack):
    """A 3d convolutional network: ``(*B, C, D, H, W) -> (*B, features)``.

    Built in chapter *Networks*.

    Examples:
        >>> net = Conv3dNet(in_features=2, num_cells=[4], kernel_sizes=3)
        >>> net(torch.zeros(5, 2, 4, 6, 6)).shape
        torch.Size([5, 128])
    """

    _conv, _lazy_conv = nn.Conv3d, nn.LazyConv3d
    _squeeze, _dims = (-3, -2, -1), ("C", "D", "H", "W")


Conv2dNet = ConvNet


class BatchRenorm1d(nn.Module):
    """Batch renormalization (Ioffe, 2017): BatchNorm consistent with its running statistics.

    Reads ``(N, C)`` or ``(N, C, L)`` and writes the same shape. In training,
    ``y = (x - mu_B) / sigma_B * r + d`` with ``r = clip(sigma_B / sigma, 1/r_max, r_max)`` and
    ``d = clip((mu_B - mu) / sigma, -d_max, d_max)`` (no gradient through ``r``, ``d``). As in
    the paper, the clip bounds open during warm-up from ``r_max = 1, d_max = 0`` (plain
    BatchNorm) to ``max_r``, ``max_d``: in one step at ``warmup_steps``, or linearly when
    ``smooth``. torchrl instead multiplies ``r - 1`` and ``d`` by ``num_batches_tracked //
    warmup_steps``, which keeps growing (2, 3, ...) past the warm-up and breaks the bounds.

    Built in chapter *Networks*.

    Args:
        num_features (int): ``C``.

    Keyword Args:
        momentum (float): running-statistics update rate. Defaults to ``0.01``.
        eps (float): added to variances. Defaults to ``1e-5``.
        max_r (float): final bound on ``r``. Defaults to ``3.0``.
        max_d (float): final bound on ``d``. Defaults to ``5.0``.
        warmup_steps (int): training steps until the bounds are fully open. Defaults to ``10000``.
        smooth (bool): open them linearly instead of at once. Defaults to False.

    Examples:
        >>> norm = BatchRenorm1d(4, warmup_steps=2)
        >>> y = norm(torch.arange(12.0).view(3, 4))
        >>> y.shape, int(norm.num_batches_tracked), float(norm.warmup_factor())
        (torch.Size([3, 4]), 1, 0.0)
    """

    def __init__(self, num_features: int, *, momentum: float = 0.01, eps: float = 1e-5,
                 max_r: float = 3.0, max_d: float = 5.0, warmup_steps: int = 10000,
                 smooth: bool = False):
        super().__init__()
        checks = {"num_features": (num_features, num_features >= 1, "a positive int"),
                  "momentum": (momentum, 0 < momentum <= 1, "in (0, 1]"),
                  "max_r": (max_r, max_r >= 1, ">= 1"), "max_d": (max_d, max_d >= 0, ">= 0"),
                  "warmup_steps": (warmup_steps, warmup_steps >= 0, ">= 0")}
        for argument, (value, ok, expected) in checks.items():
            if not ok:
                raise InvalidValueError(  # torchrl fails at the first call (num_features)
                    f"BatchRenorm1d: {argument} must be {expected}, got {value}.")
        self.num_features, self.momentum, self.eps = num_features, momentum, eps
        self.max_r, self.max_d, self.warmup_steps, self.smooth = max_r, max_d, warmup_steps, smooth
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.int64))
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def warmup_factor(self) -> torch.Tensor:
        """How far the clip bounds are open: 0 (BatchNorm) to 1 (``max_r``, ``max_d``), no more."""
        if self.warmup_steps == 0:
            return torch.ones((), device=self.num_batches_tracked.device)
        progress = self.num_batches_tracked / self.warmup_steps
        return (progress if self.smooth else progress.floor()).clamp_max(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise InvalidValueError(  # torchrl: RuntimeError for a wrong C
                f"BatchRenorm1d: input must have shape (N, {self.num_features}) or "
                f"(N, {self.num_features}, L), got shape {shape_str(x.shape)}.")
        view = (1, -1) + (1,) * (x.dim() - 2)  # broadcast (C,) over (N, C, L...)
        running_std = (self.running_var + self.eps).sqrt()  # (C,)
        if not self.training:
            x = (x - self.running_mean.view(view)) / running_std.view(view)
            return x * self.weight.view(view) + self.bias.view(view)
        n = x.numel() // self.num_features  # values per feature
        if n < 2:
            raise ValueError(f"BatchRenorm1d: input must have more than one value per feature in "
                             f"training mode, got shape {shape_str(x.shape)}.")
        dims = [0, *range(2, x.dim())]
        mean, var = x.mean(dims), x.var(dims, unbiased=False)  # (C,)
        std = (var + self.eps).sqrt()
        f = self.warmup_factor()
        r_max, d_max = 1 + (self.max_r - 1) * f, self.max_d * f
        r = torch.clamp(std.detach() / running_std, 1 / r_max, r_max)
        d = torch.clamp((mean.detach() - self.running_mean) / running_std, -d_max, d_max)
        x = (x - mean.view(view)) / std.view(view) * r.view(view) + d.view(view)
        with torch.no_grad():
            self.running_mean += self.momentum * (mean - self.running_mean)
            self.running_var += self.momentum * (var * n / (n - 1) - self.running_var)
            self.num_batches_tracked += 1
        return x * self.weight.view(view) + self.bias.view(view)
