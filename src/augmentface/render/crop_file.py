"""The file render hands to blend: a face crop's RGBA pixels, zstd-compressed (``.rgbaz``).

A PNG costs ~14 ms to encode and ~5 ms to decode for a 300² crop, more than the blend it
feeds; zstd at level 1 costs ~1.3 ms and ~0.5 ms for about the same size (measured with
pyarrow's codec on skimage's astronaut), and is as lossless. The layout is a 16-byte header
(``MAGIC``, height and width as little-endian uint32) and the compressed H×W×4 bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa

from augmentface.atomic import atomic_write_bytes
from augmentface.errors import RenderError

SUFFIX = ".rgbaz"
MAGIC = b"AFRGBA01"
_HEADER = struct.Struct("<8sII")
#: Larger than any face crop of an image MediaPipe can take (sides < 32768 px).
_MAX_SIDE = 32768
_CODEC = pa.Codec("zstd", compression_level=1)


def write_crop(path: Path, rgb: np.ndarray, alpha: np.ndarray, *, durable: bool = True) -> None:
    """Write an (H, W, 3) uint8 RGB crop and its (H, W) uint8 alpha atomically (``durable``:
    as :func:`augmentface.atomic.atomic_path`)."""
    if rgb.dtype != np.uint8 or alpha.dtype != np.uint8 or rgb.shape[:2] != alpha.shape:
        raise ValueError(f"expected uint8 (H, W, 3) and (H, W), got {rgb.shape}, {alpha.shape}")
    # cv2.merge interleaves the channels ~6x faster than np.dstack (0.015 against 0.09 ms at
    # 139x118, 0.26 against 1.5 ms at 600x500), to the same bytes.
    rgba = cv2.merge((rgb, alpha))
    header = _HEADER.pack(MAGIC, rgba.shape[0], rgba.shape[1])
    atomic_write_bytes(path, header + _CODEC.compress(rgba, asbytes=True), durable=durable)


def read_crop(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(rgb (H, W, 3), alpha (H, W)) uint8 of a crop written by :func:`write_crop`.

    Raises
    ------
    RenderError
        A missing file, or one that is not a whole crop file.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise RenderError(f"{path}: render crop unreadable ({exc.strerror or exc})") from exc
    if len(data) < _HEADER.size:
        raise RenderError(f"{path}: not a render crop (too short)")
    magic, height, width = _HEADER.unpack_from(data)
    if magic != MAGIC or not (0 < height < _MAX_SIDE and 0 < width < _MAX_SIDE):
        raise RenderError(f"{path}: not a render crop (header {magic!r} {height}x{width})")
    size = height * width * 4
    try:
        raw = _CODEC.decompress(data[_HEADER.size :], decompressed_size=size, asbytes=True)
    except (pa.ArrowException, OSError, ValueError) as exc:  # a cut stream: OSError
        raise RenderError(f"{path}: render crop damaged ({exc})") from exc
    if len(raw) != size:
        raise RenderError(f"{path}: render crop damaged ({len(raw)} of {size} bytes)")
    rgba = np.frombuffer(raw, np.uint8).reshape(height, width, 4)
    # The channels taken apart by OpenCV: ~6x faster than copies of NumPy's strided views.
    return cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB), cv2.extractChannel(rgba, 3)
