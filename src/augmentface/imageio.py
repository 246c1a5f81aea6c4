"""Read any photo as an upright 8-bit RGB array; write arrays back atomically.

Every stage reads its inputs through :func:`read_image`, so the rules about what a "pixel" is live
here and nowhere else:

* Format comes from the file's content, never its extension (datasets contain WebP files named
  ``.jpg``).
* The EXIF orientation is applied, so the array is the photo as a viewer shows it.
* Whatever the mode on disk (grey, palette, alpha, CMYK, 16-bit, float) the result is an
  ``(H, W, 3)`` ``uint8`` RGB array: downstream code never branches on channels or depth.
* The pixel count is checked from the header *before* any pixel is decoded, so a tiny file that
  declares a gigantic canvas costs nothing (decompression-bomb guard).
* Failures become the typed row errors of :mod:`augmentface.errors` with a precise reason, so a
  bad file ends one manifest row instead of the run.

Writes encode with OpenCV (faster than Pillow for JPEG and PNG) and go through
:func:`augmentface.atomic.atomic_write_bytes`, so a killed run never leaves a torn image.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps

from augmentface.atomic import atomic_write_bytes
from augmentface.errors import ImageMissingError, ImageReadError, ImageTooLargeError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "encode_image",
    "list_images",
    "read_image",
    "read_image_size",
    "write_image_atomic",
]

#: Suffixes of the files a folder search takes for images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

DEFAULT_MAX_PIXELS = 100_000_000
"""Largest ``width * height`` :func:`read_image` decodes by default (a 100 MP photo is ~300 MB
as RGB; anything above is far beyond what face augmentation needs and likely hostile)."""

# Exceptions Pillow (and the file system) raise for a file that is there but is not a decodable
# image: UnidentifiedImageError and "image file is truncated" are OSErrors, some plugins signal
# malformed headers with SyntaxError / struct.error, an unsupported mode conversion is a
# ValueError.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error)

# 16-bit grey modes, which Pillow's own convert("L") clips at 255 instead of scaling.
_HIGH_BIT_GREY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})

# EXIF orientations 5-8 include a quarter turn, so the upright width is the stored height.
_QUARTER_TURN_ORIENTATIONS = frozenset({5, 6, 7, 8})

# Transparent areas become mid-grey: neither black nor white, so they read as neutral background
# to face detectors and colour statistics.
_BACKGROUND_RGBA = (128, 128, 128, 255)

_ALLOWED_SUFFIXES = (".jpeg", ".jpg", ".png", ".webp")

# Pillow reads its bomb limit from the module global Image.MAX_IMAGE_PIXELS inside Image.open,
# before the caller ever sees the size. This lock serialises our brief suspension of that check
# (see _pil_bomb_check_suspended) so concurrent reads cannot restore each other's saved value.
_PIL_LIMIT_LOCK = threading.Lock()


def read_image(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as an upright 8-bit RGB array.

    Parameters
    ----------
    path : str or os.PathLike
        Image file. Its format is detected from the content (a WebP file named ``.jpg`` works).
        The file is opened read-only and never modified.
    max_pixels : int, optional
        Largest ``width * height`` accepted, checked from the header before decoding.

    Returns
    -------
    image_rgb : numpy.ndarray
        ``(H, W, 3)`` ``uint8`` C-contiguous, writable RGB array, rotated/flipped per the EXIF
        orientation so that ``H`` and ``W`` are the upright height and width in pixels.
        Conversions from other modes:

        - grey, palette, CMYK (including Adobe's inverted CMYK JPEGs): Pillow's conversion;
        - any alpha or transparency key: composited over mid-grey (128, 128, 128), so transparent
          areas are neutral rather than black;
        - 16-bit grey (``I;16*``, ``I``) and 16-bit RGB(A) PNGs: the high byte (``value >> 8``),
          which is what Pillow itself does for 16-bit colour, so both depths agree;
        - 32-bit float (``F``): values taken on the 0-255 scale, clipped (Pillow's conversion).

    Raises
    ------
    ImageMissingError
        ``path`` does not exist or is not a regular file (e.g. a directory).
    ImageReadError
        The file is empty, not an image, truncated or otherwise undecodable.
    ImageTooLargeError
        The header declares more than ``max_pixels`` pixels.
    ValueError
        ``max_pixels`` is not positive.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive pixel count, got {max_pixels!r}")
    source = Path(path)
    with _open_header(source) as image:
        _check_pixel_budget(source, image, max_pixels)
        # Decodes the pixels (exif_transpose loads first), then turns them upright in place so
        # no second full-size copy is made.
        ImageOps.exif_transpose(image, in_place=True)
        return _to_rgb_array(image)


def read_image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Return an image's upright size from its header, without decoding pixels.

    Parameters
    ----------
    path : str or os.PathLike
        Image file (format detected from content, opened read-only).

    Returns
    -------
    width, height : tuple of int
        Size in pixels after the EXIF orientation, i.e. the ``(W, H)`` of
        ``read_image(path).shape[:2]`` reversed. Orientations 5-8 swap the stored size. For PNG
        only an eXIf chunk placed before the pixel data is seen (reading a later one would
        require decoding the whole image).

    Raises
    ------
    ImageMissingError
        ``path`` does not exist or is not a regular file.
    ImageReadError
        The file is empty, not an image, or its header or EXIF block is unreadable.
    """
    source = Path(path)
    with _open_header(source) as image:
        width, height = image.size
        # The base-class getexif reads only metadata already parsed from the header; PNG's
        # override would decode every pixel to look for a trailing eXIf chunk.
        orientation = Image.Image.getexif(image).get(ExifTags.Base.Orientation, 1)
    if orientation in _QUARTER_TURN_ORIENTATIONS:
        return height, width
    return width, height


def encode_image(image_rgb: np.ndarray, suffix: str, *, jpeg_quality: int = 95) -> bytes:
    """Encode an RGB array as JPEG, PNG or WebP bytes.

    Parameters
    ----------
    image_rgb : numpy.ndarray
        ``(H, W, 3)`` ``uint8`` RGB array, ``H, W >= 1``.
    suffix : str
        Target format as a file suffix: ``.jpg``, ``.jpeg``, ``.png`` or ``.webp`` (any case).
    jpeg_quality : int, optional
        Quality 1-100 of the lossy formats (JPEG and WebP). PNG is lossless and written with
        zlib level 1: somewhat larger files than OpenCV's default level, encoded much faster.

    Returns
    -------
    bytes
        The encoded file content.

    Raises
    ------
    ValueError
        Bad array, unknown suffix, quality out of range, or OpenCV refused to encode (e.g. a
        JPEG side above 65500 pixels).
    """
    _require_rgb_uint8(image_rgb)
    extension = suffix.lower()
    params = _encode_params(extension, jpeg_quality)
    # OpenCV expects BGR. cvtColor swaps the channels in one pass (~0.04 ms at 512x512); a
    # copy of the reversed view (np.ascontiguousarray(image_rgb[..., ::-1])) took ~2.1 ms,
    # more than the JPEG encode itself.
    image_bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(extension, image_bgr, params)
    if not ok:
        height, width = image_rgb.shape[:2]
        raise ValueError(f"OpenCV could not encode a {width}x{height} image as {suffix}")
    return buffer.tobytes()


def write_image_atomic(
    path: str | os.PathLike[str],
    image_rgb: np.ndarray,
    *,
    jpeg_quality: int = 95,
    durable: bool = True,
) -> None:
    """Write an RGB array to ``path`` atomically, in the format named by its suffix.

    The image is fully encoded in memory before the file system is touched, so any failure
    leaves an existing file at ``path`` exactly as it was.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its suffix (``.jpg``, ``.jpeg``, ``.png``, ``.webp``) picks the format.
        Missing parent folders are created.
    image_rgb : numpy.ndarray
        ``(H, W, 3)`` ``uint8`` RGB array.
    jpeg_quality : int, optional
        Quality 1-100 for JPEG and WebP.
    durable : bool, optional
        False leaves the fsync to the caller (:func:`augmentface.atomic.atomic_path`).

    Raises
    ------
    ValueError
        As :func:`encode_image`.
    """
    data = encode_image(image_rgb, Path(path).suffix, jpeg_quality=jpeg_quality)
    atomic_write_bytes(path, data, durable=durable)


@contextlib.contextmanager
def _open_header(path: Path) -> Iterator[ImageFile.ImageFile]:
    """Open ``path`` lazily (header parsed, no pixels decoded) with errors made typed.

    Decoding done by the caller inside the ``with`` block is covered too: an exception raised
    there is thrown back in at the ``yield`` and translated by ``_typed_decode_errors``.
    """
    _require_nonempty_file(path)
    with _typed_decode_errors(path), open(path, "rb") as handle:
        with _pil_bomb_check_suspended():
            image = Image.open(handle)
        with image:
            yield image


def _require_nonempty_file(path: Path) -> None:
    """Raise the typed error for a missing, non-regular or zero-byte ``path``."""
    if not path.exists():
        raise ImageMissingError(f"{path}: no such file")
    if not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file"
        raise ImageMissingError(f"{path}: no such file ({kind})")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")


@contextlib.contextmanager
def _typed_decode_errors(path: Path) -> Iterator[None]:
    """Translate Pillow's and the OS's exceptions into the row errors of augmentface."""
    try:
        yield
    except Image.DecompressionBombError as exc:
        # Only reachable when the caller's max_pixels exceeds a limit Pillow enforces while
        # decoding (e.g. TIFF tiles): still a size refusal, so keep the size status.
        raise ImageTooLargeError(f"{path}: {exc}") from exc
    except Image.UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image (unrecognised format)") from None
    except _DECODE_ERRORS as exc:
        raise ImageReadError(f"{path}: {_failure_reason(exc)}") from exc


def _failure_reason(exc: Exception) -> str:
    """Word a decode or I/O failure for the manifest's ``error`` column."""
    message = str(exc)
    if "truncated" in message.lower():
        # Pillow words this several ways ("image file is truncated (19 bytes not processed)",
        # "Truncated File Read"); one stable reason makes manifests easy to filter.
        return "truncated image data"
    if isinstance(exc, OSError) and exc.strerror:
        # An errno-carrying OSError comes from the file system (permissions, I/O), not Pillow.
        return f"cannot read file ({exc.strerror})"
    return f"cannot decode image ({message or type(exc).__name__})"


@contextlib.contextmanager
def _pil_bomb_check_suspended() -> Iterator[None]:
    """Disable Pillow's own bomb check for the duration of ``Image.open`` only.

    ``Image.open`` compares the header's size with ``Image.MAX_IMAGE_PIXELS`` and raises its own
    ``DecompressionBombError`` (or warns) before returning, which would pre-empt our limit and
    error type. The global is restored as soon as the header is parsed, so Pillow's limit is
    back in force for decoding and for every other caller; no pixels are decoded while it is
    lifted, and the lock keeps concurrent reads from interleaving save and restore.
    """
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _check_pixel_budget(path: Path, image: Image.Image, max_pixels: int) -> None:
    """Raise ImageTooLargeError when the header's declared size exceeds ``max_pixels``."""
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{path}: header declares {width}x{height} = {width * height:,} pixels, "
            f"above the limit of {max_pixels:,}"
        )


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """Convert a decoded Pillow image of any mode to an ``(H, W, 3)`` uint8 RGB array."""
    if image.mode in _HIGH_BIT_GREY_MODES:
        return _high_bit_grey_to_rgb(np.asarray(image))
    if image.has_transparency_data:
        background = Image.new("RGBA", image.size, _BACKGROUND_RGBA)
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return np.array(image.convert("RGB"), dtype=np.uint8)


def _high_bit_grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    """Scale an ``(H, W)`` 16-bit-range grey array to 8 bits and repeat it into 3 channels.

    Mode ``I`` is 32-bit signed; it holds 16-bit data when Pillow reads 16-bit files, so values
    outside 0-65535 are clipped rather than wrapped.
    """
    grey8 = (np.clip(grey, 0, 0xFFFF).astype(np.uint16) >> 8).astype(np.uint8)
    return np.repeat(grey8[:, :, np.newaxis], 3, axis=2)


def _require_rgb_uint8(image_rgb: np.ndarray) -> None:
    """Raise ValueError unless ``image_rgb`` is a non-empty ``(H, W, 3)`` uint8 array."""
    if (
        isinstance(image_rgb, np.ndarray)
        and image_rgb.dtype == np.uint8
        and image_rgb.ndim == 3
        and image_rgb.shape[2] == 3
        and image_rgb.size > 0
    ):
        return
    if isinstance(image_rgb, np.ndarray):
        received = f"an array of shape {image_rgb.shape} and dtype {image_rgb.dtype}"
    else:
        received = f"a {type(image_rgb).__name__}"
    raise ValueError(f"image_rgb must be a non-empty (H, W, 3) uint8 array, got {received}")


def _encode_params(suffix: str, jpeg_quality: int) -> list[int]:
    """Return the ``cv2.imencode`` parameters for a lower-case ``suffix``."""
    if suffix not in _ALLOWED_SUFFIXES:
        raise ValueError(
            f"unsupported image suffix {suffix!r}; use one of {', '.join(_ALLOWED_SUFFIXES)}"
        )
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality!r}")
    if suffix == ".png":
        return [cv2.IMWRITE_PNG_COMPRESSION, 1]
    if suffix == ".webp":
        return [cv2.IMWRITE_WEBP_QUALITY, jpeg_quality]
    return [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]


def manifest_text(text: str) -> str:
    """``text`` as a manifest can hold it: a file name that is not UTF-8 (Python holds its bytes
    as surrogate escapes, which Parquet cannot store) gets them as ``\\xNN``; any other text
    is returned as it is."""
    return os.fsencode(text).decode("utf-8", "backslashreplace") if _not_utf8(text) else text


def not_utf8_error(path: str | Path) -> ImageReadError | None:
    """The row error of a file whose name is not UTF-8 (no manifest can record it, so it is
    never opened), else None."""
    if not _not_utf8(str(path)):
        return None
    return ImageReadError(
        f"{manifest_text(str(path))}: the file name is not UTF-8, which a manifest cannot "
        "record; rename the file"
    )


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def list_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files named by ``inputs`` (files as given; folders searched recursively by suffix).

    A named file is kept whatever its suffix (so a bad file gets a status, not silence); a
    missing path, or a symbolic-link loop, is kept too and fails when read. A folder search
    keeps every entry with an image suffix that is not a directory: a dangling link, a link
    loop or a named pipe gets its row and status instead of vanishing from the run.
    """
    found: list[Path] = []
    for item in inputs:
        try:
            path = Path(item).expanduser().resolve()
        except (RuntimeError, OSError):  # a symlink loop (RuntimeError before Python 3.13)
            path = Path(item).expanduser().absolute()
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()
                )
            )
        else:
            found.append(path)
    return list(dict.fromkeys(found))
