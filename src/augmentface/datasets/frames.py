"""Frame references: one string names a still image or one frame of a video, decoded on demand.

A *frame reference* is what the ``image_path`` column of every manifest holds:

* a still image: its absolute path, e.g. ``/data/afew/001/00000.png``;
* a video frame: ``"<absolute video path>#frame=<N>"`` with ``N`` the 0-based decode index
  (the N-th frame OpenCV decodes from the start), e.g. ``/data/disfa/LeftVideoSN001.avi#frame=0``.

Video datasets (DISFA, Aff-Wild) hold millions of frames, so frames are never extracted to disk:
:func:`read_frame` decodes the one asked for. Stages read frames in manifest order, i.e. mostly
consecutive frames of one video, so a few ``cv2.VideoCapture`` objects are kept open (least
recently used closed first) and a request for the next frame, or one a few frames ahead, just
decodes forward; only a jump backwards or far ahead seeks.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from augmentface.errors import ImageMissingError, ImageReadError, ImageTooLargeError
from augmentface.imageio import DEFAULT_MAX_PIXELS, read_image

__all__ = [
    "FRAME_MARK",
    "FRAME_SUFFIXES",
    "close_videos",
    "format_frame_ref",
    "frame_name",
    "parse_frame_ref",
    "read_frame",
    "video_frame_count",
]

#: Suffixes of the numbered frame images of a clip folder (AFEW-VA, Aff-Wild2's
#: cropped_aligned, and the layouts written back).
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")

#: Separator between a video path and its decode index in a frame reference.
FRAME_MARK = "#frame="

# Open videos kept: a stage reads one video at a time, a few spare ones cover interleaved reads
# without holding a decoder (tens of MB for HD video) per file of a large dataset.
_CACHE_SIZE = 4
# Decoding forward is cheaper than a seek (which decodes from the previous key frame anyway)
# for small gaps, e.g. every_nth subsampling.
_MAX_FORWARD_GAP = 16


def format_frame_ref(video_path: str | os.PathLike[str], index: int) -> str:
    """Return the frame reference of decode index ``index`` of a video.

    Parameters
    ----------
    video_path : str or os.PathLike
        The video file; made absolute (without resolving links).
    index : int
        0-based decode index, ``>= 0``.

    Raises
    ------
    ValueError
        If ``index`` is negative.
    """
    if int(index) < 0:
        raise ValueError(f"frame index must be >= 0, got {index}")
    return f"{Path(video_path).absolute()}{FRAME_MARK}{int(index)}"


def parse_frame_ref(ref: str | os.PathLike[str]) -> tuple[Path, int | None]:
    """Split a frame reference into the file and the decode index (None for a still image).

    A path that merely contains ``#frame=`` followed by something other than digits is taken
    as a still image path.
    """
    text = os.fspath(ref)
    path, mark, index = text.rpartition(FRAME_MARK)
    if mark and path and index.isdigit():
        return Path(path), int(index)
    return Path(text), None


def frame_name(ref: str | os.PathLike[str]) -> str:
    """A short file-name-safe name, unique per frame reference: the file's stem, the frame
    number of a video frame, and a hash of the whole reference (``img-3f2a1c``,
    ``LeftVideoSN001_comp-fr000012-9b0e44``)."""
    path, index = parse_frame_ref(ref)
    digest = hashlib.sha1(os.fspath(ref).encode()).hexdigest()[:6]
    stem = path.stem if index is None else f"{path.stem}-fr{index:06d}"
    return f"{stem}-{digest}"


def read_frame(ref: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode the frame a reference names.

    Parameters
    ----------
    ref : str or os.PathLike
        Frame reference (see the module docstring).
    max_pixels : int, optional
        Largest ``width * height`` accepted, checked before decoding.

    Returns
    -------
    image_rgb : numpy.ndarray
        ``(H, W, 3)`` ``uint8`` RGB array. Still images go through
        :func:`augmentface.imageio.read_image` (EXIF orientation applied).

    Raises
    ------
    ImageMissingError
        The file does not exist.
    ImageReadError
        The file cannot be decoded, or the index is past the end of the video; the message
        names the file and the frame.
    ImageTooLargeError
        The frame has more than ``max_pixels`` pixels.
    """
    path, index = parse_frame_ref(ref)
    if index is None:
        return read_image(path, max_pixels=max_pixels)
    return _VIDEOS.read(path, index, max_pixels)


def video_frame_count(path: str | os.PathLike[str]) -> int:
    """Return the number of frames a video decodes to, verified rather than trusted.

    The container's ``CAP_PROP_FRAME_COUNT`` is checked by seeking to the last frame it
    promises and to one past it; when either check fails (some containers store an estimate)
    the frames are counted by decoding the whole video.

    Raises
    ------
    ImageMissingError
        The file does not exist.
    ImageReadError
        OpenCV cannot open the file as a video.
    """
    capture = _open_capture(Path(path))
    try:
        reported = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if reported > 0:
            capture.set(cv2.CAP_PROP_POS_FRAMES, reported - 1)
            if capture.grab() and not capture.grab():
                return reported
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        count = 0
        while capture.grab():
            count += 1
        return count
    finally:
        capture.release()


def close_videos() -> None:
    """Release every video :func:`read_frame` keeps open (they are reopened on demand)."""
    _VIDEOS.clear()


def _open_capture(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise ImageMissingError(f"{path}: no such file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise ImageReadError(f"{path}: cannot open as a video")
    return capture


class _OpenVideo:
    """One open video and the decode index its next ``read()`` returns (None: unknown)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.capture = _open_capture(path)
        self.width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.reported_frames = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.next_index: int | None = 0

    def read(self, index: int) -> np.ndarray:
        where = f"{self.path}{FRAME_MARK}{index}"
        gap = None if self.next_index is None else index - self.next_index
        if gap is None or not 0 <= gap <= _MAX_FORWARD_GAP:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            gap = 0
        ok = all(self.capture.grab() for _ in range(gap))
        ok, frame_bgr = self.capture.read() if ok else (False, None)
        if not ok or frame_bgr is None:
            self.next_index = None  # position unknown after a failure: seek next time
            if index >= self.reported_frames:
                raise ImageReadError(
                    f"{where}: frame {index} is past the end of the video "
                    f"({self.reported_frames} frames)"
                )
            raise ImageReadError(f"{where}: cannot decode frame {index}")
        self.next_index = index + 1
        return np.ascontiguousarray(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))

    def release(self) -> None:
        self.capture.release()


class _VideoCache:
    """Least-recently-used open videos; one lock, since a VideoCapture is not thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.videos: OrderedDict[Path, _OpenVideo] = OrderedDict()

    def read(self, path: Path, index: int, max_pixels: int) -> np.ndarray:
        with self.lock:
            video = self.videos.pop(path, None) or _OpenVideo(path)
            self.videos[path] = video  # most recently used last
            while len(self.videos) > self.size:
                self.videos.popitem(last=False)[1].release()
            pixels = video.width * video.height
            if pixels > max_pixels:
                raise ImageTooLargeError(
                    f"{path}{FRAME_MARK}{index}: frames are {video.width}x{video.height} = "
                    f"{pixels:,} pixels, above the limit of {max_pixels:,}"
                )
            return video.read(index)

    def clear(self) -> None:
        with self.lock:
            while self.videos:
                self.videos.popitem()[1].release()

    def forget(self) -> None:
        # In a forked child the captures share file offsets with the parent's: drop them
        # without touching them, and start with a fresh lock (the parent's may be held).
        self.lock = threading.Lock()
        self.videos = OrderedDict()


_VIDEOS = _VideoCache(_CACHE_SIZE)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_VIDEOS.forget)
