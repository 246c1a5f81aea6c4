"""Class models on disk: one ``.npz`` of plain arrays with a JSON header inside, no pickle.

The header (UTF-8 JSON in the ``header_json`` entry) names the format and its version, the
model kind, the face model id, the build config, the rows dropped and the class table (frames,
source, median V/A per class), so a file can be inspected without this package::

    json.loads(np.load(path)["header_json"].tobytes())
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from augmentface.atomic import atomic_write_with
from augmentface.expression.class_models import ClassModelConfig, ClassModelError, ClassModelSet
from augmentface.expression.splocs import SplocsConfig
from augmentface.npz_files import header_array, read_npz

FORMAT = "augmentface-class-models"
FORMAT_VERSION = 1
_ARRAYS = ("counts", "means_model_mm", "components_model_mm", "coef_mean", "coef_std",
           "coef_low", "coef_high", "median_va")  # fmt: skip


class ClassModelMismatchError(ClassModelError):
    """The file was built on another face model than the one in use."""


def _header(models: ClassModelSet) -> dict:
    table = models.class_table().to_dict("records")
    for row in table:  # JSON has no NaN: missing medians (emotion classes) become null
        for key, value in row.items():
            if isinstance(value, float) and math.isnan(value):
                row[key] = None
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "kind": models.kind,
        "face_model_id": models.face_model_id,
        "config": dataclasses.asdict(models.config),
        "dropped": models.dropped,
        "classes": table,
    }


def save_class_models(models: ClassModelSet, path: str | Path) -> Path:
    """Write ``models`` to ``path`` (``.npz``) atomically; returns the path."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ClassModelError(f"{path}: class models are saved as .npz")
    header = header_array(_header(models))
    arrays = {name: getattr(models, name) for name in _ARRAYS}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, header_json=header, **arrays)

    atomic_write_with(path, write)
    return path


def read_header(path: str | Path) -> dict:
    """The JSON header of a class-model file (raises :class:`ClassModelError` if unreadable)."""
    return read_npz(path, "class-model", FORMAT, FORMAT_VERSION, ClassModelError)[0]


def load_class_models(path: str | Path, face_model_id: str) -> ClassModelSet:
    """Read class models saved by :func:`save_class_models` for the face model in use.

    Raises
    ------
    ClassModelMismatchError
        The file was built for another ``face_model_id``.
    ClassModelError
        The file is missing, unreadable or of another format version.
    """
    path = Path(path)
    header = read_header(path)
    if header["face_model_id"] != face_model_id:
        raise ClassModelMismatchError(
            f"{path}: built for face model {header['face_model_id']}, but this run uses "
            f"{face_model_id}; rebuild the class models on this face model"
        )
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in _ARRAYS}
    config = dict(header["config"])
    config["splocs"] = SplocsConfig(**config["splocs"])
    classes = header["classes"]
    return ClassModelSet(
        kind=header["kind"],
        face_model_id=header["face_model_id"],
        config=ClassModelConfig(**config),
        class_names=tuple(row["name"] for row in classes),
        sources=tuple(row["source"] for row in classes),
        dropped={str(k): int(v) for k, v in header["dropped"].items()},
        **arrays,
    )
