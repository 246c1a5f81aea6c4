"""Write a sequence of frames as a video file, atomically (OpenCV's writer)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from augmentface.atomic import atomic_path
from augmentface.errors import UsageError

#: FourCC per container suffix: mp4v plays everywhere OpenCV's bundled FFmpeg writes;
#: MJPG keeps AVI frames independently decodable.
FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}


def write_video(
    path: str | os.PathLike[str], frames_rgb: Sequence[np.ndarray], fps: float = 25.0
) -> Path:
    """Write ``frames_rgb`` ((H, W, 3) uint8 RGB, all one size) as ``path`` (.mp4 or .avi).

    The file appears only when complete (written beside it, then renamed).

    Raises
    ------
    UsageError
        No frames, frames of different sizes, an unknown suffix, or a writer OpenCV cannot
        open.
    """
    path = Path(path)
    if path.suffix.lower() not in FOURCC:
        raise UsageError(f"{path}: video suffix must be one of {', '.join(FOURCC)}")
    if not len(frames_rgb):
        raise UsageError(f"{path}: no frames to write")
    height, width = frames_rgb[0].shape[:2]
    if any(f.shape[:2] != (height, width) for f in frames_rgb):
        raise UsageError(f"{path}: frames differ in size")
    if not fps > 0:
        raise UsageError(f"fps must be > 0, got {fps}")
    with atomic_path(path) as tmp:
        fourcc = cv2.VideoWriter_fourcc(*FOURCC[path.suffix.lower()])
        writer = cv2.VideoWriter(str(tmp), fourcc, float(fps), (width, height))
        if not writer.isOpened():
            raise UsageError(f"{path}: OpenCV cannot open a video writer for this file")
        try:
            for frame in frames_rgb:
                writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    return path
