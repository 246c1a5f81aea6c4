"""AFEW-VA: 600 film clips as PNG frames, valence and arousal −10…10 on every frame.

Layout of an AFEW-VA root (as released)::

    001/00000.png, 001/00001.png, …      the clip's frames
    001/001.json                          {"frames": {"00000": {"valence": v, "arousal": a,
                                                                "landmarks": [[x, y] × 68]}, …}}
    002/…

One row per frame image; ``subject_id`` and ``clip_id`` are the clip folder name (AFEW-VA does not
identify actors across clips). Labels are normalised as value / 10. A frame whose JSON entry is
absent gets status ``missing_label``; an unreadable JSON flags the clip's frames
``invalid_label``. The 68 landmarks are not imported (the pipeline detects its own).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augmentface.datasets.config import ImportConfig
from augmentface.datasets.frames import FRAME_SUFFIXES
from augmentface.datasets.labels import Scale, track_from_mapping
from augmentface.datasets.rows import SourceRows, concat_rows, require
from augmentface.errors import DatasetLayoutError, LabelError, MissingLabelError

__all__ = ["VA_SCALE", "import_afew_va", "label_file"]

#: AFEW-VA's scale: −10 … 10, normalised to [−1, 1] by a factor 0.1.
VA_SCALE = Scale(-10.0, 10.0, factor=0.1)


def label_file(root: Path, clip: str) -> Path:
    """Where AFEW-VA keeps the labels of ``clip`` (``NNN/NNN.json``)."""
    return root / clip / f"{clip}.json"


def import_afew_va(root: Path, config: ImportConfig | None = None) -> pd.DataFrame:
    """Import an AFEW-VA root: one row per frame image.

    Parameters
    ----------
    root : Path
        The folder holding the clip folders ``001`` … ``600``.
    config : ImportConfig, optional
        ``every_nth``, ``max_frames_per_clip``; ``split`` is refused.

    Returns
    -------
    pandas.DataFrame
        SOURCES rows; ``frame_index`` is the frame's number (``00012.png`` -> 12).

    Raises
    ------
    DatasetLayoutError
        When the root has no clip folders, or a clip folder has no ``NNN.json``.
    """
    config = config or ImportConfig()
    config.refuse_split("AFEW-VA")
    root = Path(root).expanduser().resolve()
    require(root, "an AFEW-VA root")
    clips = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    if not clips:
        raise DatasetLayoutError(
            f"{root}: no clip folders; expected AFEW-VA's 001/001.json and 001/00000.png …"
        )
    return concat_rows([_clip_rows(root, clip, config) for clip in clips])


def _clip_rows(root: Path, clip: str, config: ImportConfig) -> pd.DataFrame:
    path = require(label_file(root, clip), f"AFEW-VA's labels of clip {clip}")
    frames = sorted(
        p
        for p in (root / clip).iterdir()
        if p.suffix.lower() in FRAME_SUFFIXES and p.stem.isdigit()
    )
    frames = [frames[i] for i in config.keep(len(frames))]
    numbers = [int(p.stem) for p in frames]
    rows = SourceRows("afew-va", [str(p) for p in frames], numbers, subject_id=clip, clip_id=clip)
    name = path.relative_to(root).as_posix()
    try:
        by_frame = _read_entries(path)
    except ValueError as exc:
        rows.flag_all(LabelError.status, f"{name}: {exc}")
        return rows.frame()
    track = track_from_mapping(name, ("valence", "arousal"), by_frame, "frame {:05d}")
    targets = {
        "valence": ("raw_valence", "label_valence"),
        "arousal": ("raw_arousal", "label_arousal"),
    }
    _, _, present = rows.fill(track, targets, VA_SCALE)
    for i in np.flatnonzero(~present):
        rows.flag(i, MissingLabelError.status, f"{name}: no entry for frame {numbers[i]:05d}")
    return rows.frame()


def _read_entries(path: Path) -> dict[int, tuple[float, float]]:
    """(valence, arousal) by frame number; NaN for a value that is not a number.

    Raises
    ------
    ValueError
        If the file is not JSON or lacks the ``frames`` object.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not readable JSON ({exc})") from exc
    entries = data.get("frames") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ValueError('no "frames" object')
    by_frame = {}
    for key, entry in entries.items():
        if not str(key).isdigit():
            continue  # not a frame key; nothing refers to it
        entry = entry if isinstance(entry, dict) else {}
        by_frame[int(key)] = (_number(entry.get("valence")), _number(entry.get("arousal")))
    return by_frame


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)
