"""DISFA: 27 subjects filmed by two cameras at 20 fps, 12 AUs coded 0–5 on every frame.

Layout of a DISFA root (as released)::

    Videos_LeftCamera/LeftVideoSN001_comp.avi       (Videos_RightCamera/RightVideoSN001_comp.avi)
    ActionUnit_Labels/SN001/SN001_au1.txt           one "frame,intensity" line per frame,
    ActionUnit_Labels/SN001/SN001_au2.txt           frames numbered from 1
    ...

Label frame ``f`` is video decode index ``f − 1``. One row per video frame; the video's frame
count is verified by decoding (see :func:`augmentface.datasets.frames.video_frame_count`). A
subject whose label files hold more or fewer frames than the video keeps all its video frames,
with status ``label_mismatch`` and a message naming the file and both lengths; frames the labels
do not cover have NaN labels. Raw and normalised AU values are the same (DISFA's scale is the
FACS 0–5 intensity).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from augmentface.datasets.config import ImportConfig
from augmentface.datasets.frames import format_frame_ref, video_frame_count
from augmentface.datasets.labels import Scale, read_label_table
from augmentface.datasets.rows import SourceRows, concat_rows, flag_length_mismatch, require
from augmentface.datasets.schema import DISFA_AUS
from augmentface.errors import DatasetLayoutError, RowError

__all__ = ["FPS", "INTENSITY", "LABELS_DIR", "au_file", "import_disfa", "video_file"]

FPS = 20.0
LABELS_DIR = "ActionUnit_Labels"
#: DISFA's intensity scale: whole numbers 0 (absent) to 5 (maximum).
INTENSITY = Scale(0.0, 5.0, integer=True)


def video_file(root: Path, subject: str, camera: str = "left") -> Path:
    """Where DISFA keeps ``subject``'s video from ``camera`` ("left" or "right")."""
    side = camera.capitalize()
    return root / f"Videos_{side}Camera" / f"{side}Video{subject}_comp.avi"


def au_file(root: Path, subject: str, au: int) -> Path:
    """Where DISFA keeps ``subject``'s AU ``au`` intensities."""
    return root / LABELS_DIR / subject / f"{subject}_au{au}.txt"


def import_disfa(root: Path, config: ImportConfig | None = None) -> pd.DataFrame:
    """Import a DISFA root: one row per video frame of the chosen camera.

    Parameters
    ----------
    root : Path
        The DISFA folder (holding ``ActionUnit_Labels`` and ``Videos_LeftCamera``).
    config : ImportConfig, optional
        ``camera``, ``every_nth``, ``max_frames_per_clip``; ``split`` is refused.

    Returns
    -------
    pandas.DataFrame
        SOURCES rows; ``subject_id`` is the ``SN…`` folder name, ``clip_id`` the video's stem,
        ``frame_index`` the label frame number (from 1).

    Raises
    ------
    DatasetLayoutError
        Naming the expected folder, video or AU file that is missing.
    """
    config = config or ImportConfig()
    config.refuse_split("DISFA")
    root = Path(root).expanduser().resolve()
    labels_dir = require(root / LABELS_DIR, f"DISFA's {LABELS_DIR}/SN001/SN001_au1.txt …")
    require(video_file(root, "SN001", config.camera).parent, f"DISFA's {config.camera} videos")
    subjects = sorted(p.name for p in labels_dir.iterdir() if p.is_dir())
    if not subjects:
        raise DatasetLayoutError(f"{labels_dir}: no subject folders; expected SN001/SN001_au1.txt")
    return concat_rows([_subject_rows(root, s, config) for s in subjects])


def _subject_rows(root: Path, subject: str, config: ImportConfig) -> pd.DataFrame:
    video = require(video_file(root, subject, config.camera), f"the video of {subject}")
    tracks = {}
    for au in DISFA_AUS:
        path = require(au_file(root, subject, au), f"DISFA's AU{au} labels of {subject}")
        if not config.allow_outside_root and not path.resolve().is_relative_to(root):
            raise DatasetLayoutError(
                f"{path}: a link to {path.resolve()}, outside the dataset root; it is not read "
                "(import --allow-outside-root to follow it)"
            )
        name = path.relative_to(root).as_posix()
        tracks[au] = read_label_table(path, name, (f"AU{au}",), frame_column=True)
    try:
        n_video: int | None = video_frame_count(video)
        video_problem = None
    except RowError as exc:  # the labels are still recorded, with the video's status
        n_video, video_problem = None, exc
    n_frames = n_video if n_video is not None else max(len(t) for t in tracks.values())
    positions = np.asarray(config.keep(n_frames), dtype=np.int64)
    rows = SourceRows(
        "disfa",
        [format_frame_ref(video, int(i)) for i in positions],
        positions + 1,
        subject_id=subject,
        clip_id=video.stem,
        video_path=video,
    )
    for au, track in tracks.items():
        rows.fill(track, {f"AU{au}": (f"raw_AU{au}", f"label_AU{au}")}, INTENSITY)
    if video_problem is not None:
        rows.flag_all(type(video_problem).status, str(video_problem))
    else:
        flag_length_mismatch(rows, list(tracks.values()), n_frames, video)
    return rows.frame()
