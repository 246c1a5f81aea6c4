"""The rows given to :func:`augmentface.datasets.layouts.write_layout`, checked and ordered."""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augmentface.datasets.schema import EMOTIONS, RAW_AUS
from augmentface.errors import UsageError

__all__ = ["Item", "Written", "group_by_subject", "half_up", "items_from_labels"]


@dataclass(frozen=True)
class Item:
    """One augmented image to write, checked.

    Attributes
    ----------
    index : hashable
        The row's index label in the input.
    source : Path
        The image file written by the blend stage.
    subject : str
        Subject id, a safe folder name.
    aus : dict of int to float or None
        Intensities 0–5 by AU number (AUs without a value are 0: the render replaces the whole
        expression by the target's, so an AU the target does not set is absent), or None when
        the row has no AU label.
    va : (float, float) or None
        Valence and arousal in [−1, 1], or None when the row has none.
    emotion : str or None
        One of :data:`~augmentface.datasets.schema.EMOTIONS`.
    landmarks : numpy.ndarray or None
        ``(68, 2)`` iBUG-68 points in the image, px.
    """

    index: Hashable
    source: Path
    subject: str
    aus: dict[int, float] | None
    va: tuple[float, float] | None
    emotion: str | None
    landmarks: np.ndarray | None


@dataclass(frozen=True)
class Written:
    """Where one item went: file, the layout's frame number, and its frame reference."""

    index: Hashable
    path: Path
    frame_index: int
    frame_ref: str


def group_by_subject(items: list[Item]) -> dict[str, list[Item]]:
    """Items by subject, subjects sorted, items in their (stable) input order."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.subject, []).append(item)
    return dict(sorted(groups.items()))


def half_up(value: float) -> int:
    """Round to the nearest whole number, halves away from zero (2.5 -> 3, -2.5 -> -3)."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def items_from_labels(labels: pd.DataFrame) -> list[Item]:
    """Check the input rows and return them as items, in the stable write order."""
    missing = [c for c in ("output_path", "subject_id") if c not in labels.columns]
    if missing:
        raise UsageError(f"labels lack the columns {missing}")
    if not labels.index.is_unique:
        raise UsageError("labels must have a unique index (it keys the returned mapping)")
    au_columns = {n: f"AU{n}" for n in RAW_AUS if f"AU{n}" in labels.columns}
    keyed = [
        ((item.subject, _order_key(row)), item)
        for index, row in labels[labels["output_path"].notna()].iterrows()
        for item in (_item(index, row, au_columns),)
    ]
    return [item for _, item in sorted(keyed, key=lambda pair: pair[0])]


def _item(index: Hashable, row: pd.Series, au_columns: dict[int, str]) -> Item:
    where = f"labels row {index!r}"
    subject = row["subject_id"]
    if (
        not isinstance(subject, str)
        or subject in ("", ".", "..")
        or any(c in subject for c in "/\\\0")
    ):
        raise UsageError(f"{where}: subject_id {subject!r} is not a usable folder name")
    values = {n: _number(row.get(c)) for n, c in au_columns.items()}
    for n, value in values.items():
        if not (math.isnan(value) or 0.0 <= value <= 5.0):
            raise UsageError(f"{where}: AU{n} = {value:g} is outside the FACS range 0–5")
    aus = None
    if any(not math.isnan(v) for v in values.values()):
        aus = {n: 0.0 if math.isnan(v) else v for n, v in values.items()}
    va = tuple(_number(row.get(c)) for c in ("valence", "arousal"))
    if any(math.isnan(v) for v in va):
        va = None
    elif not all(-1.0 <= v <= 1.0 for v in va):
        raise UsageError(f"{where}: valence/arousal {va} outside [-1, 1]")
    emotion = row.get("emotion")
    if _is_null(emotion):
        emotion = None
    elif str(emotion).strip().lower() in EMOTIONS:
        emotion = str(emotion).strip().lower()
    else:
        raise UsageError(f"{where}: emotion {emotion!r} is not one of {', '.join(EMOTIONS)}")
    landmarks = row.get("ibug68_px")
    if _is_null(landmarks):
        landmarks = None
    else:
        landmarks = np.asarray(landmarks, dtype=np.float64)
        if landmarks.size != 136:
            raise UsageError(f"{where}: ibug68_px has shape {landmarks.shape}, expected (68, 2)")
        landmarks = landmarks.reshape(68, 2)
    return Item(index, Path(row["output_path"]), subject, aus, va, emotion, landmarks)


def _order_key(row: pd.Series) -> tuple[Any, ...]:
    def text(name: str) -> str:
        value = row.get(name)
        return "" if _is_null(value) else str(value)

    def number(name: str) -> int:
        value = row.get(name)
        return -1 if _is_null(value) else int(value)

    return (
        text("clip_id"),
        text("image_path"),
        number("face_index"),
        text("target_id"),
        number("sample"),
        text("output_path"),
    )


def _number(value: Any) -> float:
    """A label cell as a float, NaN when missing (None, NaN, pandas NA)."""
    return math.nan if _is_null(value) else float(value)


def _is_null(value: Any) -> bool:
    return value is None or bool(pd.api.types.is_scalar(value) and pd.isna(value))
