"""Building source rows: what every adapter shares.

An adapter creates a :class:`SourceRows` for the frames of one clip and lets
:meth:`SourceRows.fill` copy, check and normalise the values of each label file
(:class:`~augmentface.datasets.labels.LabelTrack`). Checks are vectorised; only the rare bad
frames are visited one by one to word their error, so a dataset of millions of frames imports
in seconds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from augmentface.datasets.labels import LabelTrack, Scale
from augmentface.datasets.schema import EMOTIONS, LABEL_AU_COLUMNS, RAW_AU_COLUMNS, SOURCES
from augmentface.errors import (
    DatasetLayoutError,
    ImageMissingError,
    ImageReadError,
    LabelError,
    LabelMismatchError,
    MissingLabelError,
)

__all__ = ["SourceRows", "concat_rows", "empty_sources", "flag_length_mismatch", "require"]

_FLOAT_COLUMNS = (*RAW_AU_COLUMNS, "raw_valence", "raw_arousal", *LABEL_AU_COLUMNS)
_FLOAT_COLUMNS += ("label_valence", "label_arousal")

# When a row has several problems, the status shown is the most serious one (all messages are
# kept in ``error``): an unreadable video outranks labels that do not fit it, which outrank one
# bad value.
_STATUS_RANK = {
    "ok": 0,
    MissingLabelError.status: 1,
    LabelError.status: 2,
    LabelMismatchError.status: 3,
    ImageMissingError.status: 4,
    ImageReadError.status: 4,
}


def require(path: Path, what: str) -> Path:
    """Return ``path`` if it exists, else raise DatasetLayoutError naming it and ``what``."""
    if not path.exists():
        raise DatasetLayoutError(f"{path}: not found; expected {what}")
    return path


class SourceRows:
    """The SOURCES columns of a batch of frames (usually one clip), filled column by column.

    Parameters
    ----------
    dataset : str
        Dataset name.
    image_paths : sequence of str
        Frame references, one per row.
    frame_indices : sequence of int
        The dataset's frame numbers.
    subject_id, clip_id, video_path, split : str, None or sequence
        One value for every row, or one per row.
    """

    def __init__(
        self,
        dataset: str,
        image_paths: Sequence[str],
        frame_indices: Sequence[int] | np.ndarray,
        *,
        subject_id: str | Sequence[str],
        clip_id: str | Sequence[str | None] | None,
        video_path: str | os.PathLike[str] | None = None,
        split: str | Sequence[str | None] | None = None,
    ) -> None:
        n = len(image_paths)
        self.n = n
        self.frames = np.asarray(frame_indices, dtype=np.int64)

        def broadcast(value: object) -> np.ndarray:
            if value is None or isinstance(value, str | os.PathLike):
                cells = np.empty(n, dtype=object)
                cells[:] = None if value is None else os.fspath(value)
                return cells
            return np.asarray(list(value), dtype=object)

        self.columns: dict[str, np.ndarray] = {
            "image_path": np.asarray(list(image_paths), dtype=object),
            "dataset": broadcast(dataset),
            "subject_id": broadcast(subject_id),
            "clip_id": broadcast(clip_id),
            "frame_index": self.frames,
            "video_path": broadcast(video_path),
            "split": broadcast(split),
            "raw_expression": np.full(n, -1, dtype=np.int64),
            "label_emotion": broadcast(None),
            "status": np.full(n, "ok", dtype=object),
            "error": broadcast(None),
        }
        for name in _FLOAT_COLUMNS:
            self.columns[name] = np.full(n, np.nan)

    def flag(self, positions: np.ndarray | Sequence[int] | int, status: str, message: str) -> None:
        """Record a problem: the message is appended to ``error``, the worse status kept."""
        for i in np.atleast_1d(np.asarray(positions, dtype=np.int64)):
            current = self.columns["status"][i]
            if _STATUS_RANK.get(status, 5) > _STATUS_RANK.get(current, 5):
                self.columns["status"][i] = status
            previous = self.columns["error"][i]
            self.columns["error"][i] = message if previous is None else f"{previous}; {message}"

    def flag_all(self, status: str, message: str) -> None:
        """Record the same problem on every row (e.g. a clip whose labels do not fit)."""
        self.flag(np.arange(self.n), status, message)

    def fill(
        self,
        track: LabelTrack,
        targets: Mapping[str, tuple[str | None, str | None]],
        scale: Scale,
        frames: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copy a track's values into the rows, check them, and normalise the valid ones.

        Parameters
        ----------
        track : LabelTrack
            The label file.
        targets : mapping of str to (str or None, str or None)
            For each track column to use: the raw column and the normalised label column
            (None to skip either).
        scale : Scale
            Valid range and normalisation of every used column.
        frames : numpy.ndarray or None, optional
            ``(N,)`` frame numbers to look up, one per row; default the rows' own.

        Returns
        -------
        values : (N, len(targets)) float64, NaN where absent
        valid : (N, len(targets)) bool
        present : (N,) bool, rows the file has a line for

        Every present row with an invalid value gets status ``invalid_label`` and one message
        naming the file, the line and the values at fault.
        """
        values, locations, present = track.lookup(self.frames if frames is None else frames)
        used = [track.columns.index(c) for c in targets]
        values = values[:, used]
        valid = scale.valid(values)
        for (raw, label), column_values, ok in zip(
            targets.values(), values.T, valid.T, strict=True
        ):
            if raw is not None:
                self.columns[raw][present] = column_values[present]
            if label is not None:
                self.columns[label][ok] = column_values[ok] * scale.factor
        for i in np.flatnonzero(present & ~valid.all(axis=1)):
            where = track.where(locations[i])
            problem = track.problems.get(int(locations[i]))
            if problem is None:
                problem = _describe_row(list(targets), values[i], valid[i], scale)
            self.flag(i, LabelError.status, f"{where}: {problem}")
        return values, valid, present

    def set_expression(self, indices: np.ndarray, valid: np.ndarray) -> None:
        """Store EXPR indices: raw as given (−1 when not a whole number), emotion where valid."""
        raw = self.columns["raw_expression"]
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(indices) & (indices == np.round(indices))
        raw[whole] = indices[whole].astype(np.int64)
        emotions = np.asarray(EMOTIONS, dtype=object)
        self.columns["label_emotion"][valid] = emotions[indices[valid].astype(np.int64)]

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame with exactly the SOURCES columns, in order."""
        return pd.DataFrame({name: self.columns[name] for name in SOURCES.names})


def _describe_row(names: list[str], values: np.ndarray, valid: np.ndarray, scale: Scale) -> str:
    problems = [scale.describe(v) for v, ok in zip(values, valid, strict=True) if not ok]
    if len(names) > 1 and len(problems) == len(names) and len(set(problems)) == 1:
        return f"every value {problems[0]}"
    bad = [n for n, ok in zip(names, valid, strict=True) if not ok]
    return ", ".join(f"{n} {p}" for n, p in zip(bad, problems, strict=True))


def flag_length_mismatch(
    rows: SourceRows, tracks: Sequence[LabelTrack], n_video: int, video: Path
) -> None:
    """Flag every row of a clip when a label file does not label exactly its video's frames.

    Label files of video datasets number frames from 1, one per decoded frame; a file with
    more or fewer frames means the labels cannot be trusted to line up with the video.
    """
    wrong = [t for t in tracks if not _covers(t, n_video)]
    if not wrong:
        return
    first = wrong[0]
    others = f" (and {len(wrong) - 1} other label files)" if len(wrong) > 1 else ""
    rows.flag_all(
        LabelMismatchError.status,
        f"{first.name}: labels for {len(first)} frames, {video.name} has {n_video}{others}",
    )


def _covers(track: LabelTrack, n_video: int) -> bool:
    # Frame numbers are unique, so n of them between 1 and n are exactly 1 … n.
    if len(track) != n_video:
        return False
    return n_video == 0 or (track.frames.min() >= 1 and track.frames.max() == n_video)


def empty_sources() -> pd.DataFrame:
    """A SOURCES frame with no rows (and the right dtypes)."""
    return SourceRows("folder", [], [], subject_id=[], clip_id=None).frame()


def concat_rows(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate per-clip frames into one SOURCES frame (an empty one when none)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_sources()
    return pd.concat(frames, ignore_index=True)
