"""The source manifest: one row per frame of an imported dataset, labels raw and normalised.

Every adapter (:mod:`augmentface.datasets.disfa`, ...) returns rows in this shape, and the
``import`` step writes them with :func:`write_sources`. The columns are a contract: later stages
read ``image_path`` (a *frame reference*, see :mod:`augmentface.datasets.frames`), the subject
(kept through augmentation so that subject-independent splits cannot leak) and the ``label_*``
columns, which are on one scale whatever the dataset:

* ``label_AU{n}``: FACS intensity 0–5 for the twelve DISFA AUs, NaN when the dataset gives no
  intensity (Aff-Wild2's 0/1 occurrences stay in ``raw_AU{n}``);
* ``label_valence``, ``label_arousal``: [−1, 1];
* ``label_emotion``: one of :data:`EMOTIONS`.

``raw_*`` columns hold the values exactly as the dataset's files give them, invalid markers
included (Aff-Wild2's −5 and −1), so nothing is lost by normalising. A frame whose label is
invalid is kept with a ``status`` other than ``ok`` (``invalid_label``, ``label_mismatch``,
``missing_label``; ``missing``/``unreadable`` for a video that cannot be opened) and an
``error`` naming the label file and line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from augmentface.manifest import Column, Manifest, Schema, read_manifest, write_manifest

__all__ = [
    "DATASETS",
    "DISFA_AUS",
    "EMOTIONS",
    "LABEL_AU_COLUMNS",
    "RAW_AUS",
    "RAW_AU_COLUMNS",
    "RUN_FIRST",
    "SOURCES",
    "read_sources",
    "write_sources",
]

#: Dataset names accepted by :func:`augmentface.datasets.import_dataset`.
DATASETS: tuple[str, ...] = ("disfa", "afew-va", "affwild", "affwild2", "folder")

#: AUs DISFA codes with intensities 0–5: the AUs of the normalised ``label_AU{n}`` columns.
DISFA_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)

#: Every AU any supported dataset labels (DISFA's and Aff-Wild2's): the ``raw_AU{n}`` columns.
RAW_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 15, 17, 20, 23, 24, 25, 26)

#: The normalised emotion categories, in Aff-Wild2's EXPR index order.
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "anger",
    "disgust",
    "fear",
    "happiness",
    "sadness",
    "surprise",
    "other",
)

RAW_AU_COLUMNS: tuple[str, ...] = tuple(f"raw_AU{n}" for n in RAW_AUS)
LABEL_AU_COLUMNS: tuple[str, ...] = tuple(f"label_AU{n}" for n in DISFA_AUS)

#: The command that writes the source manifest, quoted when it is missing.
RUN_FIRST = "augmentface import"

SOURCES = Schema(
    stage="import",
    version=1,
    key=("image_path",),
    columns=(
        Column(
            "image_path",
            "string",
            "Frame reference: absolute image path, or '<absolute video path>#frame=<N>' "
            "with N the 0-based decode index",
            nullable=False,
        ),
        Column("dataset", "string", f"Source dataset: {', '.join(DATASETS)}", nullable=False),
        Column(
            "subject_id",
            "string",
            "Person (DISFA 'SN001', AFEW-VA clip, Aff-Wild(2) video name, folder name)",
            nullable=False,
        ),
        Column("clip_id", "string", "Clip (video or frame folder) the frame belongs to"),
        Column(
            "frame_index",
            "int64",
            "The dataset's own frame number, as in its label files (-1 for a still)",
            nullable=False,
        ),
        Column("video_path", "string", "Absolute video path for a video frame, else null"),
        Column("split", "string", "Dataset split (e.g. 'Train', 'Validation', 'train'), if any"),
        *(
            Column(
                f"raw_AU{n}",
                "float64",
                f"AU{n} as the dataset gives it (DISFA 0–5, Aff-Wild2 0/1, -1 invalid)",
                unit="dataset scale",
            )
            for n in RAW_AUS
        ),
        Column(
            "raw_valence",
            "float64",
            "Valence as the dataset gives it (AFEW-VA -10..10, Aff-Wild(2) -1..1, -5 invalid)",
            unit="dataset scale",
        ),
        Column(
            "raw_arousal",
            "float64",
            "Arousal as the dataset gives it (AFEW-VA -10..10, Aff-Wild(2) -1..1, -5 invalid)",
            unit="dataset scale",
        ),
        Column(
            "raw_expression",
            "int64",
            "Aff-Wild2 EXPR index (0 Neutral … 7 Other), -1 where none or invalid",
            nullable=False,
        ),
        *(
            Column(
                f"label_AU{n}",
                "float64",
                f"AU{n} intensity, NaN when the dataset gives no valid intensity",
                unit="FACS 0–5",
            )
            for n in DISFA_AUS
        ),
        Column("label_valence", "float64", "Valence, NaN when absent or invalid", unit="[-1, 1]"),
        Column("label_arousal", "float64", "Arousal, NaN when absent or invalid", unit="[-1, 1]"),
        Column(
            "label_emotion",
            "string",
            f"Emotion category ({', '.join(EMOTIONS)}), null when absent or invalid",
        ),
    ),
)


def write_sources(
    df: pd.DataFrame, path: str | os.PathLike[str], *, params: Mapping[str, Any]
) -> None:
    """Validate the source rows and write them atomically as the ``import`` manifest.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows with exactly the columns of :data:`SOURCES` (as the adapters return them).
    path : str or os.PathLike
        Target Parquet file; its folder is created if needed.
    params : mapping
        The import's parameters (dataset kind, root, config), stored as provenance.

    Raises
    ------
    UsageError
        If ``df`` does not match :data:`SOURCES` (columns, duplicate frame references, nulls)
        or ``params`` is not JSON-serialisable.
    """
    write_manifest(path, df, SOURCES, params=params, seed=None, face_model_id=None)


def read_sources(path: str | os.PathLike[str]) -> Manifest:
    """Read a source manifest written by :func:`write_sources`.

    Returns
    -------
    Manifest
        ``.df`` holds the rows in :data:`SOURCES` column order, ``.meta`` the provenance.

    Raises
    ------
    MissingManifestError
        If ``path`` does not exist (the message says to run :data:`RUN_FIRST`).
    UsageError
        If the file is another stage's manifest or does not match :data:`SOURCES`.
    """
    return read_manifest(path, SOURCES, run_first=RUN_FIRST)
