"""Tensor specs: what a tensor may look like and which values it may hold.

A spec has a ``shape`` (leading batch dims, then the event dims), a ``dtype``, a
``device`` and a domain. It can draw a random value (``rand``), build ``zero`` /
``one``, test membership (``is_in``), map any value of the right shape into the
domain (``project``) and turn raw environment output into a tensor (``encode``).
Built in chapter *TensorDict, specs and environments*; mirrors ``torchrl.data``'s
specs of torchrl 0.14.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase

from rlmods._checks import check_trailing_shape, shape_str


def _size(shape) -> torch.Size:
    if shape is None:
        return torch.Size([])
    if isinstance(shape, int):
        return torch.Size([shape])
    return torch.Size(shape)


@dataclass
class ContinuousBox:
    """The box ``[low, high]`` of a continuous spec (``spec.space``)."""

    low: torch.Tensor
    high: torch.Tensor


@dataclass
class CategoricalBox:
    """The ``n`` values ``0 .. n-1`` of a discrete spec (``spec.space``)."""

    n: int


class TensorSpec:
    """Base class of the specs: shape, dtype, device and the shared methods.

    A subclass implements ``rand``, ``is_in`` and ``_project`` on tensors of shape
    ``(*batch, *self.shape)``; ``_per_element`` names its tensors (bounds, masks)
    whose leading dims follow ``self.shape``, so that ``expand``, indexing and
    ``unsqueeze`` work for every spec in one place.
    """

    _per_element: tuple[str, ...] = ()
    _event_ndim = 0  # trailing dims that indexing must not touch (the one-hot dim)
    domain = "continuous"

    def __init__(self, shape, device=None, dtype=None):
        self.shape = _size(shape)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype if dtype is not None else torch.get_default_dtype()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def ndimension(self) -> int:
        return self.ndim

    def _full(self, shape) -> torch.Size:
        return torch.Size([*_size(shape), *self.shape])

    def zero(self, shape=None) -> torch.Tensor:
        """A zero-filled tensor of shape ``(*shape, *self.shape)`` (not always in the domain)."""
        return torch.zeros(self._full(shape), dtype=self.dtype, device=self.device)

    def one(self, shape=None) -> torch.Tensor:
        """A tensor of ones of shape ``(*shape, *self.shape)``."""
        return torch.ones(self._full(shape), dtype=self.dtype, device=self.device)

    zeros, ones = zero, one

    def sample(self, shape=None) -> torch.Tensor:
        return self.rand(shape)

    def contains(self, value) -> bool:
        return self.is_in(value)

    def _shape_matches(self, value) -> bool:
        return value.shape[value.ndim - self.ndim:] == self.shape and value.ndim >= self.ndim

    def project(self, value: torch.Tensor) -> torch.Tensor:
        """Map ``value`` into the domain; values already inside are returned unchanged.

        Projection is branch-free (no ``is_in`` test first), so it is the same code
        path for every input and friendly to ``torch.compile`` and CUDA graphs.
        """
        check_trailing_shape(value, self.shape, type(self).__name__, "the value to project")
        return self._project(value)

    def assert_is_in(self, value: torch.Tensor) -> None:
        if not self.is_in(value):
            raise AssertionError(f"{type(self).__name__}: value is not in the spec's domain "
                                 f"(shape {shape_str(value.shape)}, dtype {value.dtype}); "
                                 "call project(value) first.")

    def type_check(self, value: torch.Tensor, key=None) -> None:
        if value.dtype is not self.dtype:
            raise TypeError(f"{type(self).__name__}: value dtype must be {self.dtype}, "
                            f"got {value.dtype}.")

    def encode(self, value, ignore_device: bool = False) -> torch.Tensor:
        """Turn environment output (numbers, lists, numpy arrays) into a tensor of this spec."""
        if isinstance(value, np.ndarray) and value.dtype.kind not in "biuf":
            value = value.astype(np.float32)
        tensor = torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value,
                                 dtype=self.dtype, device=None if ignore_device else self.device)
        if tensor.shape != self.shape and tensor.numel() == self.shape.numel():
            tensor = tensor.reshape(self.shape)
        return tensor

    def _with_shape(self, shape, transform) -> "TensorSpec":
        """A copy of this spec with a new ``shape``, its per-element tensors ``transform``-ed."""
        new = copy.copy(self)
        new.shape = torch.Size(shape)
        for name in self._per_element:
            value = getattr(self, name)
            if value is not None:
                setattr(new, name, transform(value))
        return new

    def expand(self, *shape) -> "TensorSpec":
        """The spec with extra leading (batch) dims: ``shape`` must end with ``self.shape``."""
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        shape = torch.Size(
            [s if s != -1 else self.shape[i - len(shape) + self.ndim] for i, s in enumerate(shape)])
        if len(shape) < self.ndim or shape[len(shape) - self.ndim:] != self.shape:
            raise ValueError(f"{type(self).__name__}.expand: the new shape must end with the spec's "
                             f"shape {shape_str(self.shape)}, got {shape_str(shape)}.")
        return self._with_shape(shape, lambda t: t.expand(*shape, *t.shape[self.ndim:]))

    def unsqueeze(self, dim: int) -> "TensorSpec":
        dim = dim if dim >= 0 else dim + self.ndim + 1
        shape = list(self.shape)
        shape.insert(dim, 1)
        return self._with_shape(shape, lambda t: t.unsqueeze(dim))

    def squeeze(self, dim: int | None = None) -> "TensorSpec":
        dims = [d for d in range(self.ndim - self._event_ndim) if self.shape[d] == 1
                and (dim is None or d == dim % self.ndim)]
        shape = [s for d, s in enumerate(self.shape) if d not in dims]
        return self._with_shape(shape, lambda t: t.reshape(*shape, *t.shape[self.ndim:]))

    def __getitem__(self, index) -> "TensorSpec":
        """Index the batch dims, as one would index a tensor drawn from the spec."""
        batch = self.shape[:self.ndim - self._event_ndim]
        shape = torch.empty(batch, device="meta")[index].shape + self.shape[len(batch):]
        return self._with_shape(shape, lambda t: t[index])

    def to(self, dest) -> "TensorSpec":
        """The spec on another device, or with another dtype."""
        if isinstance(dest, torch.dtype):
            new = self._with_shape(self.shape, lambda t: t if t.dtype == torch.bool else t.to(dest))
            new.dtype = dest
            return new
        new = self._with_shape(self.shape, lambda t: t.to(dest))
        new.device = torch.device(dest)
        return new

    def cpu(self) -> "TensorSpec":
        return self.to("cpu")

    def clone(self) -> "TensorSpec":
        return self._with_shape(self.shape, lambda t: t.clone())

    def __eq__(self, other) -> bool:
        if type(self) is not type(other) or (self.shape, self.dtype, self.device) != (
                other.shape, other.dtype, other.device):
            return False
        for name in self._per_element + self._scalars():
            mine, theirs = getattr(self, name), getattr(other, name)
            if torch.is_tensor(mine) or torch.is_tensor(theirs):
                if not (torch.is_tensor(mine) and torch.is_tensor(theirs) and torch.equal(mine, theirs)):
                    return False
            elif mine != theirs:
                return False
        return True

    def _scalars(self) -> tuple[str, ...]:
        return ()

    def __repr__(self) -> str:
        fields = [f"shape={shape_str(self.shape)}"]
        fields += [f"{name}={getattr(self, name)}" for name in self._scalars()]
        for name in self._per_element:  # bounds and masks, when short enough to read
            value = getattr(self, name)
            if value is not None:
                fields.append(f"{name}={value.tolist() if value.numel() <= 8 else '...'}")
        return f"{type(self).__name__}({', '.join(fields)}, dtype={self.dtype}, device={self.device})"


class Unbounded(TensorSpec):
    """Any value of the given shape and dtype.

    Args:
        shape (int or sequence of int): the spec's shape. Defaults to ``(1,)``.
        device: where tensors of the spec live. Defaults to CPU.
        dtype: defaults to the default float dtype; an integer or bool dtype makes a
            discrete spec.

    Examples:
        >>> spec = Unbounded(3)
        >>> spec.rand((2,)).shape
        torch.Size([2, 3])
        >>> spec.is_in(torch.zeros(3)), spec.is_in(torch.zeros(3, dtype=torch.int64))
        (True, False)
    """

    def __init__(self, shape=torch.Size([1]), device=None, dtype=None, **kwargs):
        super().__init__(shape, device, dtype)
        self.domain = "continuous" if self.dtype.is_floating_point else "discrete"

    @property
    def space(self) -> ContinuousBox:
        info = torch.finfo(self.dtype) if self.dtype.is_floating_point else torch.iinfo(self.dtype)
        return ContinuousBox(torch.full(self.shape, info.min, dtype=self.dtype, device=self.device),
                             torch.full(self.shape, info.max, dtype=self.dtype, device=self.device))

    def rand(self, shape=None) -> torch.Tensor:
        """Standard normal draws (random integers in ``[-100, 100)`` for a discrete dtype)."""
        if self.dtype.is_floating_point:
            return torch.randn(self._full(shape), dtype=self.dtype, device=self.device)
        if self.dtype == torch.bool:
            return torch.randint(0, 2, self._full(shape), device=self.device).bool()
        return torch.randint(-100, 100, self._full(shape), dtype=self.dtype, device=self.device)

    def is_in(self, value: torch.Tensor) -> bool:
        return self._shape_matches(value) and value.dtype == self.dtype

    def _project(self, value: torch.Tensor) -> torch.Tensor:
        return value.to(self.dtype)

    def cardinality(self) -> float:
        return float("inf")


class Bounded(TensorSpec):
    """Values in the box ``[low, high]``, elementwise.

    Args:
        low, high (float or tensor): the bounds, broadcast to ``shape``.
        shape: the spec's shape; inferred from ``low``/``high`` when they are tensors.
        device: where tensors of the spec live.
        dtype: defaults to the default float dtype; an integer dtype makes a discrete
            spec whose values are the integers in ``[low, high]``.

    Examples:
        >>> spec = Bounded(-2.0, 2.0, shape=(1,))
        >>> spec.project(torch.tensor([[3.0], [-0.5]]))
        tensor([[ 2.0000],
                [-0.5000]])
        >>> bool(spec.is_in(spec.rand((100,))))
        True
    """

    _per_element = ("low", "high")

    def __init__(self, low=None, high=None, shape=None, device=None, dtype=None, **kwargs):
        low = kwargs.pop("minimum", low)
        high = kwargs.pop("maximum", high)
        if low is None or high is None:
            raise TypeError("Bounded: both low and high must be given, "
                            f"got low={low!r} and high={high!r}.")
        if kwargs:
            raise TypeError(f"Bounded: unexpected arguments {sorted(kwargs)}.")
        low, high = torch.as_tensor(low), torch.as_tensor(high)
        if shape is None:
            shape = torch.broadcast_shapes(low.shape, high.shape)
        super().__init__(shape, device, dtype)
        self.low = low.to(self.dtype).to(self.device).expand(self.shape).clone()
        self.high = high.to(self.dtype).to(self.device).expand(self.shape).clone()
        if (self.low > self.high).any():
            raise ValueError("Bounded: low must not exceed high, "
                             f"got low={self.low.tolist()} and high={self.high.tolist()}.")
        self.domain = "continuous" if self.dtype.is_floating_point else "discrete"

    @property
    def space(self) -> ContinuousBox:
        return ContinuousBox(self.low, self.high)

    def rand(self, shape=None) -> torch.Tensor:
        """Uniform draws inside the box (uniform integers for a discrete dtype)."""
        full = self._full(shape)
        if self.dtype.is_floating_point:
            sample = torch.zeros(full, dtype=self.dtype, device=self.device).uniform_()
            return torch.minimum(sample * (self.high - self.low) + self.low, self.high)
        span = (self.high - self.low).to(torch.float64) + 1
        offset = (torch.rand(full, dtype=torch.float64, device=self.device) * span).floor()
        return (self.low + offset.to(self.low.dtype)).clamp(max=self.high).to(self.dtype)

    def is_in(self, value: torch.Tensor) -> bool:
        return (self._shape_matches(value) and value.dtype == self.dtype
                and bool(((value >= self.low) & (value <= self.high)).all()))

    def _project(self, value: torch.Tensor) -> torch.Tensor:
        # Clamping is the L1 projection onto a box: each coordinate moves to its nearest bound.
        if not self.dtype.is_floating_point:
            value = value.round()
        return torch.clamp(value, self.low, self.high).to(self.dtype)

    def cardinality(self) -> float:
        if self.dtype.is_floating_point:
            return float("inf")
        return int((self.high - self.low + 1).prod())


def _sample_allowed(mask: torch.Tensor, shape) -> torch.Tensor:
    """Indices drawn uniformly among the True entries of ``mask`` (last dim), for each of ``shape``."""
    probs = mask.expand(*shape, mask.shape[-1]).reshape(-1, mask.shape[-1]).float()
    return torch.multinomial(probs, 1).reshape(shape)


def _masked_argmax(value: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """argmax over the last dim, never landing on a masked-out entry."""
    value = value.float()
    if mask is not None:
        value = value.masked_fill(~mask, float("-inf"))
    return value.argmax(-1)


class OneHot(TensorSpec):
    """One-hot vectors over ``n`` categories (``bool`` by default, as torchrl).

    Args:
        n (int): the number of categories; the spec's last dim.
        shape: the full shape, ending with ``n``. Defaults to ``(n,)``.
        device: where tensors of the spec live.
        dtype: defaults to ``torch.bool``.
        use_register (bool): accepted for torchrl compatibility; unused.
        mask (bool tensor, optional): the allowed categories, of shape ``shape``.

    Examples:
        >>> spec = OneHot(3)
        >>> spec.project(torch.tensor([0.2, 0.9, 0.1]))
        tensor([False,  True, False])
        >>> spec.to_categorical(torch.tensor([False, False, True]))
        tensor(2)
    """

    _per_element = ("mask",)
    _event_ndim = 1
    domain = "discrete"

    def __init__(self, n: int, shape=None, device=None, dtype=torch.bool, use_register=False,
                 mask=None):
        shape = _size(shape) if shape is not None else torch.Size([n])
        if not shape or shape[-1] != n:
            raise ValueError(f"{type(self).__name__}: shape must end with n={n}, "
                             f"got shape {shape_str(shape)}.")
        super().__init__(shape, device, dtype)
        self.n = n
        self.use_register = use_register
        self.mask = None
        if mask is not None:
            self.update_mask(mask)

    def _scalars(self):
        return ("n",)

    @property
    def space(self) -> CategoricalBox:
        return CategoricalBox(self.n)

    def _mask_layout(self):
        """The mask's shape, and the sizes of the groups its last dim splits into."""
        return self.shape, [self.n]

    def update_mask(self, mask: torch.Tensor | None) -> None:
        """Restrict ``rand``, ``is_in`` and ``project`` to the True entries of ``mask``.

        ``None`` removes the mask. Every group of the last dim (the ``n`` categories, or each
        of ``nvec``) must keep one allowed category, else ``rand`` has nothing to return.
        """
        if mask is not None:
            shape, groups = self._mask_layout()
            mask = torch.as_tensor(mask, dtype=torch.bool, device=self.device)
            check_trailing_shape(mask, shape[-1:], type(self).__name__, "mask")
            if not all(group.any(-1).all() for group in mask.split(groups, -1)):
                raise ValueError(f"{type(self).__name__}: mask must allow at least one category "
                                 "in every row, got a row of all False.")
            mask = mask.expand(shape)
        self.mask = mask

    def rand(self, shape=None) -> torch.Tensor:
        batch = (*_size(shape), *self.shape[:-1])
        if self.mask is None:
            index = torch.randint(self.n, batch, device=self.device)
        else:
            index = _sample_allowed(self.mask, batch)
        return self.to_one_hot(index)

    def is_in(self, value: torch.Tensor) -> bool:
        if not (self._shape_matches(value) and value.dtype == self.dtype):
            return False
        ones = value.to(torch.int64)
        valid = ((ones == 0) | (ones == 1)).all() and (ones.sum(-1) == 1).all()
        if self.mask is not None:
            valid = valid and not (value.bool() & ~self.mask).any()
        return bool(valid)

    def _project(self, value: torch.Tensor) -> torch.Tensor:
        # The nearest one-hot vector (in L1 and L2) sets the largest entry; torchrl 0.14
        # samples among the positive entries instead, which moves valid-looking inputs.
        return self.to_one_hot(_masked_argmax(value, self.mask))

    def encode(self, value, ignore_device: bool = False) -> torch.Tensor:
        """Category indices (a gymnasium ``Discrete`` action) to one-hot vectors."""
        index = torch.as_tensor(np.asarray(value), dtype=torch.int64)
        return self.to_one_hot(index.to(None if ignore_device else self.device))

    def to_one_hot(self, value: torch.Tensor, safe: bool | None = None) -> torch.Tensor:
        """Category indices to one-hot vectors of this spec's dtype."""
        return torch.nn.functional.one_hot(value.long(), self.n).to(self.dtype)

    def to_categorical(self, value: torch.Tensor, safe: bool | None = None) -> torch.Tensor:
        """One-hot vectors to category indices (``int64``)."""
        return value.to(torch.int64).argmax(-1)

    def to_categorical_spec(self) -> "Categorical":
        mask = self.mask
        return Categorical(self.n, self.shape[:-1], self.device, mask=mask)

    def to_one_hot_spec(self) -> "OneHot":
        return self

    def enumerate(self, use_mask: bool = False) -> torch.Tensor:
        values = torch.eye(self.n, dtype=self.dtype, device=self.device)
        if use_mask and self.mask is not None:
            values = values[self.mask.reshape(-1, self.n)[0]]
        return values.reshape(-1, *[1] * (self.ndim - 1), self.n).expand(-1, *self.shape).clone()

    def cardinality(self) -> int:
        return self.n


class Categorical(TensorSpec):
    """Integer category indices ``0 .. n-1``.

    Args:
        n (int): the number of categories.
        shape: the spec's shape. Defaults to ``()`` (one index).
        device: where tensors of the spec live.
        dtype: defaults to ``torch.int64``.
        mask (bool tensor, optional): the allowed categories, of shape ``(*shape, n)``.

    Examples:
        >>> spec = Categorical(4, mask=torch.tensor([True, False, True, False]))
        >>> bool(spec.is_in(torch.tensor(1)))
        False
        >>> spec.project(torch.tensor(1))  # the allowed category with the nearest index
        tensor(0)
    """

    _per_element = ("mask",)
    domain = "discrete"

    def __init__(self, n: int, shape=None, device=None, dtype=torch.int64, mask=None):
        super().__init__(shape, device, dtype)
        self.n = n
        self.mask = None
        if mask is not None:
            self.update_mask(mask)

    _scalars = OneHot._scalars
    space = OneHot.space
    update_mask = OneHot.update_mask

    def _mask_layout(self):
        return (*self.shape, self.n), [self.n]  # one boolean per category, after the index dims

    def rand(self, shape=None) -> torch.Tensor:
        full = self._full(shape)
        if self.mask is None:
            return torch.randint(self.n, full, device=self.device).to(self.dtype)
        return _sample_allowed(self.mask, full).to(self.dtype)

    def is_in(self, value: torch.Tensor) -> bool:
        if not (self._shape_matches(value) and value.dtype == self.dtype):
            return False
        if not bool(((value >= 0) & (value < self.n)).all()):
            return False
        if self.mask is None:
            return True
        return bool(self.mask.expand(*value.shape, self.n).gather(-1, value.long().unsqueeze(-1)).all())

    def _project(self, value: torch.Tensor) -> torch.Tensor:
        # Round, then clamp into range; with a mask, move to the nearest allowed index.
        # Unlike torchrl 0.14, the input is never modified in place.
        index = value.round().clamp(0, self.n - 1)
        if self.mask is not None:
            distance = (torch.arange(self.n, device=value.device) - index.unsqueeze(-1)).abs().float()
            index = _masked_argmax(-distance, self.mask)
        return index.to(self.dtype)

    def to_one_hot(self, value: torch.Tensor, safe: bool | None = None) -> torch.Tensor:
        return torch.nn.functional.one_hot(value.long(), self.n).bool()

    def to_categorical(self, value: torch.Tensor, safe: bool | None = None) -> torch.Tensor:
        return value

    def to_one_hot_spec(self) -> OneHot:
        mask = self.mask
        return OneHot(self.n, (*self.shape, self.n), self.device, mask=mask)

    def to_categorical_spec(self) -> "Categorical":
        return self

    def enumerate(self, use_mask: bool = False) -> torch.Tensor:
        values = torch.arange(self.n, dtype=self.dtype, device=self.device)
        if use_mask and self.mask is not None:
            values = values[self.mask.reshape(-1, self.n)[0]]
        return values.reshape(-1, *[1] * self.ndim).expand(-1, *self.shape).clone()

    def cardinality(self) -> int:
        return self.n


class Binary(Categorical):
    """Vectors of ``n`` independent bits (``int8`` by default).

    Examples:
        >>> spec = Binary(3)
        >>> spec.project(torch.tensor([0.2, 0.7, 3.0]))
        tensor([0, 1, 1], dtype=torch.int8)
    """

    _event_ndim = 1

    def __init__(self, n: int | None = None, shape=None, device=None, dtype=torch.int8):
        if n is None and shape is None:
            raise TypeError("Binary: give n or shape, got neither.")
        shape = _size(shape) if shape is not None else torch.Size([n])
        if n is not None and shape[-1] != n:
            raise ValueError(f"Binary: shape must end with n={n}, got shape {shape_str(shape)}.")
        super().__init__(2, shape, device, dtype)

    def update_mask(self, mask):
        if mask is not None:
            raise ValueError("Binary: takes no mask, got one.")

    def _project(self, value: torch.Tensor) -> torch.Tensor:
        return value.round().clamp(0, 1).to(self.dtype)

    def enumerate(self, use_mask: bool = False) -> torch.Tensor:
        bits = self.shape[-1]
        codes = torch.arange(2 ** bits, device=self.device).unsqueeze(-1)
        values = ((codes >> torch.arange(bits - 1, -1, -1, device=self.device)) & 1).to(self.dtype)
        return values.reshape(-1, *[1] * (self.ndim - 1), bits).expand(-1, *self.shape).clone()

    def cardinality(self) -> int:
        return 2 ** self.shape[-1]


class MultiOneHot(OneHot):
    """Several one-hot vectors side by side, of sizes ``nvec``, concatenated.

    Examples:
        >>> spec = MultiOneHot([2, 3])
        >>> spec.project(torch.tensor([0.1, 0.5, 0.0, 2.0, 1.0]))
        tensor([False,  True, False,  True, False])
    """

    def __init__(self, nvec: Sequence[int], shape=None, device=None, dtype=torch.bool,
                 use_register=False, mask=None):
        self.nvec = [int(n) for n in nvec]
        total = sum(self.nvec)
        super().__init__(total, shape, device, dtype, use_register, mask)

    def _scalars(self):
        return ("nvec",)

    @property
    def space(self) -> list[CategoricalBox]:
        return [CategoricalBox(n) for n in self.nvec]

    def _split(self, value: torch.Tensor):
        return value.split(self.nvec, dim=-1)

    def _parts(self) -> list[OneHot]:
        masks = self._split(self.mask) if self.mask is not None else [None] * len(self.nvec)
        return [OneHot(n, (*self.shape[:-1], n), self.device, self.dtype, mask=m)
                for n, m in zip(self.nvec, masks)]

    def _mask_layout(self):
        return self.shape, self.nvec

    def rand(self, shape=None) -> torch.Tensor:
        return torch.cat([part.rand(shape) for part in self._parts()], -1)

    def is_in(self, value: torch.Tensor) -> bool:
        if not (self._shape_matches(value) and value.dtype == self.dtype):
            return False
        return all(part.is_in(v) for part, v in zip(self._parts(), self._split(value)))

    def _project(self, value: torch.Tensor) -> torch.Tensor:
        return torch.cat([part._project(v) for part, v in zip(self._parts(), self._split(value))], -1)

    def encode(self, value, ignore_device: bool = False) -> torch.Tensor:
        """Per-group category indices (a gymnasium ``MultiDiscrete`` action) to one-hot."""
        index = torch.as_tensor(np.asarray(value), dtype=torch.int64, device=self.device)
        return self.to_one_hot(index)

    def to_one_hot(self, value: torch.Tensor, safe: bool | None = None) -> torch.Tensor:
        return torch.cat([torch.nn.functional.one_hot(v.long(), n).to(self.dtype)
                          for v, n in zip(value.unbind(-1), self.nvec)], -1)

    def to_categorical(self, value: torch.Tensor, safe: bool | None = None) -> torch.Tensor:
        return torch.stack([v.to(torch.int64).argmax(-1) for v in self._split(value)], -1)

    def to_categorical_spec(self) -> "MultiCategorical":
        mask = self.mask
        return MultiCategorical(self.nvec, (*self.shape[:-1], len(self.nvec)), self.device, mask=mask)

    def cardinality(self) -> int:
        return int(np.prod(self.nvec))


class MultiCategorical(Categorical):
    """Several category indices side by side, the ``i``-th in ``0 .. nvec[i]-1``.

    Examples:
        >>> spec = MultiCategorical([2, 3])
        >>> spec.project(torch.tensor([5, -1]))
        tensor([1, 0])
    """

    _event_ndim = 1

    def __init__(self, nvec, shape=None, device=None, dtype=torch.int64, mask=None,
                 remove_singleton=True):
        self.nvec = [int(n) for n in torch.as_tensor(nvec).reshape(-1).tolist()]
        shape = _size(shape) if shape is not None else torch.Size([len(self.nvec)])
        if shape[-1] != len(self.nvec):
            raise ValueError(f"MultiCategorical: shape must end with len(nvec)={len(self.nvec)}, "
                             f"got shape {shape_str(shape)}.")
        self.remove_singleton = remove_singleton
        TensorSpec.__init__(self, shape, device, dtype)
        self.n = max(self.nvec)
        self.mask = None
        if mask is not None:
            self.update_mask(mask)

    def _scalars(self):
        return ("nvec",)

    space = MultiOneHot.space

    def _parts(self) -> list[Categorical]:
        masks = (self.mask.split(self.nvec, -1) if self.mask is not None else [None] * len(self.nvec))
        return [Categorical(n, self.shape[:-1], self.device, self.dtype, mask=m)
                for n, m in zip(self.nvec, masks)]

    def _mask_layout(self):
        # One boolean vector per group, concatenated: shape (*shape[:-1], sum(nvec)).
        return (*self.shape[:-1], sum(self.nvec)), self.nvec

    def rand(self, shape=None) -> torch.Tensor:
        return torch.stack([part.rand(shape) for part in self._parts()], -1)

    def is_in(self, value: torch.Tensor) -> bool:
        if not (self._shape_matches(value) and value.dtype == self.dtype):
            return False
        return all(part.is_in(v) for part, v in zip(self._parts(), value.unbind(-1)))

    def _project(self, value: torch.Tensor) -> torch.Tensor:
        return torch.stack([part._project(v) for part, v in zip(self._parts(), value.unbind(-1))], -1)

    def _with_shape(self, shape, transform):
        # The mask's last dim is sum(nvec), not part of the spec's shape: index its batch dims only.
        new = copy.copy(self)
        new.shape = torch.Size(shape)
        if self.mask is not None:
            rows = self.mask.unsqueeze(-2).expand(*self.shape, self.mask.shape[-1])
            new.mask = transform(rows)[..., 0, :]
        return new

    def to_one_hot(self, value: torch.Tensor, safe: bool | None = None) -> torch.Tensor:
        return torch.cat([torch.nn.functional.one_hot(v.long(), n).bool()
                          for v, n in zip(value.unbind(-1), self.nvec)], -1)

    def to_one_hot_spec(self) -> MultiOneHot:
        mask = self.mask
        return MultiOneHot(self.nvec, (*self.shape[:-1], sum(self.nvec)), self.device, mask=mask)

    def cardinality(self) -> int:
        return int(np.prod(self.nvec))


def _nested(key) -> tuple[str, ...]:
    return (key,) if isinstance(key, str) else tuple(key)


class Composite(TensorSpec):
    """A dictionary of specs, possibly nested, sharing leading batch dims ``shape``.

    Values of a Composite are TensorDicts: ``rand``, ``zero``, ``one`` build one,
    ``is_in`` and ``project`` take one. Keys may be nested: ``spec["next", "reward"]``.

    Args:
        *args: an optional dict of specs.
        shape: the batch dims every entry shares. Defaults to ``()``.
        device: the device of the entries, or None.
        data_cls, step_mdp_static, names: accepted for torchrl compatibility; unused.
        **kwargs: the entries.

    Examples:
        >>> spec = Composite(observation=Unbounded(3), action=Bounded(-1.0, 1.0, (1,)))
        >>> td = spec.zero()
        >>> sorted(td.keys()), td["observation"].shape
        (['action', 'observation'], torch.Size([3]))
        >>> spec["action"].high
        tensor([1.])
    """

    def __init__(self, *args, shape=None, device=None, data_cls=None, step_mdp_static=False,
                 names=None, **kwargs):
        self.shape = _size(shape)
        self.device = torch.device(device) if device is not None else None
        self.dtype = None
        self._specs: dict[str, TensorSpec | None] = {}
        for entries in (*args, kwargs):
            for key, spec in dict(entries).items():
                self[key] = spec

    domain = "composite"

    def __setitem__(self, key, spec) -> None:
        if not isinstance(key, (str, tuple)):
            raise TypeError(f"Composite: keys must be strings or tuples of strings, got {key!r}.")
        key = _nested(key)
        if len(key) > 1:
            if key[0] not in self._specs:
                self._specs[key[0]] = Composite(shape=self.shape, device=self.device)
            self._specs[key[0]][key[1:]] = spec
            return
        if isinstance(spec, dict):
            spec = Composite(spec, shape=self.shape, device=self.device)
        if spec is not None and spec.shape[:self.ndim] != self.shape:
            raise ValueError(f"Composite: the spec for {key[0]!r} must have leading dims "
                             f"{shape_str(self.shape)} (the Composite's shape), "
                             f"got shape {shape_str(spec.shape)}.")
        self._specs[key[0]] = spec

    def __getitem__(self, key):
        if isinstance(key, str) or (isinstance(key, tuple) and key and all(isinstance(k, str) for k in key)):
            key = _nested(key)
            if key[0] not in self._specs:
                raise KeyError(f"Composite: no entry {key[0]!r}; the entries are {list(self._specs)}.")
            spec = self._specs[key[0]]
            return spec if len(key) == 1 else spec[key[1:]]
        return self._with_shape(torch.empty(self.shape, device="meta")[key].shape,
                                lambda spec: spec[key])

    def __delitem__(self, key) -> None:
        key = _nested(key)
        if len(key) == 1:
            del self._specs[key[0]]
        else:
            del self._specs[key[0]][key[1:]]

    def __contains__(self, key) -> bool:
        key = _nested(key)
        if key[0] not in self._specs:
            return False
        return len(key) == 1 or (isinstance(self._specs[key[0]], Composite) and key[1:] in self._specs[key[0]])

    def get(self, key, default=None):
        return self[key] if key in self else default

    def set(self, key, spec) -> "Composite":
        self[key] = spec
        return self

    def update(self, other) -> "Composite":
        """Add ``other``'s entries (a Composite or a dict), merging nested Composites.

        An entry that is a Composite here and a Composite (or dict) in ``other`` is updated
        in turn, so entries that only this spec holds survive; any other entry is replaced.

        Examples:
            >>> spec = Composite(obs=Composite(x=Unbounded(1)))
            >>> spec.update(Composite(obs=Composite(y=Unbounded(2)))).keys(True, True)
            [('obs', 'x'), ('obs', 'y')]
        """
        for key, spec in (other.items() if isinstance(other, Composite) else dict(other).items()):
            mine = self.get(key)
            if isinstance(mine, Composite) and isinstance(spec, (Composite, dict)):
                mine.update(spec)
            else:
                self[key] = spec
        return self

    def keys(self, include_nested: bool = False, leaves_only: bool = False, *, is_leaf=None):
        """The entry names; nested ones as tuples when ``include_nested``."""
        out = []
        for key, spec in self._specs.items():
            composite = isinstance(spec, Composite)
            if not (leaves_only and composite):
                out.append(key)
            if include_nested and composite:
                out += [(key, *_nested(sub)) for sub in spec.keys(True, leaves_only)]
        return out

    def items(self, include_nested: bool = False, leaves_only: bool = False, *, is_leaf=None):
        return [(key, self[key]) for key in self.keys(include_nested, leaves_only)]

    def values(self, include_nested: bool = False, leaves_only: bool = False, *, is_leaf=None):
        return [self[key] for key in self.keys(include_nested, leaves_only)]

    def __iter__(self):
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def _build(self, method: str, shape) -> TensorDict:
        shape = _size(shape)
        return TensorDict({key: getattr(spec, method)(shape) for key, spec in self._specs.items()
                           if spec is not None}, batch_size=(*shape, *self.shape), device=self.device)

    def rand(self, shape=None) -> TensorDict:
        return self._build("rand", shape)

    def zero(self, shape=None) -> TensorDict:
        return self._build("zero", shape)

    def one(self, shape=None) -> TensorDict:
        return self._build("one", shape)

    zeros, ones = zero, one

    def is_in(self, value: TensorDictBase) -> bool:
        for key, spec in self._specs.items():
            if spec is None:
                continue
            entry = value.get(key, None)
            if entry is None or not spec.is_in(entry):
                return False
        return True

    def project(self, value: TensorDictBase) -> TensorDictBase:
        """Project every entry that ``value`` holds into its spec (in place, returned)."""
        for key, spec in self._specs.items():
            entry = value.get(key, None)
            if spec is not None and entry is not None:
                value.set(key, spec.project(entry))
        return value

    def encode(self, value: dict, ignore_device: bool = False) -> TensorDict:
        return TensorDict({key: self._specs[key].encode(v, ignore_device) for key, v in value.items()},
                          batch_size=self.shape, device=self.device)

    def _with_shape(self, shape, transform) -> "Composite":
        new = Composite(shape=shape, device=self.device)
        new._specs = {key: None if spec is None else transform(spec) for key, spec in self._specs.items()}
        return new

    def expand(self, *shape) -> "Composite":
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        shape = torch.Size(shape)
        if shape[len(shape) - self.ndim:] != self.shape:
            raise ValueError(f"Composite.expand: the new shape must end with the spec's shape "
                             f"{shape_str(self.shape)}, got {shape_str(shape)}.")
        extra = shape[:len(shape) - self.ndim]
        return self._with_shape(shape, lambda spec: spec.expand(*extra, *spec.shape))

    def unsqueeze(self, dim: int) -> "Composite":
        dim = dim if dim >= 0 else dim + self.ndim + 1
        shape = list(self.shape)
        shape.insert(dim, 1)
        return self._with_shape(shape, lambda spec: spec.unsqueeze(dim))

    def squeeze(self, dim: int | None = None) -> "Composite":
        dims = [d for d in range(self.ndim) if self.shape[d] == 1 and (dim is None or d == dim % self.ndim)]
        shape = [s for d, s in enumerate(self.shape) if d not in dims]
        spec = self
        for d in reversed(dims):
            spec = spec._with_shape(shape, lambda s, d=d: s.squeeze(d))
        return spec

    def to(self, dest) -> "Composite":
        new = self._with_shape(self.shape, lambda spec: spec.to(dest))
        if not isinstance(dest, torch.dtype):
            new.device = torch.device(dest)
        return new

    def clone(self) -> "Composite":
        return self._with_shape(self.shape, lambda spec: spec.clone())

    def empty(self) -> "Composite":
        """A Composite of the same shape and device with no entries."""
        return Composite(shape=self.shape, device=self.device)

    def __eq__(self, other) -> bool:
        return (isinstance(other, Composite) and self.shape == other.shape
                and self._specs.keys() == other._specs.keys()
                and all(spec == other._specs[key] for key, spec in self._specs.items()))

    def cardinality(self) -> int:
        return int(np.prod([spec.cardinality() for spec in self._specs.values() if spec is not None]))

    def __repr__(self) -> str:
        inner = "".join(f"\n    {key}: " + repr(spec).replace("\n", "\n    ")
                        for key, spec in self._specs.items())
        return f"Composite({inner},\n    shape={shape_str(self.shape)})"
