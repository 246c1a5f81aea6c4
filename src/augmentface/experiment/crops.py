"""Face crops aligned by the fit's landmarks, decoded on demand into an on-disk cache.

A crop is the similarity transform that puts the eye centres and the mouth centre of the
MediaPipe landmarks on fixed points of a ``size`` x ``size`` square. Crops are decoded one
frame at a time (``datasets.frames.read_frame``: images and ``<video>#frame=<N>`` references)
into a ``.npy`` memory map, so training reads batches from disk and never holds every crop.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from augmentface.atomic import atomic_write_text
from augmentface.datasets.frames import read_frame

#: MediaPipe landmark indices: the corners of each eye and of the mouth.
_LEFT_EYE, _RIGHT_EYE, _MOUTH = (33, 133), (362, 263), (61, 291)
#: Where the eye centres and the mouth centre land, as fractions of the crop's side.
_TEMPLATE = np.array([[0.32, 0.40], [0.68, 0.40], [0.50, 0.78]], dtype=np.float32)


def anchor_points(landmarks_px: np.ndarray) -> np.ndarray:
    """(3, 2) eye centres and mouth centre (px) of (478 or 468, 3) landmarks."""
    xy = np.asarray(landmarks_px, dtype=np.float64)[:, :2]
    return np.stack([xy[list(ids)].mean(axis=0) for ids in (_LEFT_EYE, _RIGHT_EYE, _MOUTH)])


def aligned_crop(image_rgb: np.ndarray, anchors_px: np.ndarray, size: int) -> np.ndarray:
    """The (size, size, 3) uint8 crop of ``image_rgb`` whose anchors sit on the template."""
    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(anchors_px, dtype=np.float32), _TEMPLATE * size, method=cv2.LMEDS
    )
    if matrix is None:
        raise ValueError("degenerate landmarks: no similarity transform")
    return cv2.warpAffine(
        image_rgb, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT
    )


def crop_cache(refs: Sequence[str], anchors_px: np.ndarray, size: int, folder: Path) -> np.ndarray:
    """A read-only memory map (N, size, size, 3) uint8 of the aligned crops of ``refs``.

    The cache file is named by a digest of the references, anchors and size and is complete
    once its marker (``.json``) exists, written atomically after the last crop; an interrupted
    build is redone, a finished one reused.

    Parameters
    ----------
    refs : N frame references (image paths or ``<video>#frame=<N>``).
    anchors_px : (N, 3, 2) anchor points (px) of each frame, :func:`anchor_points`.
    size : crop side (px).
    folder : where the cache lives (``experiment/crops``).
    """
    digest = hashlib.blake2b(digest_size=12)
    digest.update(json.dumps([list(refs), size]).encode())
    digest.update(np.ascontiguousarray(anchors_px, dtype=np.float32).tobytes())
    name = digest.hexdigest()
    data, marker = folder / f"{name}.npy", folder / f"{name}.json"
    if not (marker.exists() and data.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f"{name}.partial.npy"
        out = np.lib.format.open_memmap(
            partial, mode="w+", dtype=np.uint8, shape=(len(refs), size, size, 3)
        )
        for i, (ref, anchors) in enumerate(zip(refs, anchors_px, strict=True)):
            out[i] = aligned_crop(read_frame(ref), anchors, size)
        out.flush()
        del out
        partial.replace(data)
        atomic_write_text(marker, json.dumps({"frames": len(refs), "size": size}))
    return np.load(data, mmap_mode="r")
