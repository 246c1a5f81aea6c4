"""Label files: parsing them into values by frame, and the valid range of each kind of value.

An adapter parses each label file into a :class:`LabelTrack` (values by frame number, with the
line each came from) and hands it, with the :class:`Scale` its values are on, to
:meth:`augmentface.datasets.rows.SourceRows.fill`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from augmentface.errors import DatasetLayoutError

__all__ = ["LabelTrack", "Scale", "read_label_table", "track_from_mapping"]


@dataclass(frozen=True)
class Scale:
    """The valid range of one kind of dataset value and how it maps to the normalised label.

    Parameters
    ----------
    lo, hi : float
        Valid range, inclusive, on the dataset's scale.
    factor : float, optional
        Normalised label = value × factor (AFEW-VA: 0.1).
    integer : bool, optional
        Whether only whole numbers are valid.
    invalid : float or None, optional
        The dataset's marker of an unlabelled frame (Aff-Wild2: −5 for VA, −1 for AU/EXPR).
    """

    lo: float
    hi: float
    factor: float = 1.0
    integer: bool = False
    invalid: float | None = None

    def valid(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the values in range (and whole, when ``integer``)."""
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(values) & (values >= self.lo) & (values <= self.hi)
            return ok & (values == np.round(values)) if self.integer else ok

    def describe(self, value: float) -> str:
        """Why ``value`` is not valid, as a phrase ("is 7, outside [0, 5]")."""
        if np.isnan(value):
            return "is not a number"
        if self.invalid is not None and value == self.invalid:
            return f"is {value:g} (the dataset's invalid-frame marker)"
        if not self.lo <= value <= self.hi:
            return f"is {value:g}, outside [{self.lo:g}, {self.hi:g}]"
        return f"is {value:g}, not a whole number"


@dataclass
class LabelTrack:
    """The values of one label file by frame number.

    Attributes
    ----------
    name : str
        The file as error messages name it (path relative to the dataset root).
    columns : tuple of str
        Names of the value columns (e.g. ``("valence", "arousal")``).
    frames : numpy.ndarray
        ``(K,)`` int64 frame numbers, unique, in file order.
    values : numpy.ndarray
        ``(K, C)`` float64 values, NaN where a line could not be parsed.
    locations : numpy.ndarray
        ``(K,)`` int64 numbers formatted by ``location`` into messages (line numbers, keys).
    location : str
        Format of a location, e.g. ``"line {}"`` or ``"frame {:05d}"``.
    problems : dict of int to str
        Why a location could not be parsed, by location number.
    """

    name: str
    columns: tuple[str, ...]
    frames: np.ndarray
    values: np.ndarray
    locations: np.ndarray
    location: str = "line {}"
    problems: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    def lookup(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Values, locations and a presence mask for the given frame numbers.

        Returns
        -------
        values : (N, C) float64, NaN where absent
        locations : (N,) int64, -1 where absent
        present : (N,) bool, whether the file has a line for the frame
        """
        at = pd.Index(self.frames).get_indexer(np.asarray(frames, dtype=np.int64))
        present = at >= 0
        values = np.full((len(at), len(self.columns)), np.nan)
        values[present] = self.values[at[present]]
        locations = np.full(len(at), -1, dtype=np.int64)
        locations[present] = self.locations[at[present]]
        return values, locations, present

    def where(self, location: int) -> str:
        return f"{self.name} {self.location.format(int(location))}"


#: Characters of a label line quoted in a message: enough to see what is wrong, never a
#: whole file's content (a label path may be a link to any file).
EXCERPT_CHARS = 40


def excerpt(line: str) -> str:
    """A short, escaped quote of one line of a label file for an error message."""
    text = line.strip()
    return repr(text[:EXCERPT_CHARS]) + ("…" if len(text) > EXCERPT_CHARS else "")


def read_label_table(
    path: Path,
    name: str,
    columns: Sequence[str],
    *,
    header: Sequence[str] | None = None,
    frame_column: bool = False,
) -> LabelTrack:
    """Parse a comma-separated label file.

    Parameters
    ----------
    path : Path
        The file.
    name : str
        How messages name it (relative to the dataset root).
    columns : sequence of str
        Names of the value columns, in file order.
    header : sequence of str or None, optional
        Expected header line (compared case-insensitively); None when the file has none.
    frame_column : bool, optional
        True when each line starts with its frame number (DISFA's ``frame,intensity``);
        otherwise the k-th data line (1-based) is frame k.

    Raises
    ------
    DatasetLayoutError
        If the file cannot be read or its header is not ``header``.
    """
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DatasetLayoutError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    start = 0
    if header is not None:
        got = [h.strip().lower() for h in lines[0].split(",")] if lines else []
        if got != [h.lower() for h in header]:
            found = excerpt(lines[0]) if lines else "an empty file"
            raise DatasetLayoutError(
                f"{path}: expected the header {','.join(header)!r}, found {found}"
            )
        start = 1
    width = len(columns) + frame_column
    frames, values, locations, problems = [], [], [], {}
    for number, line in enumerate(lines[start:], start=start + 1):
        fields = [f.strip() for f in line.split(",")]
        if fields == [""]:
            continue  # blank lines (a trailing newline, padding) are no frames
        frame = len(frames) + 1
        row = [np.nan] * len(columns)
        if len(fields) != width:
            problems[number] = f"expected {width} comma-separated values, found {len(fields)}"
        else:
            try:
                parsed = [float(f) for f in fields]
            except ValueError:
                problems[number] = f"{excerpt(line)} is not all numbers"
                parsed = None
            if parsed is not None:
                if frame_column and np.isfinite(parsed[0]) and parsed[0] == round(parsed[0]):
                    frame = int(parsed[0])
                    row = parsed[frame_column:]
                elif frame_column:  # values of an unknown frame are not used
                    problems[number] = f"frame number {fields[0]!r} is not a whole number"
                else:
                    row = parsed
        frames.append(frame)
        values.append(row)
        locations.append(number)
    return _track(name, tuple(columns), frames, values, locations, "line {}", problems)


def _track(name, columns, frames, values, locations, location, problems) -> LabelTrack:
    """A LabelTrack with the first occurrence of each frame number kept."""
    frames = np.asarray(frames, dtype=np.int64)
    _, first = np.unique(frames, return_index=True)
    keep = np.sort(first)
    return LabelTrack(
        name=name,
        columns=columns,
        frames=frames[keep],
        values=np.asarray(values, dtype=np.float64).reshape(len(frames), len(columns))[keep],
        locations=np.asarray(locations, dtype=np.int64)[keep],
        location=location,
        problems=problems,
    )


def track_from_mapping(
    name: str, columns: Sequence[str], by_frame: Mapping[int, Sequence[float]], location: str
) -> LabelTrack:
    """A LabelTrack from values already keyed by frame number (e.g. AFEW-VA's JSON)."""
    frames = list(by_frame)
    values = [list(v) for v in by_frame.values()]
    return _track(name, tuple(columns), frames, values, frames, location, {})
