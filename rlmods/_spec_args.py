"""What modules do with a ``spec`` argument: wrap it as a Composite, or read the action's leaf.

Shared by every chapter from chapter 3 on, so that a spec argument means the same thing,
and fails with the same message, in every module that takes one.
"""

from __future__ import annotations

from tensordict import unravel_key_list

from rlmods._checks import InvalidValueError, key_str
from rlmods._keys import IGNORE
from rlmods.specs import Composite, TensorSpec


def as_composite(spec, out_keys, owner: str, *, leaf_key=None, batch_shape: bool = False,
                 strict: bool = True) -> Composite:
    """``spec`` as a Composite keyed by ``out_keys`` (a copy: the caller's spec is never changed).

    ``None`` gives an empty Composite; a single spec goes under ``leaf_key`` (by default the
    only out_key); a Composite is copied. Out_keys the spec does not cover get ``None``
    (torchrl's "no constraint"). With ``strict``, a spec key that is not an out_key is an
    error naming both (``InvalidValueError``: torchrl raises ``RuntimeError`` there).
    ``batch_shape=True`` gives the Composite the leaf's leading dims (``spec.shape[:-1]``),
    as torchrl's exploration and Q-value modules do.

    Examples:
        >>> from rlmods.specs import Bounded
        >>> spec = as_composite(Bounded(-1.0, 1.0, (4, 2)), ["action", "hidden"], "Demo",
        ...                     leaf_key="action", batch_shape=True)
        >>> spec.shape, spec["action"].shape, spec["hidden"] is None
        (torch.Size([4]), torch.Size([4, 2]), True)
    """
    out_keys = unravel_key_list(list(out_keys))
    if spec is None:
        spec = Composite()
    elif not isinstance(spec, TensorSpec):
        raise TypeError(f"{owner}: spec must be a TensorSpec or a Composite, "
                        f"got {type(spec).__name__}.")
    elif not isinstance(spec, Composite):
        if leaf_key is None and len(out_keys) != 1:
            raise InvalidValueError(f"{owner}: a single (non-Composite) spec needs exactly one "
                                    f"out_key, got out_keys={out_keys}; pass a Composite keyed "
                                    "by the out_keys.")
        leaf_key = out_keys[0] if leaf_key is None else leaf_key
        shape = spec.shape[:-1] if batch_shape else ()
        spec = Composite({leaf_key: spec.clone()}, shape=shape)
    else:
        spec = spec.clone()
    spec_keys = unravel_key_list(list(spec.keys(True, True)))
    extra = [key for key in spec_keys if key not in out_keys and key != IGNORE]
    if strict and extra:
        raise InvalidValueError(f"{owner}: spec keys must be among the out_keys {out_keys}, got "
                                f"spec keys {spec_keys} "
                                f"({', '.join(key_str(k) for k in extra)} not an out_key).")
    for key in out_keys:
        if key not in spec_keys and key != IGNORE:
            spec[key] = None
    return spec


def leaf_spec(spec, key, owner: str) -> TensorSpec:
    """The spec of ``key``: ``spec`` itself, or its entry when it is a Composite.

    Examples:
        >>> from rlmods.specs import OneHot
        >>> leaf_spec(Composite(action=OneHot(3)), "action", "Demo").n
        3
    """
    if isinstance(spec, Composite):
        if key not in spec.keys(True, True):
            raise KeyError(f"{owner}: the Composite spec has no entry {key_str(key)}, "
                           f"got keys {list(spec.keys(True, True))}.")
        spec = spec[key]
    if not isinstance(spec, TensorSpec):
        raise TypeError(f"{owner}: spec must be a TensorSpec (the action spec, e.g. "
                        f"env.action_spec), got {type(spec).__name__}.")
    return spec
