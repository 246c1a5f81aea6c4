"""Settings of a dataset import, shared by every adapter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from augmentface.errors import UsageError

__all__ = ["CAMERAS", "ImportConfig"]

CAMERAS = ("left", "right")


@dataclass(frozen=True)
class ImportConfig:
    """What to import from a dataset root.

    Parameters
    ----------
    camera : {"left", "right"}, optional
        DISFA camera whose videos are imported. Default ``"left"``.
    split : str or None, optional
        Keep only this split (case-insensitive): Aff-Wild ``"train"``/``"test"``, Aff-Wild2
        ``"Train"``/``"Validation"`` (only that split's annotation files are read, and only the
        frames they label are kept), folder: the CSV's ``split`` column. DISFA and AFEW-VA have
        no official split and refuse one. None (default) keeps everything.
    labels_csv : Path or None, optional
        Folder import only: CSV of labels (see :mod:`augmentface.datasets.folder`); a relative
        path is taken relative to the dataset root.
    every_nth : int, optional
        Keep every n-th frame of each clip (its 1st, (n+1)-th, ...), to subsample videos whose
        neighbouring frames are nearly identical. Default 1 (all frames).
    max_frames_per_clip : int or None, optional
        Keep at most this many frames per clip (after ``every_nth``). Default None (no limit).
    allow_outside_root : bool, optional
        Import images and labels whose paths resolve outside the root (symlinks followed).
        Default False: they get status ``outside_root`` and are never opened, so a labels CSV
        cannot make a run read ``/etc/shadow`` or another dataset's files.
    """

    camera: Literal["left", "right"] = "left"
    split: str | None = None
    labels_csv: Path | None = None
    every_nth: int = 1
    max_frames_per_clip: int | None = None
    allow_outside_root: bool = False

    def __post_init__(self) -> None:
        if self.camera not in CAMERAS:
            raise UsageError(f"camera must be one of {', '.join(CAMERAS)}, got {self.camera!r}")
        if self.every_nth < 1:
            raise UsageError(f"every_nth must be >= 1, got {self.every_nth}")
        if self.max_frames_per_clip is not None and self.max_frames_per_clip < 1:
            raise UsageError(f"max_frames_per_clip must be >= 1, got {self.max_frames_per_clip}")
        if self.labels_csv is not None:
            object.__setattr__(self, "labels_csv", Path(self.labels_csv))

    def keep(self, n_frames: int) -> range:
        """Positions (0-based, within a clip of ``n_frames``) that ``every_nth`` and
        ``max_frames_per_clip`` keep."""
        kept = range(0, max(n_frames, 0), self.every_nth)
        return kept if self.max_frames_per_clip is None else kept[: self.max_frames_per_clip]

    def refuse_split(self, dataset: str) -> None:
        """Raise UsageError when a split was asked of a dataset that has none."""
        if self.split is not None:
            raise UsageError(f"{dataset} has no official split; drop split={self.split!r}")
