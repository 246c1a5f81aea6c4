"""Aff-Wild: in-the-wild videos with per-frame valence and arousal in [−1, 1].

We read the layout of the released Aff-Wild archive::

    videos/train/NAME.mp4 (or .avi)          videos/test/NAME.mp4 (or .avi)
    annotations/train/valence/NAME.txt       one value per line, line k = frame k
    annotations/train/arousal/NAME.txt

(the archive's ``bboxes/`` and ``landmarks/`` folders are not needed). Test videos have no
annotations; their frames are imported unlabelled (NaN labels, status ``ok``), and an
``annotations/test/…`` file is read when present. One row per video frame, decode index
``k − 1`` for line ``k``; ``frame_index`` is ``k`` (numbered from 1 like the lines). A video
whose annotation files hold more or fewer lines than its frames gets status ``label_mismatch``
on every row, as for DISFA. ``subject_id`` and ``clip_id`` are the video name, ``split`` the
folder (``train`` or ``test``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from augmentface.datasets.config import ImportConfig
from augmentface.datasets.frames import format_frame_ref, video_frame_count
from augmentface.datasets.labels import Scale, read_label_table
from augmentface.datasets.rows import SourceRows, concat_rows, flag_length_mismatch, require
from augmentface.errors import DatasetLayoutError, RowError, UsageError

__all__ = ["SPLITS", "VA_SCALE", "VIDEO_SUFFIXES", "import_affwild"]

SPLITS = ("train", "test")
VIDEO_SUFFIXES = (".mp4", ".avi")
VA_SCALE = Scale(-1.0, 1.0)
# Test videos were released without annotations.
_LABELLED_SPLITS = ("train",)


def import_affwild(root: Path, config: ImportConfig | None = None) -> pd.DataFrame:
    """Import an Aff-Wild root: one row per video frame.

    Parameters
    ----------
    root : Path
        The folder holding ``videos/`` and ``annotations/``.
    config : ImportConfig, optional
        ``split`` (``"train"`` or ``"test"``), ``every_nth``, ``max_frames_per_clip``.

    Returns
    -------
    pandas.DataFrame
        SOURCES rows.

    Raises
    ------
    DatasetLayoutError
        When ``videos/train`` and ``videos/test`` are both absent, or a training video has no
        valence or arousal file (the message names the file expected).
    UsageError
        For a split other than train or test.
    """
    config = config or ImportConfig()
    root = Path(root).expanduser().resolve()
    splits = _splits(config.split)
    present = [s for s in splits if (root / "videos" / s).is_dir()]
    if not present:
        raise DatasetLayoutError(
            f"{root / 'videos' / splits[0]}: not found; expected Aff-Wild's "
            f"videos/{{{','.join(SPLITS)}}}/NAME.mp4"
        )
    frames = []
    for split in present:
        videos = sorted(
            p for p in (root / "videos" / split).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES
        )
        frames += [_video_rows(root, split, video, config) for video in videos]
    return concat_rows(frames)


def _splits(wanted: str | None) -> tuple[str, ...]:
    if wanted is None:
        return SPLITS
    if wanted.lower() not in SPLITS:
        raise UsageError(f"Aff-Wild splits are {', '.join(SPLITS)}; got {wanted!r}")
    return (wanted.lower(),)


def _video_rows(root: Path, split: str, video: Path, config: ImportConfig) -> pd.DataFrame:
    tracks = {}
    for dimension in ("valence", "arousal"):
        path = root / "annotations" / split / dimension / f"{video.stem}.txt"
        if split in _LABELLED_SPLITS:
            require(path, f"Aff-Wild's {dimension} annotation of {video.name}")
        if path.is_file():
            name = path.relative_to(root).as_posix()
            tracks[dimension] = read_label_table(path, name, (dimension,))
    try:
        n_video: int | None = video_frame_count(video)
        video_problem = None
    except RowError as exc:  # labels are still recorded, with the video's status
        n_video, video_problem = None, exc
    n_frames = n_video if n_video is not None else max((len(t) for t in tracks.values()), default=1)
    positions = np.asarray(config.keep(n_frames), dtype=np.int64)
    rows = SourceRows(
        "affwild",
        [format_frame_ref(video, int(i)) for i in positions],
        positions + 1,
        subject_id=video.stem,
        clip_id=video.stem,
        video_path=video,
        split=split,
    )
    for dimension, track in tracks.items():
        rows.fill(track, {dimension: (f"raw_{dimension}", f"label_{dimension}")}, VA_SCALE)
    if video_problem is not None:
        rows.flag_all(type(video_problem).status, str(video_problem))
    elif tracks:
        flag_length_mismatch(rows, list(tracks.values()), n_frames, video)
    return rows.frame()
