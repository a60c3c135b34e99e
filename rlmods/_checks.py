"""Shared input checks, so that every error message in rlmods has the same form.

``"<Owner>: <key or argument> <what was expected>, got <what came>."``
"""

from __future__ import annotations

import torch


def shape_str(shape) -> str:
    """``(2, 4)`` for a shape, ``()`` for a scalar: how shapes appear in messages."""
    dims = tuple(shape)
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def key_str(key) -> str:
    """``'action'`` or ``('agents', 'action')``: how keys appear in messages."""
    return repr(key)


def require_key(tensordict, key, owner: str):
    """``tensordict[key]``, or a one-line KeyError naming the key and what was there."""
    value = tensordict.get(key, None)
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

