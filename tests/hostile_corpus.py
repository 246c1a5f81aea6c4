"""A hostile input corpus for ``fit3dmm``, written at test time (issue 13, deliverable 7).

:func:`write_corpus` fills a folder with bad or odd input files, one per *kind*, and returns the
status a careful user expects ``fit3dmm`` to record for each: a bad file costs one manifest row
(``unreadable``, ``missing``, ``too_large``, ``no_face``), a merely odd one is fitted (``ok``),
and neither ever stops the run. Nothing but this generator is committed: every file is built
from the photo given (``skimage.data.astronaut()``) or from a few bytes.

Keys are paths relative to the folder (``/``-separated); a key whose status is
:data:`NO_ROW` names an entry a folder search does not take for an image (a directory, a file
with a suffix that is not searched), which must get no row at all. :data:`KINDS` describes
each kind written so far in a few words (the table of the documentation is made from it).

The kinds that stopped the whole run before issue 13's fixes (an abort in MediaPipe, a
traceback) are written apart (:data:`RUN_KILLERS`, :func:`write_run_killer`): the tests run each
alone in a child process, where a regression cannot end the test run, and then with the rest.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, features

__all__ = ["KINDS", "NO_ROW", "RUN_KILLERS", "write_corpus", "write_run_killer"]

#: The "status" of an entry that a folder search must skip: it gets no manifest row.
NO_ROW = "(no row)"

_ORIENTATION = 0x0112

#: Kind -> a few words saying what is hostile or odd about it (file names are the keys of
#: :func:`write_corpus`'s result).
KINDS: dict[str, str] = {}


def _kind(name: str, what: str) -> str:
    KINDS[name] = what
    return name


# --------------------------------------------------------------------------------------------
# Encoders


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with_chunk_before_idat(png: bytes, chunk: bytes) -> bytes:
    """``png`` with ``chunk`` inserted right after IHDR (so it is read with the header)."""
    end_of_ihdr = 8 + 4 + 4 + 13 + 4
    return png[:end_of_ihdr] + chunk + png[end_of_ihdr:]


def _jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its frame header (SOF0/SOF2) patched to declare ``width`` x ``height``."""
    data = bytearray(jpeg)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at > 0:
            data[at + 5 : at + 9] = struct.pack(">HH", height, width)
            return bytes(data)
    raise ValueError("no SOF0/SOF2 marker in the JPEG")


def _bmp_with_size(bmp: bytes, width: int, height: int) -> bytes:
    """``bmp`` with its BITMAPINFOHEADER patched to declare ``width`` x ``height``."""
    data = bytearray(bmp)
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def _exif_jpeg(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[_ORIENTATION] = orientation
    return _encode(image, "JPEG", quality=90, exif=exif)


# --------------------------------------------------------------------------------------------
# The corpus


def write_corpus(folder: Path, face: np.ndarray) -> dict[str, str]:
    """Write every hostile kind into ``folder`` (created if needed).

    Parameters
    ----------
    folder : Path
        Where the corpus goes; it should hold nothing else.
    face : numpy.ndarray
        ``(H, W, 3)`` ``uint8`` RGB photo of one clearly visible face (the astronaut, 512 x 512):
        the pixels of every kind that should still be fitted.

    Returns
    -------
    dict of str to str
        Path relative to ``folder`` -> the ``fit3dmm`` status a careful user expects for it
        (:data:`NO_ROW`: the folder search must skip it).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}
    photo = Image.fromarray(face)
    jpeg = _encode(photo, "JPEG", quality=90)
    png = _encode(photo, "PNG", compress_level=1)

    def put(name: str, what: str, status: str, content: bytes | None = None) -> Path:
        path = folder / _kind(name, what)
        if content is not None:
            path.write_bytes(content)
        expected[name] = status
        return path

    # -- not an image at all ------------------------------------------------------------------
    put("text.jpg", "a text file named .jpg", "unreadable", b"this is not an image\n")
    put("empty.jpg", "an empty .jpg (0 bytes)", "unreadable", b"")
    put("empty.png", "an empty .png (0 bytes)", "unreadable", b"")
    put("gzipped.png", "a gzip-compressed PNG named .png", "unreadable", gzip.compress(png))
    appledouble = struct.pack(">IIH", 0x00051607, 0x00020000, 0) + b"\0" * 16 + b"Mac OS X"
    put(
        "._appledouble.jpg",
        "a macOS AppleDouble '._' sidecar named .jpg",
        "unreadable",
        appledouble,
    )

    # -- broken files of a real format --------------------------------------------------------
    put("truncated.jpg", "a JPEG cut in half", "unreadable", jpeg[: len(jpeg) // 2])
    put("only_soi.jpg", "a JPEG of nothing but its start marker", "unreadable", b"\xff\xd8")
    put("truncated.png", "a PNG cut in its pixel data", "unreadable", png[: len(png) // 2])
    bad_crc = bytearray(png)
    bad_crc[29] ^= 0xFF  # the IHDR checksum
    put("png_bad_crc.png", "a PNG whose header checksum is wrong", "unreadable", bytes(bad_crc))
    lying_length = bytearray(_png_with_chunk_before_idat(png, _png_chunk(b"tEXt", b"a\0b")))
    lying_length[33:37] = struct.pack(">I", 0x7FFFFFFF)  # that chunk's length: 2 GiB
    put(
        "png_chunk_length_lie.png",
        "a PNG with a chunk that declares 2 GiB",
        "unreadable",
        bytes(lying_length),
    )
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    garbage_idat = (
        png[:8]
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"\x13\x37" * 64)
        + _png_chunk(b"IEND", b"")
    )
    put("png_garbage_idat.png", "a PNG whose pixel stream is not zlib", "unreadable", garbage_idat)
    bmp = _encode(photo.resize((64, 64)), "BMP")
    put(
        "bmp_short.bmp",
        "a BMP header declaring 2000 x 2000 over 64 x 64 pixels",
        "unreadable",
        _bmp_with_size(bmp, 2000, 2000),
    )
    put(
        "bmp_zero_width.bmp",
        "a BMP header declaring a width of 0",
        "unreadable",
        _bmp_with_size(bmp, 0, 64),
    )

    # -- decompression bombs: a huge declared size, refused from the header -------------------
    bomb = png[:8] + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
    bomb += _png_chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + _png_chunk(b"IEND", b"")
    put("bomb.png", "a PNG header declaring 100000 x 100000 pixels", "too_large", bomb)
    put(
        "bomb.jpg",
        "a JPEG frame header declaring 65500 x 65500 pixels",
        "too_large",
        _jpeg_with_size(jpeg, 65500, 65500),
    )
    put(
        "bomb.bmp",
        "a BMP header declaring 30000 x 30000 pixels",
        "too_large",
        _bmp_with_size(bmp, 30000, 30000),
    )
    big_text = _png_chunk(b"tEXt", b"Comment\0" + b"x" * (4 << 20))
    put(
        "png_big_text.png",
        "a PNG carrying a 4 MiB text chunk",
        "ok",
        _png_with_chunk_before_idat(png, big_text),
    )
    ztxt_bomb = _png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"\0" * (256 << 20), 9))
    put(
        "png_ztxt_bomb.png",
        "a PNG whose compressed text inflates to 256 MiB",
        "unreadable",
        _png_with_chunk_before_idat(png, ztxt_bomb),
    )

    # -- odd but fine: other modes, depths and formats ----------------------------------------
    put("cmyk.jpg", "a CMYK JPEG", "ok", _encode(photo.convert("CMYK"), "JPEG", quality=90))
    rgb16 = cv2.imencode(".png", face[..., ::-1].astype(np.uint16) * 257)[1].tobytes()
    put("rgb16.png", "a 16-bit RGB PNG", "ok", rgb16)
    grey16 = Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257)
    put("grey16.png", "a 16-bit greyscale PNG", "ok", _encode(grey16, "PNG"))
    put("grey.jpg", "an 8-bit greyscale JPEG", "ok", _encode(photo.convert("L"), "JPEG"))
    alpha = np.linspace(96, 255, face.shape[1], dtype=np.uint8)[np.newaxis].repeat(face.shape[0], 0)
    rgba = Image.fromarray(np.dstack([face, alpha]), "RGBA")
    put("rgba.png", "an RGBA PNG with partial transparency", "ok", _encode(rgba, "PNG"))
    clear = Image.fromarray(np.dstack([face, np.zeros(face.shape[:2], np.uint8)]), "RGBA")
    put(
        "transparent.png",
        "an RGBA PNG whose alpha is 0 everywhere",
        "no_face",
        _encode(clear, "PNG"),
    )
    palette = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    put("palette.png", "a palette (P mode) PNG", "ok", _encode(palette, "PNG"))
    put(
        "palette_trns.png",
        "a palette PNG with a transparent index",
        "ok",
        _encode(palette, "PNG", transparency=0),
    )
    put(
        "float.tiff",
        "a 32-bit float greyscale TIFF",
        "ok",
        _encode(Image.fromarray(np.asarray(photo.convert("L"), np.float32)), "TIFF"),
    )
    put(
        "progressive.jpg",
        "a progressive JPEG",
        "ok",
        _encode(photo, "JPEG", quality=90, progressive=True),
    )
    put("webp_named.jpg", "a WebP file named .jpg", "ok", _encode(photo, "WEBP", quality=90))
    put(
        "garbage_appended.jpg",
        "a JPEG followed by 64 KiB of random bytes",
        "ok",
        jpeg + np.random.default_rng(13).bytes(64 << 10),
    )
    put("UPPER.JPEG", "an upper-case .JPEG suffix", "ok", jpeg)

    # -- EXIF orientation -------------------------------------------------------------------
    for value in (0, 9, 65535):
        put(
            f"exif_orientation_{value}.jpg",
            f"EXIF orientation {value} (not 1-8)",
            "ok",
            _exif_jpeg(photo, value),
        )
    upright = photo.crop((0, 0, face.shape[1], face.shape[0] * 3 // 4))  # landscape
    put(
        "exif_rotated.jpg",
        "a landscape photo stored sideways with EXIF orientation 6",
        "ok",
        _exif_jpeg(upright.transpose(Image.Transpose.ROTATE_90), 6),
    )
    put(
        "exif_corrupt.jpg",
        "a JPEG whose EXIF block is not TIFF data",
        "ok",
        _encode(photo, "JPEG", quality=90, exif=b"Exif\0\0" + b"\xde\xad" * 32),
    )

    # -- several frames ---------------------------------------------------------------------
    frames = [photo, Image.fromarray(np.full_like(face, 40))]
    gif = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    put("animated.gif", "an animated GIF (.gif is not a searched suffix)", NO_ROW, gif)
    put("animated_gif_named.png", "an animated GIF named .png: its first frame", "ok", gif)
    put(
        "animated.webp",
        "an animated WebP: its first frame",
        "ok",
        _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100),
    )
    put(
        "multipage.tiff",
        "a two-page TIFF: its first page",
        "ok",
        _encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]),
    )
    if features.check("avif"):
        avif = _encode(photo, "AVIF", quality=80)
        put("photo.avif", "an AVIF photo (.avif is not a searched suffix)", NO_ROW, avif)
        put("avif_named.jpg", "an AVIF photo named .jpg", "ok", avif)

    # -- sizes and content without a face -----------------------------------------------------
    put("tiny_1x1.png", "a 1 x 1 image", "no_face", _encode(Image.new("RGB", (1, 1)), "PNG"))
    put(
        "flat.png",
        "a flat grey 512 x 512 image",
        "no_face",
        _encode(Image.new("RGB", (512, 512), (128, 128, 128)), "PNG"),
    )
    noise = np.random.default_rng(7).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    put("noise.png", "256 x 256 random noise", "no_face", _encode(Image.fromarray(noise), "PNG"))
    strip = Image.fromarray(cv2.resize(face, (20000, 20), interpolation=cv2.INTER_AREA))
    put(
        "strip_20000x20.png",
        "a thin strip of 20000 x 20 pixels",
        "no_face",
        _encode(strip, "PNG", compress_level=1),
    )
    tall = Image.new("RGB", (4, 32768), (90, 60, 40))
    put(
        "side_32768.png",
        "4 x 32768 pixels: a side MediaPipe cannot take",
        "too_large",
        _encode(tall, "PNG"),
    )
    put(
        "side_32766.png",
        "4 x 32766 pixels: the longest side MediaPipe takes",
        "no_face",
        _encode(tall.crop((0, 0, 4, 32766)), "PNG"),
    )

    # -- odd names ----------------------------------------------------------------------------
    put("n" * 236 + ".png", "a 240-character file name", "ok", png)
    put(
        "фото с пробелами é 😀.png",
        "spaces, Cyrillic, an accent and an emoji in the name",
        "ok",
        png,
    )
    put("new\nline.png", "a line break in the file name", "ok", png)
    put("broken\nname.jpg", "a line break in the name of a text file", "unreadable", b"text\n")
    put("clip#frame=1.png", "a name that looks like a video frame reference", "ok", png)
    put(".hidden.png", "a hidden file (name starts with a dot)", "ok", png)

    # -- links, folders and special files -----------------------------------------------------
    put("link_target.png", "the target of symlink_good.png", "ok", png)
    os.symlink("link_target.png", put("symlink_good.png", "a symlink to a good photo", "ok"))
    os.symlink("symlink_loop.jpg", put("symlink_loop.jpg", "a symlink to itself", "missing"))
    os.symlink("nowhere.jpg", put("dangling.jpg", "a symlink to nothing", "missing"))
    os.symlink(".", put("cycle.jpg", "a symlink to its own folder (a cycle), named .jpg", NO_ROW))
    inside = put("folder.jpg", "a directory named .jpg (searched, not read)", NO_ROW)
    inside.mkdir()
    put("folder.jpg/inside.png", "a photo inside the directory named .jpg", "ok", png)
    os.mkfifo(put("fifo.jpg", "a named pipe (FIFO) named .jpg", "missing"))
    return expected


#: Kinds that stopped the whole run before issue 13's fixes; written apart by
#: :func:`write_run_killer` so that a test can first run each alone in a child process.
RUN_KILLERS: dict[str, str] = {
    "side_32767.png": "4 x 32767 pixels: MediaPipe's OpenCV remap asserts sides < 32767",
    "latin1_caf\udce9.png": "a file name that is not UTF-8 (the Latin-1 bytes caf\\xe9)",
}


def write_run_killer(folder: Path, name: str, face: np.ndarray) -> str:
    """Write the run killer ``name`` (a key of :data:`RUN_KILLERS`) into ``folder``; return the
    status a careful user expects for it.

    * ``side_32767.png``: MediaPipe's OpenCV asserts ``rows < SHRT_MAX`` (32767) in its remap
      and aborts the process (SIGABRT). Expected: refused as ``too_large``.
    * ``latin1_caf\\xe9.png``: a name Python can only hold with a surrogate escape, which no
      Parquet string can store (it raised ``UnicodeEncodeError`` and stopped the run).
      Expected: ``unreadable``, never opened, the name written with ``\\xe9``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    KINDS[name] = RUN_KILLERS[name]
    if name == "side_32767.png":
        (folder / name).write_bytes(_encode(Image.new("RGB", (4, 32767), (90, 60, 40)), "PNG"))
        return "too_large"
    with open(os.fsencode(folder / name), "wb") as handle:
        handle.write(_encode(Image.fromarray(face), "PNG"))
    return "unreadable"
