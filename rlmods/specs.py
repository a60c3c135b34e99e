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
from torch.nn import functional as nn_functional
from tensordict import LazyStackedTensorDict, TensorDict, TensorDictBase, unravel_key

from rlmods._checks import InvalidTypeError, InvalidValueError, shape_str, validate_args

RESERVED_KEYS = ("shape", "device", "dtype", "space")  # Composite attributes, not entry names


def _size(shape) -> torch.Size:
    if shape is None:
        return torch.Size([])
    if isinstance(shape, int):
        return torch.Size([shape])
    return torch.Size(shape)


def _concrete(shape) -> torch.Size:
    """``shape`` with its dynamic (``-1``) dims set to 1: the shape of a drawn value."""
    return torch.Size([1 if s == -1 else s for s in shape])


def _as_index(index):
    """Lists in an index become tensors: numpy's rule, not torch's deprecated list-of-lists."""
    if isinstance(index, tuple):
        return tuple(torch.tensor(i) if isinstance(i, list) else i for i in index)
    return torch.tensor(index) if isinstance(index, list) else index


def _indexed_shape(shape, index) -> torch.Size:
    """The shape of ``tensor[index]`` for a tensor of ``shape``; out-of-range indices raise."""
    return torch.zeros(()).expand(_concrete(shape))[index].shape  # expand: no memory used


def _check_trailing(value: torch.Tensor, shape, owner: str, what: str) -> None:
    """Raise InvalidValueError (torchrl: RuntimeError) unless ``value`` ends with ``shape``."""
    shape = tuple(shape)
    if value.ndim < len(shape) or tuple(value.shape[value.ndim - len(shape):]) != shape:
        raise InvalidValueError(f"{owner}: {what} must end with shape {shape_str(shape)}, "
                                f"got shape {shape_str(value.shape)}.")


def _expanded_shape(spec, shape) -> torch.Size:
    """The target of ``spec.expand(*shape)``, checked as ``Tensor.expand`` checks it."""
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = tuple(shape[0])
    lead = len(shape) - spec.ndim
    new = [s if s != -1 or i < lead else spec.shape[i - lead] for i, s in enumerate(shape)]
    if lead < 0 or any(old not in (1, -1, s) for old, s in zip(spec.shape, new[lead:])):
        raise ValueError(f"{type(spec).__name__}.expand: the new shape must end with the "
                         f"spec's shape {shape_str(spec.shape)} (up to its 1s), "
                         f"got {shape_str(new)}.")
    return torch.Size(new)


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
        return torch.Size([*_size(shape), *_concrete(self.shape)])

    def zero(self, shape=None) -> torch.Tensor:
        """Zeros of shape ``(*shape, *self.shape)`` (not always in the domain)."""
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
        """Whether ``value`` ends with this shape (a dynamic ``-1`` dim matches any size)."""
        if value.ndim < self.ndim:
            return False
        tail = value.shape[value.ndim - self.ndim:]
        return tail == self.shape or all(s in (-1, v) for s, v in zip(self.shape, tail))

    def project(self, value: torch.Tensor) -> torch.Tensor:
        """Map ``value`` into the domain; values already inside are returned unchanged.

        Projection is branch-free (no ``is_in`` test first), so it is the same code
        path for every input and friendly to ``torch.compile`` and CUDA graphs.
        """
        _check_trailing(value, self.shape, type(self).__name__, "the value to project")
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
        """Turn environment output (numbers, lists, numpy arrays) into a tensor of this spec.

        The value must end with the spec's shape, or hold as many numbers (it is then
        reshaped); any other shape is an error (torchrl 0.14 passes a tensor of any shape).

        Examples:
            >>> Unbounded((2, 2)).encode([1.0, 2.0, 3.0, 4.0])
            tensor([[1., 2.],
                    [3., 4.]])
        """
        device = None if ignore_device else self.device
        if type(value) is np.ndarray and value.shape == self.shape and value.dtype.kind in "biuf":
            # The common case, a gymnasium array as it comes: from_numpy shares its memory as
            # as_tensor does, at a third of the cost, and its shape needs no check.
            tensor = torch.from_numpy(value)
            if tensor.dtype == self.dtype:
                return tensor if device is None else tensor.to(device)
        if isinstance(value, np.ndarray) and value.dtype.kind not in "biuf":
            value = value.astype(np.float32)
        tensor = torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value,
                                 dtype=self.dtype, device=device)
        return self._check_encoded(tensor, reshape=True)

    def _check_encoded(self, tensor: torch.Tensor, reshape: bool = False) -> torch.Tensor:
        """``tensor`` checked against the spec's shape (reshaped, when ``reshape`` and it holds
        as many numbers); under ``memoize_encode`` the outcome is kept per shape."""
        key = (tensor.shape, self.shape)
        shape = self._encode_memo.get(key) if self._encode_memo is not None else None
        if shape is None:
            shape = tensor.shape
            if not self._shape_matches(tensor):
                if not (reshape and tensor.numel() == _concrete(self.shape).numel()):
                    raise InvalidValueError(
                        f"{type(self).__name__}.encode: the value must end with shape "
                        f"{shape_str(self.shape)}, got shape {shape_str(tensor.shape)}.")
                shape = _concrete(self.shape)
            if self._encode_memo is not None:
                self._encode_memo[key] = shape
        return tensor.reshape(shape)

    _encode_memo: dict | None = None

    def memoize_encode(self, mode: bool = True) -> None:
        """Let ``encode`` remember, per input shape, the outcome of its shape check.

        For an environment whose outputs always have the same shape, the check then runs
        once; ``memoize_encode(False)`` turns this off and ``erase_memoize_cache()`` forgets.
        The tensors are the same either way (torchrl's version caches its conversion steps,
        assumes every input is of the first input's type, and warns that it is experimental).

        Examples:
            >>> spec = Unbounded(2)
            >>> spec.memoize_encode()
            >>> spec.encode([1.0, 2.0]), len(spec._encode_memo)
            (tensor([1., 2.]), 1)
        """
        self._encode_memo = {} if mode else None

    def erase_memoize_cache(self) -> None:
        """Forget what ``memoize_encode`` remembered."""
        if self._encode_memo is not None:
            self._encode_memo.clear()

    def to_numpy(self, value: torch.Tensor, safe: bool | None = None) -> np.ndarray:
        """The numpy array an environment takes for ``value``: the inverse of ``encode``.

        ``safe=True`` first checks that ``value`` is in the spec (``assert_is_in``); by
        default it is not checked, as in torchrl.

        Examples:
            >>> Bounded(0.0, 1.0, (2,)).to_numpy(torch.tensor([0.5, 0.25]))
            array([0.5 , 0.25], dtype=float32)
        """
        if safe:
            self.assert_is_in(value)
        return value.detach().cpu().numpy()

    def clear_device_(self) -> "TensorSpec":
        """Forget the device (a no-op for a leaf spec, which always has one; see Composite)."""
        return self

    def _with_shape(self, shape, transform) -> "TensorSpec":
        """A copy with a new ``shape``, its per-element tensors ``transform``-ed."""
        new = copy.copy(self)
        new.shape = torch.Size(shape)
        for name in self._per_element:
            value = getattr(self, name)
            if value is not None:
                setattr(new, name, transform(value))
        return new

    def expand(self, *shape) -> "TensorSpec":
        """The spec with extra leading (batch) dims, or its size-1 dims repeated.

        As ``Tensor.expand``: ``shape`` ends with ``self.shape`` up to its 1s (``-1``: keep).
        """
        shape = _expanded_shape(self, shape)
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
        index = _as_index(index)
        batch = self.shape[:self.ndim - self._event_ndim]
        shape = _indexed_shape(batch, index) + self.shape[len(batch):]
        return self._with_shape(shape, lambda t: t[index])

    def unbind(self, dim: int = 0) -> tuple:
        """The specs of ``value.unbind(dim)`` for a value of this spec (a batch dim).

        Examples:
            >>> spec = Bounded(0.0, torch.tensor([1.0, 2.0]))
            >>> [part.high.tolist() for part in spec.unbind(0)]
            [1.0, 2.0]
        """
        batch = self.ndim - self._event_ndim
        if not -self.ndim <= dim < self.ndim or dim % self.ndim >= batch:
            raise IndexError(f"{type(self).__name__}.unbind: dim must be a batch dim, in "
                             f"[{-self.ndim}, {batch}), got {dim}.")
        dim %= self.ndim
        return tuple(self[(slice(None),) * dim + (i,)] for i in range(self.shape[dim]))

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """``torch.stack``, ``torch.index_select`` and ``torch.unbind`` take specs too."""
        if func not in _TORCH_FUNCTIONS or not all(issubclass(t, TensorSpec) for t in types):
            return NotImplemented
        return _TORCH_FUNCTIONS[func](*args, **(kwargs or {}))

    def to(self, dest) -> "TensorSpec":
        """The spec on another device, or with another dtype (``None``: the spec itself)."""
        if dest is None:
            return self
        if isinstance(dest, torch.dtype):
            new = self._with_shape(self.shape, lambda t: t if t.dtype == torch.bool
                                   else t.to(dest))  # masks stay bool
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
                both = torch.is_tensor(mine) and torch.is_tensor(theirs)
                if not (both and torch.equal(mine, theirs)):
                    return False
            elif mine != theirs:
                return False
        return True

    def _scalars(self) -> tuple[str, ...]:
        return ()

    def _stack_names(self) -> tuple[str, ...]:
        """The per-element tensors (bounds, masks) that ``torch.stack`` stacks, repr shows."""
        return self._per_element

    def __repr__(self) -> str:
        fields = [f"shape={shape_str(self.shape)}"]
        fields += [f"{name}={getattr(self, name)}" for name in self._scalars()]
        for name in self._stack_names():  # bounds and masks, when short enough to read
            value = None if name.startswith("_") else getattr(self, name)
            if value is not None:
                fields.append(f"{name}={value.tolist() if value.numel() <= 8 else '...'}")
        fields += [f"dtype={self.dtype}", f"device={self.device}"]
        return f"{type(self).__name__}({', '.join(fields)})"


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
        info = (torch.finfo if self.dtype.is_floating_point else torch.iinfo)(self.dtype)
        low, high = (torch.full(self.shape, bound, dtype=self.dtype, device=self.device)
                     for bound in (info.min, info.max))
        return ContinuousBox(low, high)

    def rand(self, shape=None) -> torch.Tensor:
        """Standard normal draws (random integers in ``[-100, 100)`` for a discrete dtype)."""
        if self.dtype.is_floating_point:
            return torch.randn(self._full(shape), dtype=self.dtype, device=self.device)
        if self.dtype == torch.bool:
            return torch.randint(0, 2, self._full(shape), device=self.device).bool()
        full = self._full(shape)
        return torch.randint(-100, 100, full, dtype=self.dtype, device=self.device)

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
        self.space = ContinuousBox(low, high)
        self.domain = "continuous" if self.dtype.is_floating_point else "discrete"

    @property
    def space(self) -> ContinuousBox:
        """The box ``[low, high]``; setting it replaces both bounds (broadcast to ``shape``).

        Examples:
            >>> spec = Bounded(0.0, 1.0, (2,))
            >>> spec.space = ContinuousBox(torch.tensor(-1.0), torch.tensor([2.0, 3.0]))
            >>> spec.low, spec.high
            (tensor([-1., -1.]), tensor([2., 3.]))
        """
        return ContinuousBox(self.low, self.high)

    @space.setter
    def space(self, box: ContinuousBox) -> None:
        low, high = (torch.as_tensor(bound).to(self.device, self.dtype)
                     .expand(_concrete(self.shape)).clone() for bound in (box.low, box.high))
        if (low > high).any():
            raise ValueError("Bounded: low must not exceed high, "
                             f"got low={low.tolist()} and high={high.tolist()}.")
        self.low, self.high = low, high

    def rand(self, shape=None) -> torch.Tensor:
        """Uniform draws inside the box (uniform integers for a discrete dtype)."""
        full = self._full(shape)
        if self.dtype.is_floating_point:
            sample = torch.zeros(full, dtype=self.dtype, device=self.device).uniform_()
            return torch.minimum(sample * (self.high - self.low) + self.low, self.high)
        low, high = self.low.long(), self.high.long()  # bool and small ints count in int64
        span = (high - low).to(torch.float64) + 1
        offset = (torch.rand(full, dtype=torch.float64, device=self.device) * span).floor()
        return (low + offset.long()).clamp(max=high).to(self.dtype)

    def is_in(self, value: torch.Tensor) -> bool:
        if not (self._shape_matches(value) and value.dtype == self.dtype):
            return False
        if value.dtype == torch.bool:  # clamp has no bool kernel
            return bool(((value >= self.low) & (value <= self.high)).all())
        # Inside the box exactly when clamping changes nothing (NaN is outside: NaN != NaN):
        # one kernel and a comparison, where two comparisons, an and and an all cost 4 µs.
        return torch.equal(torch.clamp(value, self.low, self.high), value)

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
    """``shape`` indices, each uniform among the True entries of ``mask``'s last dim."""
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
        """The ``n`` categories; setting it changes ``n`` (a Categorical without a mask only).

        Examples:
            >>> spec = Categorical(3)
            >>> spec.space = CategoricalBox(5)
            >>> spec.n, spec.cardinality()
            (5, 5)
        """
        return CategoricalBox(self.n)

    @space.setter
    def space(self, box: CategoricalBox) -> None:
        # A one-hot spec's n is its last dim, and a mask has n entries: both pin n.
        if box.n != self.n and (self.mask is not None or self._event_ndim):
            raise ValueError(f"{type(self).__name__}: space.n can change only for a "
                             f"Categorical without a mask, got n={box.n} for n={self.n}.")
        self.n = int(box.n)

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
            _check_trailing(mask, shape[-1:], type(self).__name__, "mask")
            # Reads the mask's values (a GPU sync): behind the validation switch, and not in a
            # compiled graph. torchrl fails later, inside torch.multinomial, with a RuntimeError.
            check = validate_args() and not torch.compiler.is_compiling()
            if check and not all(g.any(-1).all() for g in mask.split(groups, -1)):
                raise InvalidValueError(f"{type(self).__name__}: mask must allow at least one "
                                        "category in every row, got a row of all False.")
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
        if value.numel() == 0:
            return True
        # Every entry 0 or 1, and each vector sums to 1. At batch 1 each torch op costs about
        # a microsecond whatever its size, so: two min-max reductions, then four numbers read.
        sums_low, sums_high = value.sum(-1).aminmax()
        if sums_low.item() != 1 or sums_high.item() != 1:
            return False
        if value.dtype != torch.bool:
            low, high = value.aminmax()
            if low.item() < 0 or high.item() > 1:
                return False
        return self.mask is None or not bool((value.bool() & ~self.mask).any())

    def _project(self, value: torch.Tensor) -> torch.Tensor:
        # The nearest one-hot vector (in L1 and L2) sets the largest entry; torchrl 0.14
        # samples among the positive entries instead, which moves valid-looking inputs.
        return self.to_one_hot(_masked_argmax(value, self.mask))

    def encode(self, value, ignore_device: bool = False) -> torch.Tensor:
        """Category indices (a gymnasium ``Discrete`` action) to one-hot vectors."""
        index = torch.as_tensor(np.asarray(value), dtype=torch.int64)
        index = index.to(None if ignore_device else self.device)
        return self._check_encoded(self.to_one_hot(index))

    def to_numpy(self, value: torch.Tensor, safe: bool | None = None) -> np.ndarray:
        """The category indices of one-hot ``value``, what a gymnasium ``Discrete`` takes."""
        if safe:
            self.assert_is_in(value)
        return self.to_categorical(value).detach().cpu().numpy()

    def to_one_hot(self, value: torch.Tensor, safe: bool | None = None) -> torch.Tensor:
        """Category indices to one-hot vectors of this spec's dtype."""
        # one_hot takes and returns int64: a cast on either side only where it changes something
        index = value if value.dtype == torch.int64 else value.long()
        one_hot = torch.nn.functional.one_hot(index, self.n)
        return one_hot if self.dtype == torch.int64 else one_hot.to(self.dtype)

    def to_categorical(self, value: torch.Tensor, safe: bool | None = None) -> torch.Tensor:
        """One-hot vectors to category indices (``int64``)."""
        return (value.to(torch.int64) if value.dtype == torch.bool else value).argmax(-1)

    def to_categorical_spec(self) -> "Categorical":
        mask = self.mask
        return Categorical(self.n, self.shape[:-1], self.device, mask=mask)

    def to_one_hot_spec(self) -> "OneHot":
        return self

    def enumerate(self, use_mask: bool = False) -> torch.Tensor:
        values = torch.eye(self.n, dtype=self.dtype, device=self.device)
        if use_mask and self.mask is not None:
            values = values[self.mask.reshape(-1, self.n)[0]]
        values = values.reshape(-1, *[1] * (self.ndim - 1), self.n)
        return values.expand(-1, *self.shape).clone()

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
        return (*self.shape, self.n), [self.n]  # a boolean per category, after the index dims

    @property
    def _allowed(self) -> torch.Tensor | None:
        """Which of the ``n`` indices each element may take, ``(*shape, n)``; None: all."""
        return self.mask

    def rand(self, shape=None) -> torch.Tensor:
        full = self._full(shape)
        if self._allowed is None:
            return torch.randint(self.n, full, device=self.device).to(self.dtype)
        return _sample_allowed(self._allowed, full).to(self.dtype)

    def is_in(self, value: torch.Tensor) -> bool:
        if not (self._shape_matches(value) and value.dtype == self.dtype):
            return False
        if value.numel() == 0:
            return True
        low, high = value.aminmax()  # one reduction, two numbers read
        if low.item() < 0 or high.item() >= self.n:
            return False
        if self._allowed is None:
            return True
        allowed = self._allowed.expand(*value.shape, self.n)
        return bool(allowed.gather(-1, value.long().unsqueeze(-1)).all())

    def _project(self, value: torch.Tensor) -> torch.Tensor:
        # Round, then clamp into range; with a mask, move to the nearest allowed index.
        # Unlike torchrl 0.14, the input is never modified in place.
        index = value.round().clamp(0, self.n - 1)
        if self._allowed is not None:
            arange = torch.arange(self.n, device=value.device)
            distance = (arange - index.unsqueeze(-1)).abs().float()
            index = _masked_argmax(-distance, self._allowed)
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
            raise ValueError(f"Binary: shape must end with n={n}, "
                             f"got shape {shape_str(shape)}.")
        super().__init__(2, shape, device, dtype)

    def update_mask(self, mask):
        if mask is not None:
            raise ValueError("Binary: takes no mask, got one.")

    def _project(self, value: torch.Tensor) -> torch.Tensor:
        return value.round().clamp(0, 1).to(self.dtype)

    def enumerate(self, use_mask: bool = False) -> torch.Tensor:
        bits = self.shape[-1]
        codes = torch.arange(2 ** bits, device=self.device).unsqueeze(-1)
        powers = torch.arange(bits - 1, -1, -1, device=self.device)
        values = ((codes >> powers) & 1).to(self.dtype)
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
        parts = zip(self._parts(), self._split(value))
        return torch.cat([part._project(v) for part, v in parts], -1)

    def encode(self, value, ignore_device: bool = False) -> torch.Tensor:
        """Per-group category indices (a gymnasium ``MultiDiscrete`` action) to one-hot."""
        index = torch.as_tensor(np.asarray(value), dtype=torch.int64, device=self.device)
        return self._check_encoded(self.to_one_hot(index))

    def to_one_hot(self, value: torch.Tensor, safe: bool | None = None) -> torch.Tensor:
        return torch.cat([torch.nn.functional.one_hot(v.long(), n).to(self.dtype)
                          for v, n in zip(value.unbind(-1), self.nvec)], -1)

    def to_categorical(self, value: torch.Tensor, safe: bool | None = None) -> torch.Tensor:
        return torch.stack([v.to(torch.int64).argmax(-1) for v in self._split(value)], -1)

    def to_categorical_spec(self) -> "MultiCategorical":
        shape = (*self.shape[:-1], len(self.nvec))
        return MultiCategorical(self.nvec, shape, self.device, mask=self.mask)

    def enumerate(self, use_mask: bool = False) -> torch.Tensor:
        """Every value of the spec, ``(cardinality, *shape)``: one one-hot per group each.

        Examples:
            >>> MultiOneHot([2, 2]).enumerate().int()
            tensor([[1, 0, 1, 0],
                    [1, 0, 0, 1],
                    [0, 1, 1, 0],
                    [0, 1, 0, 1]], dtype=torch.int32)
        """
        return self.to_one_hot(self.to_categorical_spec().enumerate(use_mask))

    def cardinality(self) -> int:
        return int(np.prod(self.nvec))


class MultiCategorical(Categorical):
    """Several category indices side by side, the ``i``-th in ``0 .. nvec[i]-1``.

    Args:
        nvec (sequence or tensor of int): the number of categories of each index. It may be
            2-D, as gymnasium's ``MultiDiscrete``: the spec's shape then ends with its shape.
        shape: the spec's shape, ending with ``nvec``'s shape. Defaults to that shape.
        device: where tensors of the spec live.
        dtype: defaults to ``torch.int64``.
        mask (bool tensor, optional): the allowed categories of each group, concatenated:
            shape ``(*shape[:-1], sum(nvec))`` (a 1-D ``nvec`` only).
        remove_singleton (bool): kept for torchrl compatibility. torchrl squeezes a draw of
            shape ``(1,)`` to a scalar; rlmods never does: ``MultiCategorical(5).rand()``
            has the spec's shape ``(1,)``, so every draw is in the spec.

    Examples:
        >>> spec = MultiCategorical([2, 3])
        >>> spec.project(torch.tensor([5, -1]))
        tensor([1, 0])
        >>> MultiCategorical([[2, 3], [4, 5]]).rand().shape, MultiCategorical(5).rand().shape
        (torch.Size([2, 2]), torch.Size([1]))
    """

    _per_element = ("_allowed",)
    _allowed = None  # (*shape, max(nvec)): k allowed in element i when k < nvec[i] and mask
    _event_ndim = 1

    def __init__(self, nvec, shape=None, device=None, dtype=torch.int64, mask=None,
                 remove_singleton=True):
        nvec = torch.atleast_1d(torch.as_tensor(nvec, dtype=torch.int64))
        shape = _size(shape) if shape is not None else nvec.shape
        if shape[len(shape) - nvec.ndim:] != nvec.shape:
            raise ValueError(f"MultiCategorical: shape must end with nvec's shape "
                             f"{shape_str(nvec.shape)}, got shape {shape_str(shape)}.")
        TensorSpec.__init__(self, shape, device, dtype)
        self.nvec, self.n = nvec.tolist(), int(nvec.max())
        self.remove_singleton = remove_singleton
        self.update_mask(mask)

    def _scalars(self):
        return ("nvec",)

    @property
    def space(self) -> list[CategoricalBox]:
        return [CategoricalBox(int(n)) for n in np.ravel(self.nvec)]

    def _mask_layout(self):
        # One boolean vector per group, concatenated: shape (*shape[:-1], sum(nvec)).
        if np.ndim(self.nvec) > 1:
            raise InvalidValueError(f"MultiCategorical: a mask needs a 1-D nvec, got nvec of "
                                    f"shape {shape_str(np.shape(self.nvec))}.")
        return (*self.shape[:-1], sum(self.nvec)), self.nvec

    def update_mask(self, mask: torch.Tensor | None) -> None:
        """Restrict the spec to the True entries of ``mask`` (``None``: every category)."""
        OneHot.update_mask(self, mask)  # checks the mask, sets self.mask
        nvec = torch.tensor(self.nvec, device=self.device)
        allowed = torch.arange(self.n, device=self.device) < nvec.unsqueeze(-1)  # (*nvec, n)
        if self.mask is not None:
            groups = self.mask.split(self.nvec, -1)
            padded = [nn_functional.pad(g, (0, self.n - g.shape[-1])) for g in groups]
            allowed = torch.stack(padded, -2)
        self._allowed = allowed.expand(*_concrete(self.shape), self.n)

    def _with_shape(self, shape, transform):
        # The mask's last dim is sum(nvec), not part of the spec's shape: index its batch dims.
        new = TensorSpec._with_shape(self, shape, transform)
        if self.mask is not None:
            rows = self.mask.unsqueeze(-2).expand(*self.shape, self.mask.shape[-1])
            new.mask = transform(rows)[..., 0, :]
        return new

    def _stack_names(self) -> tuple[str, ...]:
        return ("_allowed", "mask")

    def _one_hot_nvec(self) -> list[int]:
        if np.ndim(self.nvec) > 1:
            raise InvalidValueError(f"MultiCategorical: one-hot needs a 1-D nvec, got nvec of "
                                    f"shape {shape_str(np.shape(self.nvec))}.")
        return self.nvec

    def to_one_hot(self, value: torch.Tensor, safe: bool | None = None) -> torch.Tensor:
        return torch.cat([nn_functional.one_hot(v.long(), n).bool()
                          for v, n in zip(value.unbind(-1), self._one_hot_nvec())], -1)

    def to_one_hot_spec(self) -> MultiOneHot:
        shape = (*self.shape[:-1], sum(self._one_hot_nvec()))
        return MultiOneHot(self.nvec, shape, self.device, mask=self.mask)

    def enumerate(self, use_mask: bool = False) -> torch.Tensor:
        """Every value of the spec, ``(cardinality, *shape)``, in lexicographic order.

        Examples:
            >>> MultiCategorical([2, 3]).enumerate().tolist()
            [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
        """
        event_shape = np.shape(self.nvec)
        allowed = self._allowed if use_mask else MultiCategorical(self.nvec)._allowed
        allowed = allowed.reshape(-1, *event_shape, self.n)[0].reshape(-1, self.n)
        columns = [row.nonzero()[:, 0] for row in allowed]
        values = torch.cartesian_prod(*columns).reshape(-1, *event_shape).to(self.dtype)
        batch = [1] * (self.ndim - len(event_shape))
        return values.reshape(-1, *batch, *event_shape).expand(-1, *self.shape).clone()

    def cardinality(self) -> int:
        return int(np.prod(self.nvec))


def _nested(key) -> tuple[str, ...]:
    key = unravel_key(key)
    return (key,) if isinstance(key, str) else key


def _is_key(key) -> bool:
    """Whether ``key`` names an entry (``"a"``, ``("a", "b")``), not an index of the batch."""
    return isinstance(key, str) or (isinstance(key, tuple) and bool(key)
                                    and all(isinstance(k, (str, tuple)) for k in key))


class _ReservedKeyError(ValueError, AttributeError):
    """A reserved entry name: a ValueError, and an AttributeError as torchrl raises."""


class _CompositeKeys:
    """A Composite's keys: iterable, sized; ``in`` unravels nested keys, as tensordict's view.

    Examples:
        >>> keys = Composite(a=Composite(b=Unbounded(1))).keys(True)
        >>> list(keys), ("a",) in keys, ("a", ("b",)) in keys
        (['a', ('a', 'b')], True, True)
    """

    def __init__(self, keys: list) -> None:
        self._keys = keys

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, index):
        return self._keys[index]

    def __contains__(self, key) -> bool:
        return _is_key(key) and unravel_key(key) in self._keys

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._keys})"


class Composite(TensorSpec):
    """A dictionary of specs, possibly nested, sharing leading batch dims ``shape``.

    Values of a Composite are TensorDicts: ``rand``, ``zero``, ``one`` build one,
    ``is_in`` and ``project`` take one. Keys may be nested: ``spec["next", "reward"]``.
    The names ``shape``, ``device``, ``dtype`` and ``space`` are reserved (attributes).

    Args:
        *args: an optional dict of specs.
        shape: the batch dims every entry shares. Defaults to ``()``. A nested Composite
            with fewer dims takes this shape.
        device: the device of the entries, or None.
        data_cls, step_mdp_static, names: torchrl options that rlmods does not support;
            only their defaults are accepted.
        **kwargs: the entries.

    Examples:
        >>> spec = Composite(observation=Unbounded(3), action=Bounded(-1.0, 1.0, (1,)))
        >>> td = spec.zero()
        >>> sorted(td.keys()), td["observation"].shape
        (['action', 'observation'], torch.Size([3]))
        >>> spec["action"].high
        tensor([1.])
    """

    _specs: dict

    def __init__(self, *args, shape=None, device=None, data_cls=None, step_mdp_static=False,
                 names=None, **kwargs):
        if data_cls is not None or step_mdp_static or names is not None:
            raise ValueError("Composite: data_cls, step_mdp_static and names are not "
                             f"supported, got {data_cls=}, {step_mdp_static=}, {names=}.")
        self._shape = _size(shape)
        self.device = torch.device(device) if device is not None else None
        self.dtype, self._locked, self._specs = None, False, {}
        for entries in (*args, kwargs):
            for key, spec in dict(entries).items():
                self[key] = spec

    domain = "composite"

    @property
    def shape(self) -> torch.Size:
        """The batch dims every entry shares; setting it re-checks the entries.

        A nested Composite whose shape does not start with the new shape takes it; a leaf
        entry must start with it.

        Examples:
            >>> spec = Composite(obs=Unbounded((4, 3)), extra=Composite())
            >>> spec.shape = (4,)
            >>> spec["extra"].shape
            torch.Size([4])
        """
        return self._shape

    @shape.setter
    def shape(self, shape) -> None:
        shape = _size(shape)
        self._check_unlocked("the shape")
        for key, spec in self._specs.items():
            if isinstance(spec, Composite) and spec.shape[:len(shape)] != shape:
                spec.shape = shape
            elif spec is not None and spec.shape[:len(shape)] != shape:
                raise ValueError(f"Composite: the spec for {key!r} must have leading dims "
                                 f"{shape_str(shape)} (the Composite's shape), "
                                 f"got shape {shape_str(spec.shape)}.")
        self._shape = shape

    def _check_unlocked(self, what: str) -> None:
        if self._locked:
            raise InvalidValueError(f"Composite: cannot set {what} of a locked Composite; "
                                    "call unlock_() first.")

    def __setitem__(self, key, spec) -> None:
        if not _is_key(key):
            raise TypeError("Composite: keys must be strings or tuples of strings, "
                            f"got {key!r}.")
        key = _nested(key)
        if any(k in RESERVED_KEYS for k in key):
            raise _ReservedKeyError(f"Composite: keys must not be one of {RESERVED_KEYS} "
                                    f"(Composite attributes), got {key!r}.")
        if len(key) > 1:
            if key[0] not in self._specs:
                self[key[0]] = Composite(shape=self.shape, device=self.device)
            self._specs[key[0]][key[1:]] = spec
            return
        self._check_unlocked(repr(key[0]))
        if isinstance(spec, dict):
            spec = Composite(spec, shape=self.shape, device=self.device)
        if (isinstance(spec, Composite) and spec.ndim < self.ndim
                and self.shape[:spec.ndim] == spec.shape):
            spec = spec.clone()  # a nested Composite built without a shape takes ours
            spec.shape = self.shape
        if spec is not None and spec.shape[:self.ndim] != self.shape:
            raise ValueError(f"Composite: the spec for {key[0]!r} must have leading dims "
                             f"{shape_str(self.shape)} (the Composite's shape), "
                             f"got shape {shape_str(spec.shape)}.")
        self._specs[key[0]] = spec

    def __getitem__(self, key):
        if not _is_key(key):  # an index of the batch dims
            key = _as_index(key)
            return self._with_shape(_indexed_shape(self.shape, key), lambda spec: spec[key])
        key = _nested(key)
        spec = self._specs.get(key[0])
        if key[0] not in self._specs or (len(key) > 1 and not isinstance(spec, Composite)):
            raise KeyError(f"Composite: no entry {unravel_key(key)!r}; the entries are "
                           f"{list(self.keys(True))}.")
        return spec if len(key) == 1 else spec[key[1:]]

    def __delitem__(self, key) -> None:
        key = _nested(key)
        if len(key) > 1:
            del self[key[0]][key[1:]]
            return
        self._check_unlocked(repr(key[0]))
        del self._specs[key[0]]

    def __contains__(self, key) -> bool:
        if not _is_key(key):
            return False
        key = _nested(key)
        if key[0] not in self._specs:
            return False
        spec = self._specs[key[0]]
        return len(key) == 1 or (isinstance(spec, Composite) and key[1:] in spec)

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
            >>> list(spec.update(Composite(obs=Composite(y=Unbounded(2)))).keys(True, True))
            [('obs', 'x'), ('obs', 'y')]
        """
        items = other.items() if isinstance(other, Composite) else dict(other).items()
        for key, spec in items:
            mine = self.get(key)
            if isinstance(mine, Composite) and isinstance(spec, (Composite, dict)):
                mine.update(spec)
            else:
                self[key] = spec
        return self

    def keys(self, include_nested: bool = False, leaves_only: bool = False, *,
             is_leaf=None) -> _CompositeKeys:
        """The entry names; nested ones as tuples when ``include_nested``.

        ``is_leaf(cls)`` says which spec classes are leaves (by default all but Composite).
        The result is a view: ``("a",) in spec.keys()`` is True, as for a TensorDict.
        """
        out = []
        for key, spec in self._specs.items():
            nested = isinstance(spec, Composite) and not (is_leaf and is_leaf(type(spec)))
            if not (leaves_only and nested):
                out.append(key)
            if include_nested and nested:
                out += [(key, *_nested(sub))
                        for sub in spec.keys(True, leaves_only, is_leaf=is_leaf)]
        return _CompositeKeys(out)

    def items(self, include_nested: bool = False, leaves_only: bool = False, *, is_leaf=None):
        return [(key, self[key]) for key in self.keys(include_nested, leaves_only,
                                                      is_leaf=is_leaf)]

    def values(self, include_nested: bool = False, leaves_only: bool = False, *, is_leaf=None):
        return [self[key] for key in self.keys(include_nested, leaves_only, is_leaf=is_leaf)]

    def __iter__(self):
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    @property
    def is_locked(self) -> bool:
        """Whether entries and the shape are frozen (see ``lock_``)."""
        return self._locked

    def lock_(self, recurse: bool | None = None) -> "Composite":
        """Forbid setting or deleting entries and setting ``shape``, until ``unlock_()``.

        Nested Composites are locked too unless ``recurse=False``.

        Examples:
            >>> spec = Composite(obs=Unbounded(3)).lock_()
            >>> spec.is_locked, spec.unlock_().is_locked
            (True, False)
        """
        return self._set_lock(True, recurse)

    def unlock_(self, recurse: bool | None = None) -> "Composite":
        """Allow changes again (in nested Composites too unless ``recurse=False``)."""
        return self._set_lock(False, recurse)

    def _set_lock(self, locked: bool, recurse: bool | None) -> "Composite":
        self._locked = locked
        if recurse is not False:
            for spec in self._specs.values():
                if isinstance(spec, Composite):
                    spec._set_lock(locked, recurse)
        return self

    def clear_device_(self) -> "Composite":
        """Set the device to None, here and in nested Composites (leaves keep theirs)."""
        self.device = None
        for spec in self._specs.values():
            if spec is not None:
                spec.clear_device_()
        return self

    def _build(self, method: str, shape) -> TensorDict:
        shape = _size(shape)
        values = {key: getattr(spec, method)(shape) for key, spec in self._specs.items()
                  if spec is not None}
        return TensorDict(values, batch_size=(*shape, *self.shape), device=self.device)

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

    def type_check(self, value: TensorDictBase, selected_keys=None) -> None:
        """Check the dtype of every entry of ``value`` (of ``selected_keys`` only, if given).

        A tensor ``value`` with one key in ``selected_keys`` checks that entry, as torchrl.
        """
        if torch.is_tensor(value) and isinstance(selected_keys, str):
            value, selected_keys = {selected_keys: value}, [selected_keys]
        for key, spec in self._specs.items():
            if spec is not None and (selected_keys is None or key in selected_keys):
                spec.type_check(value[key])  # a nested Composite checks all its entries

    def project(self, value: TensorDictBase) -> TensorDictBase:
        """Project every entry that ``value`` holds into its spec (in place, returned)."""
        for key, spec in self._specs.items():
            entry = value.get(key, None)
            if spec is not None and entry is not None:
                value.set(key, spec.project(entry))
        return value

    def encode(self, value: dict, ignore_device: bool = False) -> TensorDict:
        values = {key: self[key].encode(v, ignore_device) for key, v in value.items()}
        return TensorDict(values, batch_size=self.shape, device=self.device)

    def memoize_encode(self, mode: bool = True) -> None:
        """``memoize_encode`` for every entry (see ``TensorSpec.memoize_encode``)."""
        for spec in self.values(True, True):
            if spec is not None:
                spec.memoize_encode(mode)

    def erase_memoize_cache(self) -> None:
        for spec in self.values(True, True):
            if spec is not None:
                spec.erase_memoize_cache()

    def to_numpy(self, value: TensorDictBase, safe: bool | None = None) -> dict:
        """``{key: array}`` for a TensorDict of this spec (nested dicts for nested entries)."""
        return {key: self[key].to_numpy(entry, safe) for key, entry in value.items()}

    def enumerate(self, use_mask: bool = False) -> TensorDict:
        """Every combination of the entries' values, batch ``(cardinality, *shape)``.

        Examples:
            >>> td = Composite(a=Categorical(2), b=OneHot(3)).enumerate()
            >>> td.batch_size, td["a"].tolist()
            (torch.Size([6]), [0, 0, 0, 1, 1, 1])
        """
        single = self[(0,) * self.ndim]  # one batch element
        values = {key: spec.enumerate(use_mask) for key, spec in single.items()
                  if spec is not None}
        if not values:
            return TensorDict({}, batch_size=self.shape, device=self.device)
        grid = torch.meshgrid(*(torch.arange(len(v)) for v in values.values()), indexing="ij")
        td = TensorDict({key: v[i.reshape(-1)] for (key, v), i in zip(values.items(), grid)},
                        batch_size=[grid[0].numel()], device=self.device)
        return td.reshape(-1, *[1] * self.ndim).expand(len(td), *self.shape).clone()

    def _with_shape(self, shape, transform) -> "Composite":
        new = Composite(shape=shape, device=self.device)
        new._specs = {key: None if spec is None else transform(spec)
                      for key, spec in self._specs.items()}
        return new

    def expand(self, *shape) -> "Composite":
        shape = _expanded_shape(self, shape)
        return self._with_shape(shape,
                                lambda spec: spec.expand(*shape, *spec.shape[self.ndim:]))

    def unsqueeze(self, dim: int) -> "Composite":
        dim = dim if dim >= 0 else dim + self.ndim + 1
        shape = list(self.shape)
        shape.insert(dim, 1)
        return self._with_shape(shape, lambda spec: spec.unsqueeze(dim))

    def squeeze(self, dim: int | None = None) -> "Composite":
        dims = [d for d in range(self.ndim)
                if self.shape[d] == 1 and (dim is None or d == dim % self.ndim)]
        shape = [s for d, s in enumerate(self.shape) if d not in dims]
        spec = self
        for d in reversed(dims):
            spec = spec._with_shape(shape, lambda s, d=d: s.squeeze(d))
        return spec

    def to(self, dest) -> "Composite":
        if dest is None:
            return self
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
        return (type(self) is type(other) and self.shape == other.shape
                and self._specs.keys() == other._specs.keys()
                and all(spec == other._specs[key] for key, spec in self._specs.items()))

    def cardinality(self) -> int:
        return int(np.prod([spec.cardinality() for spec in self._specs.values()
                            if spec is not None]))

    def __repr__(self) -> str:
        inner = "".join(f"\n    {key}: " + repr(spec).replace("\n", "\n    ")
                        for key, spec in self._specs.items())
        return f"{type(self).__name__}({inner},\n    shape={shape_str(self.shape)})"


def _index_parts(stack, index):
    """``stack[index]`` for a lazy stack: the index at the stack dim picks parts, the rest
    indexes each part (ints, slices and 1-D index tensors)."""
    index = _as_index(index)
    index = index if isinstance(index, tuple) else (index,)
    if any(i is Ellipsis or i is None for i in index):
        raise InvalidValueError(f"{type(stack).__name__}: an index must hold only ints, "
                                f"slices and index tensors, got {index!r}.")
    index += (slice(None),) * (stack.dim + 1 - len(index))
    rest = index[:stack.dim] + index[stack.dim + 1:]
    parts = [part[rest] if rest else part for part in stack._parts]
    chosen = torch.arange(len(parts))[index[stack.dim]]
    if chosen.ndim == 0:
        return parts[int(chosen)]
    new_dim = sum(not isinstance(i, int) for i in index[:stack.dim])
    return _stack([parts[i] for i in chosen.tolist()], new_dim)


class _LazyStack:
    """What the two lazy stacks share: ``_parts`` stacked along ``dim``."""

    _parts: list
    dim: int

    def __getitem__(self, index):
        if isinstance(self, Composite) and _is_key(index):
            return Composite.__getitem__(self, index)
        return _index_parts(self, index)

    def unbind(self, dim: int = 0) -> tuple:
        if dim in (self.dim, self.dim - self.ndim):
            return tuple(self._parts)
        return TensorSpec.unbind(self, dim)

    def _unbound(self, value) -> tuple[int, tuple]:
        """The dim of ``value`` (maybe with extra leading dims) that runs along the parts."""
        dim = value.ndim - self.ndim + self.dim
        return dim, value.unbind(dim)

    def is_in(self, value) -> bool:
        if value.ndim < self.ndim or value.shape[value.ndim - self.ndim + self.dim] != len(
                self._parts):
            return False
        return all(part.is_in(v) for part, v in zip(self._parts, self._unbound(value)[1]))

    def _with_shape(self, shape, transform):
        raise InvalidValueError(f"{type(self).__name__}: reshaping a lazy stack is not "
                                f"supported; reshape each of spec.unbind({self.dim}).")

    def expand(self, *shape):
        shape = _expanded_shape(self, shape)
        lead = shape[:len(shape) - self.ndim]
        parts = [part.expand(*lead, *part.shape) for part in self._parts]
        return type(self)(*parts, dim=self.dim + len(lead))

    def to(self, dest):
        if dest is None:
            return self
        return type(self)(*[part.to(dest) for part in self._parts], dim=self.dim)

    def clone(self):
        return type(self)(*[part.clone() for part in self._parts], dim=self.dim)

    def __eq__(self, other) -> bool:
        return (type(self) is type(other) and self.dim == other.dim
                and len(self._parts) == len(other._parts)
                and all(a == b for a, b in zip(self._parts, other._parts)))


class Stacked(_LazyStack, TensorSpec):
    """Leaf specs of one class stacked along ``dim`` that no single spec describes.

    Built by ``torch.stack`` when the specs' shapes or ``n``/``nvec`` differ; ``shape`` has
    ``-1`` where the parts' sizes differ. ``rand``/``zero``/``one`` stack the parts' values
    (when the sizes agree); ``is_in``/``project`` check or project each slice by its part.

    Examples:
        >>> spec = torch.stack([Categorical(2), Categorical(3)], 0)
        >>> type(spec).__name__, spec.shape, spec[1] == Categorical(3)
        ('Stacked', torch.Size([2]), True)
        >>> bool(spec.is_in(torch.tensor([1, 2]))), bool(spec.is_in(torch.tensor([2, 1])))
        (True, False)
        >>> torch.stack([Unbounded(3), Unbounded(4)], 0).shape
        torch.Size([2, -1])
    """

    def __init__(self, *specs: TensorSpec, dim: int):
        dim = _stack_dim(list(specs), dim)
        sizes = [n[0] if len(set(n)) == 1 else -1 for n in zip(*(s.shape for s in specs))]
        super().__init__([*sizes[:dim], len(specs), *sizes[dim:]], specs[0].device,
                         specs[0].dtype)
        self._parts, self.dim, self.domain = list(specs), dim, specs[0].domain
        self._event_ndim = specs[0]._event_ndim

    def _scalars(self) -> tuple[str, ...]:
        return ("dim",)

    def _values(self, method: str, shape) -> torch.Tensor:
        if -1 in self.shape:
            raise InvalidValueError(f"Stacked: the parts' shapes differ "
                                    f"({shape_str(self.shape)}), so no tensor holds them; "
                                    f"use spec.unbind({self.dim}).")
        values = [getattr(part, method)(shape) for part in self._parts]
        return torch.stack(values, len(_size(shape)) + self.dim)

    def rand(self, shape=None) -> torch.Tensor:
        return self._values("rand", shape)

    def zero(self, shape=None) -> torch.Tensor:
        return self._values("zero", shape)

    def one(self, shape=None) -> torch.Tensor:
        return self._values("one", shape)

    zeros, ones = zero, one

    def is_in(self, value: torch.Tensor) -> bool:
        return self._shape_matches(value) and _LazyStack.is_in(self, value)

    def _project(self, value: torch.Tensor) -> torch.Tensor:
        dim, values = self._unbound(value)
        return torch.stack([part.project(v) for part, v in zip(self._parts, values)], dim)

    def cardinality(self) -> int:
        return int(np.prod([part.cardinality() for part in self._parts]))


class StackedComposite(_LazyStack, Composite):
    """Composites stacked along ``dim`` whose entries differ: a lazy stack, as torchrl's.

    Built by ``torch.stack`` when the Composites are not all equal (agents with different
    observation sizes, ...). ``spec[key]`` stacks the parts' entries (keys that every part
    holds); ``rand``/``zero``/``one`` give a ``LazyStackedTensorDict`` (dense when the
    entries' shapes agree); ``spec[i]`` along ``dim`` is the ``i``-th Composite.

    Examples:
        >>> spec = torch.stack([Composite(obs=Unbounded(3)), Composite(obs=Unbounded(4))], 0)
        >>> type(spec).__name__, spec.shape, spec["obs"].shape, spec[1]["obs"].shape
        ('StackedComposite', torch.Size([2]), torch.Size([2, -1]), torch.Size([4]))
        >>> td = spec.rand()
        >>> td[1]["obs"].shape, spec.is_in(td)
        (torch.Size([4]), True)
    """

    def __init__(self, *specs: Composite, dim: int):
        dim = _stack_dim(list(specs), dim)
        shape = specs[0].shape
        self._shape = torch.Size([*shape[:dim], len(specs), *shape[dim:]])
        self.device, self.dtype, self._locked = specs[0].device, None, False
        self._parts, self.dim = list(specs), dim

    @property
    def _specs(self) -> dict:
        """The entries every part holds, each the stack of the parts' entries."""
        keys = [k for k in self._parts[0]._specs if all(k in p._specs for p in self._parts)]
        entries = {key: [part._specs[key] for part in self._parts] for key in keys}
        return {key: None if None in specs else _stack(specs, self.dim)
                for key, specs in entries.items()}

    def __setitem__(self, key, spec) -> None:
        if not _is_key(key):
            raise TypeError("Composite: keys must be strings or tuples of strings, "
                            f"got {key!r}.")
        specs = [None] * len(self._parts) if spec is None else spec.unbind(self.dim)
        for part, sub in zip(self._parts, specs):
            part[key] = sub

    def __delitem__(self, key) -> None:
        for part in self._parts:
            del part[key]

    def _set_lock(self, locked: bool, recurse: bool | None) -> "StackedComposite":
        self._locked = locked
        for part in self._parts:
            part._set_lock(locked, recurse)
        return self

    def clear_device_(self) -> "StackedComposite":
        self.device = None
        for part in self._parts:
            part.clear_device_()
        return self

    def _build(self, method: str, shape) -> TensorDictBase:
        values = [getattr(part, method)(shape) for part in self._parts]
        return LazyStackedTensorDict.maybe_dense_stack(values, len(_size(shape)) + self.dim)

    def project(self, value: TensorDictBase) -> TensorDictBase:
        """A new stack: each slice along ``dim`` projected into its part."""
        dim, values = self._unbound(value)
        projected = [part.project(v) for part, v in zip(self._parts, values)]
        return LazyStackedTensorDict.maybe_dense_stack(projected, dim)


def _dense_stack(specs, dim: int) -> TensorSpec:
    """One spec of the same class whose per-element tensors (bounds, masks) are stacked."""
    new = copy.copy(specs[0])
    new.shape = torch.Size([*new.shape[:dim], len(specs), *new.shape[dim:]])
    for name in new._stack_names():
        values = [getattr(spec, name) for spec in specs]
        like = next((v for v in values if v is not None), None)
        if like is not None:  # a missing mask allows everything
            values = [torch.ones_like(like) if v is None else v for v in values]
            setattr(new, name, torch.stack(values, dim))
    return new


def _stack_dim(specs: list, dim: int) -> int:
    """``dim`` in ``[0, ndim]`` once ``specs`` are checked to stack: one class, and the same
    device, dtype and ndim (leaves) or shape (Composites)."""
    if not specs:
        raise InvalidValueError("torch.stack: needs at least one spec, got an empty list.")
    first, composite = specs[0], isinstance(specs[0], Composite)
    checks = ("shape",) if composite else ("device", "dtype", "ndim")
    for spec in specs[1:]:
        same_class = isinstance(spec, Composite) if composite else type(spec) is type(first)
        if not same_class:
            raise InvalidTypeError(f"torch.stack: the specs must be of one class, got "
                                   f"{type(first).__name__} and {type(spec).__name__}.")
        for what in checks:
            if getattr(spec, what) != getattr(first, what):
                raise InvalidValueError(f"torch.stack: the specs' {what} must agree, got "
                                        f"{getattr(first, what)} and {getattr(spec, what)}.")
    batch = first.ndim - first._event_ndim  # a new dim may not split the categories
    if not -first.ndim - 1 <= dim <= first.ndim or dim % (first.ndim + 1) > batch:
        raise ValueError(f"torch.stack: dim must be in [{-first.ndim - 1}, {first.ndim}] and "
                         f"not after the category dim of {type(first).__name__} of shape "
                         f"{shape_str(first.shape)}, got {dim}.")
    return dim % (first.ndim + 1)


def _stack(specs, dim: int = 0, *, out=None) -> TensorSpec:
    """``torch.stack(specs, dim)``: the spec of the stacked values.

    Equal specs give one dense spec, and so do leaf specs that differ only in their bounds
    or masks (those are stacked); otherwise a lazy ``Stacked`` or ``StackedComposite``.

    Examples:
        >>> spec = torch.stack([Bounded(0.0, 1.0, (2,)), Bounded(0.0, 2.0, (2,))], 0)
        >>> type(spec).__name__, spec.high.tolist()
        ('Bounded', [[1.0, 1.0], [2.0, 2.0]])
    """
    if out is not None:
        raise InvalidValueError("torch.stack: out= is not supported for specs, got one.")
    specs = list(specs)
    dim, first = _stack_dim(specs, dim), specs[0]
    if all(spec == first for spec in specs[1:]):
        shape = [*first.shape[:dim], len(specs), *first.shape[dim:]]
        return first.unsqueeze(dim).expand(shape)
    if isinstance(first, Composite):
        return StackedComposite(*specs, dim=dim)
    scalars = [(s.shape, [getattr(s, name) for name in s._scalars()]) for s in specs]
    if isinstance(first, Stacked) or any(x != scalars[0] for x in scalars):
        return Stacked(*specs, dim=dim)
    return _dense_stack(specs, dim)


def _index_select(spec: TensorSpec, dim: int, index: torch.Tensor) -> TensorSpec:
    """``torch.index_select(spec, dim, index)``: the spec of ``value.index_select(dim, ...)``.

    Examples:
        >>> spec = Bounded(0.0, torch.tensor([1.0, 2.0, 3.0]))
        >>> torch.index_select(spec, 0, torch.tensor([2, 0])).high
        tensor([3., 1.])
    """
    if not -spec.ndim <= dim < spec.ndim or index.ndim > 1:
        raise IndexError(f"torch.index_select: needs a dim in [{-spec.ndim}, {spec.ndim}) "
                         f"and a 1-D index, got dim={dim} and index of shape "
                         f"{shape_str(index.shape)}.")
    dim %= spec.ndim
    if dim >= spec.ndim - spec._event_ndim:
        raise ValueError(f"torch.index_select: dim {dim} of {type(spec).__name__} holds its "
                         "categories, not a batch dim.")
    return spec[(slice(None),) * dim + (index.reshape(-1),)]


_TORCH_FUNCTIONS = {torch.stack: _stack, torch.index_select: _index_select,
                    torch.unbind: lambda spec, dim=0: spec.unbind(dim)}
