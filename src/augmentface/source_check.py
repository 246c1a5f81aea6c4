"""Has a source file changed since it was fitted? A fingerprint recorded by fit3dmm, checked
by render and blend before they use the file, so an output is never made of an old fit on a
new photo (and labelled ``ok``).

A fingerprint is the file's size, its modification time (ns) and a digest of its content: all
of it for a photo, the first and last MiB for a larger file (a dataset's videos are
gigabytes; a replaced video differs in size, time or its ends). Cheap enough for every row:
workers compute a file's fingerprint once (:func:`fingerprint` caches by path, size and time).
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat as stat_module
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augmentface.datasets.frames import parse_frame_ref
from augmentface.errors import SourceChangedError

#: Files up to this size are hashed whole; larger ones by their first and last block.
WHOLE_FILE_BYTES = 4 << 20
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Fingerprint:
    """What identifies a source file's content: size (bytes), mtime (ns), content digest."""

    size_bytes: int
    mtime_ns: int
    digest: str


def fingerprint(image_path: str) -> Fingerprint:
    """The fingerprint of the file behind ``image_path`` (a frame reference's video)."""
    path = Path(parse_frame_ref(image_path)[0])
    stat = os.stat(path)
    if not stat_module.S_ISREG(stat.st_mode):
        # never open it: reading a named pipe blocks until some other process writes to it
        raise OSError(f"{path}: not a regular file")
    return _fingerprint(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _fingerprint(path: str, size: int, mtime_ns: int) -> Fingerprint:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        if size <= WHOLE_FILE_BYTES:
            digest.update(handle.read())
        else:
            digest.update(handle.read(_BLOCK))
            handle.seek(size - _BLOCK)
            digest.update(handle.read(_BLOCK))
    return Fingerprint(size, mtime_ns, digest.hexdigest())


#: The fits columns that hold a source's fingerprint.
SOURCE_COLUMNS = ("source_size_bytes", "source_mtime_ns", "source_digest")


def fit_fingerprint(row: Mapping[str, Any], prefix: str = "") -> Fingerprint:
    """The fingerprint a fits row recorded (its columns ``source_*``, under ``prefix``)."""
    return Fingerprint(
        int(row[f"{prefix}source_size_bytes"]),
        int(row[f"{prefix}source_mtime_ns"]),
        str(row[f"{prefix}source_digest"]),
    )


def check_source(image_path: str, recorded: Fingerprint) -> None:
    """Raise :class:`SourceChangedError` unless the file still has ``recorded``'s content.

    A touched file (same content, new time) is accepted: the digest decides.
    """
    try:
        now = fingerprint(image_path)
    except OSError as exc:
        raise SourceChangedError(f"{image_path}: source gone since it was fitted ({exc})") from exc
    if now.size_bytes != recorded.size_bytes or now.digest != recorded.digest:
        raise SourceChangedError(
            f"{image_path}: source changed since it was fitted (size {recorded.size_bytes} -> "
            f"{now.size_bytes} bytes); run fit3dmm again"
        )
