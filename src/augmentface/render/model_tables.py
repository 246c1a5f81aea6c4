"""Per-model constants of the render layers, made once per face model instead of per render.

A render derives a few arrays from the face model alone (the warp's triangulation, the skin
triangles' UV areas); :func:`per_model` keeps them for as long as the model lives. A
:class:`~augmentface.face.model.FaceModel` holds NumPy arrays, so it is neither hashable nor
worth hashing per call: entries are keyed by the model's ``id`` and checked against a weak
reference to it, since an id is only unique while its object lives.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

#: Entries: (id(model), key) -> (weak reference to the model, value).
_TABLES: dict[tuple[int, Hashable], tuple[weakref.ref, object]] = {}
#: The cache is emptied when it reaches this many entries (a process renders with one or two
#: models; tests build a few more).
_MAX_ENTRIES = 256


def per_model(model: object, key: Hashable, build: Callable[[], T]) -> T:
    """``build()``'s value for ``model`` and ``key``, built on the first call and kept.

    The value must not be mutated by callers (arrays are best made read-only).
    """
    entry = _TABLES.get((id(model), key))
    if entry is not None and entry[0]() is model:
        return entry[1]  # type: ignore[return-value]
    value = build()
    if len(_TABLES) >= _MAX_ENTRIES:
        _TABLES.clear()
    _TABLES[(id(model), key)] = (weakref.ref(model), value)
    return value


def read_only(*arrays):
    """Mark NumPy arrays read-only (cached values are shared by every render); returns them."""
    for array in arrays:
        array.flags.writeable = False
    return arrays[0] if len(arrays) == 1 else arrays
