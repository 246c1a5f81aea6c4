"""Any folder of images, optionally labelled by a CSV.

Every image under the root is a row (found as ``augmentface fit3dmm`` finds them). The optional
CSV (``ImportConfig.labels_csv``) has a header and a ``path`` column (relative to the root) and
any of:

=================  ==========================================================================
``subject_id``     the person (default: the image's parent folder name)
``clip_id``        the clip (default: the parent folder relative to the root, null at the top)
``split``          any split name, filtered by ``ImportConfig.split``
``valence``        [−1, 1]
``arousal``        [−1, 1]
``AU1`` … ``AU26`` FACS intensity 0–5 (the AUs of :data:`~augmentface.datasets.schema.RAW_AUS`)
``emotion``        one of :data:`~augmentface.datasets.schema.EMOTIONS` (any case)
=================  ==========================================================================

An empty cell means "no label". A value out of range, not a number or an unknown emotion gives
the row status ``invalid_label`` and an error naming the CSV line; a CSV path with no file is a
row with status ``missing``. Raw and normalised values are the same (the CSV is on the
normalised scales). ``frame_index`` is the number of a file named by digits only
(``00012.png`` -> 12), else -1.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from augmentface.datasets.config import ImportConfig
from augmentface.datasets.labels import LabelTrack, Scale
from augmentface.datasets.rows import SourceRows, require
from augmentface.datasets.schema import DISFA_AUS, EMOTIONS, RAW_AUS
from augmentface.errors import (
    DatasetLayoutError,
    ImageMissingError,
    LabelError,
    OutsideRootError,
    UsageError,
)
from augmentface.imageio import list_images, manifest_text, not_utf8_error

__all__ = ["AU_SCALE", "VA_SCALE", "import_folder"]

log = logging.getLogger("augmentface")

VA_SCALE = Scale(-1.0, 1.0)
AU_SCALE = Scale(0.0, 5.0)
_CSV_FIRST_DATA_LINE = 2  # line 1 is the header


def import_folder(root: Path, config: ImportConfig | None = None) -> pd.DataFrame:
    """Import every image under ``root``, with labels from ``config.labels_csv`` if given.

    Returns
    -------
    pandas.DataFrame
        SOURCES rows: the images in path order (``every_nth``/``max_frames_per_clip`` applied
        per folder), then CSV paths with no file (status ``missing``).

    Raises
    ------
    DatasetLayoutError
        If ``root`` is not a folder, or the CSV is missing, unreadable or has no ``path``
        column.
    UsageError
        If a split is asked for without a CSV ``split`` column.
    """
    config = config or ImportConfig()
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: not found; expected a folder of images")
    table = _read_csv(root, config.labels_csv) if config.labels_csv is not None else None
    images = _subsample(list_images([root]), config)
    csv_row = {}
    if table is not None:
        paths = [(root / p).resolve() for p in table["path"]]
        for line, count in Counter(paths).items():
            if count > 1:
                log.warning(
                    "%s: %s listed %d times; the first row is used", config.labels_csv, line, count
                )
        csv_row = {p: i for i, p in reversed(list(enumerate(paths)))}
        known = set(images)
        images += [p for p in dict.fromkeys(paths) if p not in known]
    at = np.asarray([csv_row.get(p, -1) for p in images], dtype=np.int64)
    rows = _rows(root, images, table, at)
    if table is not None:
        _fill_labels(rows, table, at, config.labels_csv.name)
    for i, p in enumerate(images):
        if (error := not_utf8_error(p)) is not None:
            rows.flag(i, error.status, str(error))
    for i in np.flatnonzero([not p.is_file() for p in images]):
        rows.flag(i, ImageMissingError.status, f"{manifest_text(str(images[i]))}: no such file")
    if not config.allow_outside_root:
        for i in np.flatnonzero([not _resolved(p).is_relative_to(root) for p in images]):
            rows.flag(
                i,
                OutsideRootError.status,
                f"{manifest_text(str(images[i]))}: outside the dataset root {root} (symlinks "
                "followed); import --allow-outside-root to take it",
            )
    frame = rows.frame()
    if config.split is not None:
        if table is None or "split" not in table.columns:
            raise UsageError("a folder import has a split only through the CSV's split column")
        frame = frame[frame["split"].str.lower() == config.split.lower()]
    return frame.reset_index(drop=True)


def _resolved(path: Path) -> Path:
    """``path`` with its symlinks followed (a loop stays as it is: it fails when read)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return path


def _read_csv(root: Path, csv: Path) -> pd.DataFrame:
    path = require(root / csv, "the labels CSV")  # an absolute csv stays as it is
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DatasetLayoutError(f"{path}: not a readable CSV ({exc})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    if "path" not in table.columns:
        raise DatasetLayoutError(
            f"{path}: no 'path' column; expected a header such as path,subject_id,valence,arousal"
        )
    known = {"path", "subject_id", "clip_id", "split", "valence", "arousal", "emotion"}
    known |= {f"AU{n}" for n in RAW_AUS}
    unused = [c for c in table.columns if c not in known]
    if unused:
        log.warning("%s: columns %s are not imported", path, unused)
    return table


def _subsample(images: list[Path], config: ImportConfig) -> list[Path]:
    """Apply every_nth and max_frames_per_clip within each folder."""
    seen: Counter[Path] = Counter()
    kept = []
    for image in images:
        position = seen[image.parent]
        seen[image.parent] += 1
        if position % config.every_nth == 0:
            rank = position // config.every_nth
            if config.max_frames_per_clip is None or rank < config.max_frames_per_clip:
                kept.append(image)
    return kept


def _rows(root: Path, images: list[Path], table: pd.DataFrame | None, at: np.ndarray) -> SourceRows:
    def from_csv(column: str, default: list[str | None]) -> list[str | None]:
        if table is None or column not in table.columns:
            return default
        cells = table[column].to_numpy()
        return [
            cells[j] if j >= 0 and cells[j] != "" else d for j, d in zip(at, default, strict=True)
        ]

    return SourceRows(
        "folder",
        [manifest_text(str(p)) for p in images],
        [int(p.stem) if p.stem.isdigit() else -1 for p in images],
        subject_id=from_csv("subject_id", [manifest_text(p.parent.name) for p in images]),
        clip_id=from_csv("clip_id", [_clip(root, p) for p in images]),
        split=from_csv("split", [None] * len(images)),
    )


def _clip(root: Path, image: Path) -> str | None:
    """The image's folder relative to the root (None at the top; absolute outside the root)."""
    if image.parent == root:
        return None
    if image.is_relative_to(root):
        return manifest_text(image.parent.relative_to(root).as_posix())
    return manifest_text(str(image.parent))


def _fill_labels(rows: SourceRows, table: pd.DataFrame, at: np.ndarray, name: str) -> None:
    columns = [c for c in ("valence", "arousal") if c in table.columns]
    for column in columns:
        rows.fill(
            _track(table, column, name),
            {column: (f"raw_{column}", f"label_{column}")},
            VA_SCALE,
            frames=at,
        )
    for n in RAW_AUS:
        column = f"AU{n}"
        if column in table.columns:
            label = f"label_{column}" if n in DISFA_AUS else None
            rows.fill(
                _track(table, column, name), {column: (f"raw_{column}", label)}, AU_SCALE, frames=at
            )
    if "emotion" in table.columns:
        emotions = table["emotion"].str.strip().str.lower().to_numpy()
        for i, j in enumerate(at):
            if j < 0 or emotions[j] == "":
                continue
            if emotions[j] in EMOTIONS:
                rows.columns["label_emotion"][i] = emotions[j]
            else:
                rows.flag(
                    i,
                    LabelError.status,
                    f"{name} line {j + _CSV_FIRST_DATA_LINE}: emotion "
                    f"{table['emotion'].iloc[j]!r} is not one of {', '.join(EMOTIONS)}",
                )


def _track(table: pd.DataFrame, column: str, name: str) -> LabelTrack:
    """One CSV column as a track: CSV row number -> value; empty cells are "no label"."""
    cells = table[column].str.strip()
    filled = np.flatnonzero(cells.to_numpy() != "")
    values = pd.to_numeric(cells.iloc[filled], errors="coerce").to_numpy(dtype=np.float64)
    lines = filled + _CSV_FIRST_DATA_LINE
    problems = {
        int(line): f"{column} {cells.iloc[j]!r} is not a number"
        for j, line, value in zip(filled, lines, values, strict=True)
        if np.isnan(value)
    }
    return LabelTrack(
        name=name,
        columns=(column,),
        frames=filled.astype(np.int64),
        values=values.reshape(-1, 1),
        locations=lines.astype(np.int64),
        problems=problems,
    )
