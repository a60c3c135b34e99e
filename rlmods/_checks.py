"""Shared input checks, so that every error message in rlmods has the same form.

``"<Owner>: <key or argument> <what was expected>, got <what came>."``

Also here: the exception classes that let ``except ValueError`` (Python's convention) and
``except RuntimeError`` (what torchrl raises for many of the same conditions) both catch an
rlmods error, and the switch for the per-call checks that read tensor values.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict


class InvalidValueError(ValueError, NotImplementedError):
    """A bad value, shape or spec, where torchrl raises ``RuntimeError`` or ``NotImplementedError``.

    It is a ``ValueError`` (what the mistake is) and, through ``NotImplementedError``, a
    ``RuntimeError`` (what torchrl raises), the way numpy's ``AxisError`` is both a
    ``ValueError`` and an ``IndexError``: code written for either library catches it.

    Examples:
        >>> issubclass(InvalidValueError, ValueError), issubclass(InvalidValueError, RuntimeError)
        (True, True)
    """


class InvalidTypeError(TypeError, NotImplementedError):
    """A bad type, where torchrl raises ``RuntimeError`` or ``NotImplementedError``.

    Examples:
        >>> issubclass(InvalidTypeError, TypeError), issubclass(InvalidTypeError, RuntimeError)
        (True, True)
    """


_VALIDATE_ARGS = [True]


class set_validate_args:
    """Turn rlmods' per-call value checks on (the default) or off; also a context manager.

    The checks that read tensor values on every call (an env's action domain, distribution
    bounds, an action mask that allows nothing, ...) make a GPU wait for the CPU each time.
    As with ``torch.distributions.Distribution.set_default_validate_args``, they can be
    switched off once a program is known to be correct. Checks of shapes, keys and
    constructor arguments stay on: they cost no synchronisation. A module built with
    ``run_type_checks=True`` always checks.

    Examples:
        >>> with set_validate_args(False):
        ...     validate_args()
        False
        >>> validate_args()
        True
    """

    def __init__(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"set_validate_args: value must be a bool, got {type(value).__name__}.")
        self.previous = _VALIDATE_ARGS[0]
        _VALIDATE_ARGS[0] = value

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info) -> None:
        _VALIDATE_ARGS[0] = self.previous


def validate_args(force: bool = False) -> bool:
    """Whether per-call value checks run now: the global switch, or ``force`` (run_type_checks)."""
    return force or _VALIDATE_ARGS[0]


def shape_str(shape) -> str:
    """``(2, 4)`` for a shape, ``()`` for a scalar: how shapes appear in messages."""
    dims = tuple(shape)
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def key_str(key) -> str:
    """``'action'`` or ``('agents', 'action')``: how keys appear in messages."""
    return repr(key)


def get_entry(tensordict, key):
    """``tensordict.get(key, None)``, by the cheapest path.

    A string key of a plain ``TensorDict`` is read with its ``_get_str``: ``get`` first turns
    the key into a tuple and sorts out its arguments, most of a 0.5 µs read at batch 1.
    """
    if type(key) is str and type(tensordict) is TensorDict:
        return tensordict._get_str(key, None)
    return tensordict.get(key, None)


def require_key(tensordict, key, owner: str):
    """``tensordict[key]``, or a one-line KeyError naming the key and what was there."""
    value = get_entry(tensordict, key)
    if value is None:
        present = sorted(str(k) for k in tensordict.keys(include_nested=True, leaves_only=True))
        raise KeyError(f"{owner}: expected key {key_str(key)} in the input tensordict, "
                       f"found keys {present}.")
    return value


def check_trailing_shape(value: torch.Tensor, shape, owner: str, what: str) -> None:
    """Raise a ValueError unless ``value``'s trailing dims equal ``shape``."""
    shape = tuple(shape)
    got = tuple(value.shape)
    if len(got) < len(shape) or (shape and got[-len(shape):] != shape):
        raise ValueError(f"{owner}: {what} must end with shape {shape_str(shape)}, "
                         f"got shape {shape_str(got)}.")
