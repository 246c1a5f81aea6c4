"""Affect datasets in, augmented datasets out, in each dataset's own layout.

* :func:`import_dataset` reads a dataset root (DISFA, AFEW-VA, Aff-Wild, Aff-Wild2, or any
  folder of images) into the rows of the source manifest :data:`SOURCES`: one row per frame,
  labels on the dataset's scale (``raw_*``) and on one common scale (``label_*``). Video frames
  are referenced, never extracted (:mod:`augmentface.datasets.frames`).
* :func:`write_layout` writes augmented images and their labels back in a dataset's own layout
  (:mod:`augmentface.datasets.layouts`), so training code written for the dataset reads them
  unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from augmentface.datasets.afew_va import import_afew_va
from augmentface.datasets.affwild import import_affwild
from augmentface.datasets.affwild2 import import_affwild2
from augmentface.datasets.config import ImportConfig
from augmentface.datasets.disfa import import_disfa
from augmentface.datasets.folder import import_folder
from augmentface.datasets.frames import (
    close_videos,
    format_frame_ref,
    parse_frame_ref,
    read_frame,
    video_frame_count,
)
from augmentface.datasets.layouts import LAYOUTS, write_layout
from augmentface.datasets.schema import DATASETS, SOURCES, read_sources, write_sources
from augmentface.errors import UsageError

__all__ = [
    "ADAPTERS",
    "DATASETS",
    "LAYOUTS",
    "SOURCES",
    "ImportConfig",
    "close_videos",
    "format_frame_ref",
    "import_dataset",
    "parse_frame_ref",
    "read_frame",
    "read_sources",
    "video_frame_count",
    "write_layout",
    "write_sources",
]

Adapter = Callable[[Path, ImportConfig | None], pd.DataFrame]

#: Dataset kind -> adapter; the keys are :data:`DATASETS`.
ADAPTERS: dict[str, Adapter] = {
    "disfa": import_disfa,
    "afew-va": import_afew_va,
    "affwild": import_affwild,
    "affwild2": import_affwild2,
    "folder": import_folder,
}


def import_dataset(kind: str, root: str | Path, config: ImportConfig | None = None) -> pd.DataFrame:
    """Read a dataset root into source-manifest rows.

    Parameters
    ----------
    kind : {"disfa", "afew-va", "affwild", "affwild2", "folder"}
        The dataset's layout.
    root : str or Path
        The dataset's root folder.
    config : ImportConfig, optional
        Camera, split, labels CSV and frame subsampling; defaults to ``ImportConfig()``.

    Returns
    -------
    pandas.DataFrame
        One row per frame with exactly the columns of :data:`SOURCES` (write it with
        :func:`write_sources`).

    Raises
    ------
    UsageError
        For an unknown ``kind`` (the message lists the known ones) or a bad config.
    DatasetLayoutError
        When ``root`` does not have the dataset's layout; the message names the file or folder
        expected.
    """
    try:
        adapter = ADAPTERS[kind]
    except KeyError:
        raise UsageError(f"unknown dataset {kind!r}; choose one of {', '.join(ADAPTERS)}") from None
    return adapter(Path(root), config or ImportConfig())
