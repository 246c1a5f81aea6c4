"""Aff-Wild2 (ABAW): cropped, aligned face frames with VA, AU-occurrence and EXPR labels.

Layout of an Aff-Wild2 root (as released for the ABAW challenges)::

    cropped_aligned/VIDEO/00001.jpg, 00002.jpg, …
    VA_Estimation_Challenge/{Train_Set,Validation_Set}/VIDEO.txt    header "valence,arousal"
    AU_Detection_Challenge/{Train_Set,Validation_Set}/VIDEO.txt     header "AU1,AU2,AU4,…,AU26"
    EXPR_Recognition_Challenge/{Train_Set,Validation_Set}/VIDEO.txt header "Neutral,Anger,…"

Line ``k`` after the header labels frame ``0000k.jpg``. Invalid frames are marked −5 (VA) and −1
(AU, EXPR); they get status ``invalid_label``, their raw value kept and their normalised label
NaN. AU labels are 0/1 occurrences: they stay in ``raw_AU{n}`` (no intensity to normalise).

One row per frame image, with the labels of every challenge that covers it merged (frames no
challenge labels, e.g. the test set's, have NaN labels and status ``ok``; label lines without a
frame image, where the face was not detected, are skipped). ``subject_id`` and ``clip_id`` are
the video name (``…_left``/``…_right`` name the two people of a two-person video). ``split`` is
``Train`` or ``Validation``; a video that is in different splits for different challenges gets
e.g. ``VA=Train;AU=Validation``. With ``config.split`` only that split's annotation files are
read, and only the frames they label are imported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from augmentface.datasets.config import ImportConfig
from augmentface.datasets.frames import FRAME_SUFFIXES
from augmentface.datasets.labels import Scale, read_label_table
from augmentface.datasets.rows import SourceRows, concat_rows, require
from augmentface.errors import UsageError

__all__ = [
    "AU_HEADER",
    "CHALLENGES",
    "EXPR_HEADER",
    "FRAMES_DIR",
    "SPLITS",
    "VA_HEADER",
    "import_affwild2",
]

FRAMES_DIR = "cropped_aligned"
VA_HEADER = ("valence", "arousal")
AU_HEADER = tuple(f"AU{n}" for n in (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26))
EXPR_HEADER = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other")
#: Short name -> (folder, header, the value columns of a line).
CHALLENGES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "VA": ("VA_Estimation_Challenge", VA_HEADER, VA_HEADER),
    "AU": ("AU_Detection_Challenge", AU_HEADER, AU_HEADER),
    # The header names the classes; each line holds one class index.
    "EXPR": ("EXPR_Recognition_Challenge", EXPR_HEADER, ("expression",)),
}
#: Split name -> folder.
SPLITS = {"Train": "Train_Set", "Validation": "Validation_Set"}

_VA_SCALE = Scale(-1.0, 1.0, invalid=-5.0)
_AU_SCALE = Scale(0.0, 1.0, integer=True, invalid=-1.0)
_EXPR_SCALE = Scale(0.0, len(EXPR_HEADER) - 1.0, integer=True, invalid=-1.0)


def import_affwild2(root: Path, config: ImportConfig | None = None) -> pd.DataFrame:
    """Import an Aff-Wild2 root: one row per frame image in ``cropped_aligned``.

    Parameters
    ----------
    root : Path
        The folder holding ``cropped_aligned`` and the challenge folders.
    config : ImportConfig, optional
        ``split`` (``"Train"`` or ``"Validation"``), ``every_nth``, ``max_frames_per_clip``.

    Returns
    -------
    pandas.DataFrame
        SOURCES rows; ``frame_index`` is the frame's number (``00012.jpg`` -> 12).

    Raises
    ------
    DatasetLayoutError
        When ``cropped_aligned`` is missing, or a label file's header is not the challenge's.
    UsageError
        For a split other than Train or Validation.
    """
    config = config or ImportConfig()
    root = Path(root).expanduser().resolve()
    frames_dir = require(root / FRAMES_DIR, f"Aff-Wild2's {FRAMES_DIR}/VIDEO/00001.jpg …")
    splits = _splits(config.split)
    files = _label_files(root, splits)
    rows = []
    for video in sorted(p for p in frames_dir.iterdir() if p.is_dir()):
        labelled = {c: files[c][video.name] for c in CHALLENGES if video.name in files[c]}
        if config.split is not None and not labelled:
            continue
        rows.append(_video_rows(root, video, labelled, config))
    return concat_rows(rows)


def _splits(wanted: str | None) -> dict[str, str]:
    if wanted is None:
        return SPLITS
    for name, folder in SPLITS.items():
        if wanted.lower() in (name.lower(), folder.lower()):
            return {name: folder}
    raise UsageError(f"Aff-Wild2 splits are {', '.join(SPLITS)}; got {wanted!r}")


def _label_files(root: Path, splits: dict[str, str]) -> dict[str, dict[str, tuple[str, Path]]]:
    """For each challenge: video name -> (split, label file); the first split listed wins."""
    found: dict[str, dict[str, tuple[str, Path]]] = {c: {} for c in CHALLENGES}
    for challenge, (folder, _, _) in CHALLENGES.items():
        for split, split_folder in splits.items():
            directory = root / folder / split_folder
            if directory.is_dir():
                for path in sorted(directory.glob("*.txt")):
                    found[challenge].setdefault(path.stem, (split, path))
    return found


def _video_rows(
    root: Path, video: Path, labelled: dict[str, tuple[str, Path]], config: ImportConfig
) -> pd.DataFrame:
    images = sorted(
        p for p in video.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.stem.isdigit()
    )
    tracks = {}
    for challenge, (_, path) in labelled.items():
        _, header, columns = CHALLENGES[challenge]
        name = path.relative_to(root).as_posix()
        tracks[challenge] = read_label_table(path, name, columns, header=header)
    numbers = np.asarray([int(p.stem) for p in images], dtype=np.int64)
    if config.split is not None:  # only the frames the selected split labels
        covered = np.zeros(len(numbers), dtype=bool)
        for track in tracks.values():
            covered |= np.isin(numbers, track.frames)
        images = [p for p, keep in zip(images, covered, strict=True) if keep]
        numbers = numbers[covered]
    kept = np.asarray(config.keep(len(images)), dtype=np.int64)
    rows = SourceRows(
        "affwild2",
        [str(images[i]) for i in kept],
        numbers[kept],
        subject_id=video.name,
        clip_id=video.name,
        split=_split_name(labelled),
    )
    if "VA" in tracks:
        va = {
            "valence": ("raw_valence", "label_valence"),
            "arousal": ("raw_arousal", "label_arousal"),
        }
        rows.fill(tracks["VA"], va, _VA_SCALE)
    if "AU" in tracks:
        rows.fill(tracks["AU"], {au: (f"raw_{au}", None) for au in AU_HEADER}, _AU_SCALE)
    if "EXPR" in tracks:
        expr = {"expression": (None, None)}  # raw_expression is an int column: set below
        values, valid, present = rows.fill(tracks["EXPR"], expr, _EXPR_SCALE)
        rows.set_expression(values[:, 0], valid[:, 0] & present)
    return rows.frame()


def _split_name(labelled: dict[str, tuple[str, Path]]) -> str | None:
    splits = {split for split, _ in labelled.values()}
    if len(splits) <= 1:
        return next(iter(splits), None)
    return ";".join(f"{c}={split}" for c, (split, _) in labelled.items())
