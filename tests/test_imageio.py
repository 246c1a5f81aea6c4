"""Tests of augmentface.imageio. Every input file is built in tmp_path at test time."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile
from skimage import data

from augmentface import imageio
from augmentface.errors import ImageMissingError, ImageReadError, ImageTooLargeError
from augmentface.imageio import (
    DEFAULT_MAX_PIXELS,
    encode_image,
    read_image,
    read_image_size,
    write_image_atomic,
)

DEEPFACE_DIR = Path(__file__).resolve().parents[2] / "shared/faces/deepface"

READERS = pytest.mark.parametrize("reader", [read_image, read_image_size])


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


def _save(path: Path, image: Image.Image, fmt: str | None = None, **params: object) -> Path:
    image.save(path, fmt, **params)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _bomb_png(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A valid 1x1 PNG whose IHDR is patched to declare ``width`` x ``height`` pixels."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    png = bytearray(buffer.getvalue())
    assert png[12:16] == b"IHDR"
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    path.write_bytes(bytes(png))
    return path


def _truncated_jpeg(path: Path, image_rgb: np.ndarray) -> Path:
    buffer = io.BytesIO()
    Image.fromarray(image_rgb).save(buffer, "JPEG", quality=95)
    full = buffer.getvalue()
    path.write_bytes(full[: len(full) // 2])
    return path


# --- missing, empty and undecodable files -------------------------------------------------------


@READERS
def test_missing_path_is_missing(tmp_path, reader):
    with pytest.raises(ImageMissingError, match="no such file") as caught:
        reader(tmp_path / "absent.jpg")
    assert caught.value.status == "missing"


@READERS
def test_directory_is_missing(tmp_path, reader):
    folder = tmp_path / "photo.jpg"
    folder.mkdir()
    with pytest.raises(ImageMissingError, match=r"no such file \(a directory\)"):
        reader(folder)


@READERS
def test_zero_byte_file_is_unreadable(tmp_path, reader):
    empty = tmp_path / "empty.png"
    empty.touch()
    with pytest.raises(ImageReadError, match=r"empty file \(0 bytes\)") as caught:
        reader(empty)
    assert caught.value.status == "unreadable"


@READERS
def test_text_file_named_jpg_is_not_an_image(tmp_path, reader):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture\n")
    with pytest.raises(ImageReadError, match=r"not an image \(unrecognised format\)"):
        reader(text)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_is_not_a_regular_file(tmp_path):
    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)
    with pytest.raises(ImageMissingError, match=r"no such file \(not a regular file\)"):
        read_image(pipe)


def test_file_system_refusal_is_unreadable(tmp_path, astronaut, monkeypatch):
    path = _save(tmp_path / "a.png", Image.fromarray(astronaut))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    # Shadows the builtin inside imageio only; chmod 000 cannot be tested as root.
    monkeypatch.setattr(imageio, "open", refuse, raising=False)
    with pytest.raises(ImageReadError, match=r"cannot read file \(Permission denied\)"):
        read_image(path)


def test_corrupt_pixel_data_names_the_decoder_failure(tmp_path, astronaut):
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, "PNG")
    png = bytearray(buffer.getvalue())
    start = png.find(b"IDAT") + 104
    png[start : start + 2000] = bytes(2000)  # zero part of the zlib stream
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(png))
    with pytest.raises(ImageReadError, match=r"corrupt\.png: cannot decode image \(.+\)"):
        read_image(path)


def test_truncated_jpeg_is_unreadable_but_its_header_is_fine(tmp_path, astronaut):
    truncated = _truncated_jpeg(tmp_path / "cut.jpg", astronaut)
    with pytest.raises(ImageReadError, match=r"cut\.jpg: truncated image data"):
        read_image(truncated)
    assert read_image_size(truncated) == (512, 512)


def test_truncation_is_not_tolerated_globally():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --- modes ---------------------------------------------------------------------------------------


def test_rgb_png_is_exact_contiguous_and_writable(tmp_path, astronaut):
    path = _save(tmp_path / "a.png", Image.fromarray(astronaut))
    image_rgb = read_image(path)
    assert image_rgb.dtype == np.uint8
    assert image_rgb.flags.c_contiguous
    assert image_rgb.flags.writeable
    np.testing.assert_array_equal(image_rgb, astronaut)
    assert read_image_size(path) == (512, 512)


def test_grey_png_is_repeated_into_three_channels(tmp_path, astronaut):
    grey = Image.fromarray(astronaut).convert("L")
    image_rgb = read_image(_save(tmp_path / "grey.png", grey))
    assert image_rgb.shape == (512, 512, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image_rgb[:, :, channel], np.asarray(grey))


def test_16bit_grey_png_keeps_the_high_byte(tmp_path):
    grey16 = np.array([[0, 255, 256, 257, 1000, 32896, 65280, 65535]], dtype=np.uint16)
    path = tmp_path / "grey16.png"
    assert cv2.imwrite(str(path), grey16)
    expected = np.array([[0, 0, 1, 1, 3, 128, 255, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(read_image(path), np.repeat(expected[..., None], 3, axis=2))


def test_16bit_rgb_png_keeps_the_high_byte_and_channel_order(tmp_path):
    rgb16 = np.zeros((2, 4, 3), dtype=np.uint16)
    rgb16[0, :, 0] = [0, 257, 32896, 65535]  # red row
    rgb16[1, :, 2] = [511, 1000, 65280, 300]  # blue row
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), rgb16[:, :, ::-1])  # OpenCV writes BGR
    expected = (rgb16 >> 8).astype(np.uint8)
    np.testing.assert_array_equal(read_image(path), expected)


def test_32bit_int_grey_is_clipped_to_16_bits_then_scaled(tmp_path):
    values = np.array([[-5, 0, 32896, 65535, 70000]], dtype=np.int32)
    path = _save(tmp_path / "int32.tif", Image.fromarray(values, mode="I"))
    np.testing.assert_array_equal(read_image(path)[0, :, 0], [0, 0, 128, 255, 255])


def test_float_grey_is_read_on_the_0_255_scale(tmp_path):
    values = np.array([[-1.0, 0.5, 127.9, 254.6, 300.0]], dtype=np.float32)
    path = _save(tmp_path / "float.tif", Image.fromarray(values, mode="F"))
    np.testing.assert_array_equal(read_image(path)[0, :, 0], [0, 0, 127, 254, 255])


def test_rgba_png_is_composited_over_mid_grey(tmp_path):
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, :, :3] = [200, 10, 60]
    rgba[0, :, 3] = [255, 0, 128]  # opaque, transparent, half
    image_rgb = read_image(_save(tmp_path / "rgba.png", Image.fromarray(rgba, mode="RGBA")))
    assert image_rgb.shape == (1, 3, 3)
    np.testing.assert_array_equal(image_rgb[0, 0], [200, 10, 60])
    np.testing.assert_array_equal(image_rgb[0, 1], [128, 128, 128])
    half = np.array([200 + 128, 10 + 128, 60 + 128]) / 2
    np.testing.assert_allclose(image_rgb[0, 2], half, atol=1)


def test_palette_transparency_is_composited_over_mid_grey(tmp_path):
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255])
    palette.putpixel((1, 0), 1)
    path = _save(tmp_path / "palette.png", palette, transparency=1)
    np.testing.assert_array_equal(read_image(path)[0], [[255, 0, 0], [128, 128, 128]])


def test_cmyk_jpeg_is_close_to_the_rgb_original(tmp_path, astronaut):
    cmyk = Image.fromarray(astronaut).convert("CMYK")
    path = _save(tmp_path / "cmyk.jpg", cmyk, "JPEG", quality=95)
    with Image.open(path) as stored:
        assert stored.mode == "CMYK"
    image_rgb = read_image(path)
    assert image_rgb.shape == (512, 512, 3)
    assert _mean_abs_diff(image_rgb, astronaut) < 3


@pytest.mark.parametrize(("orientation", "quarter_turns"), [(6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path, astronaut, orientation, quarter_turns):
    stored = np.ascontiguousarray(astronaut[:, :384])  # 384 wide, 512 high as stored
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(tmp_path / "rotated.jpg", Image.fromarray(stored), quality=95, exif=exif)
    image_rgb = read_image(path)
    assert image_rgb.shape == (384, 512, 3)
    assert _mean_abs_diff(image_rgb, np.rot90(stored, quarter_turns)) < 3
    assert read_image_size(path) == (512, 384)


def test_webp_named_jpg_is_detected_from_content(tmp_path, astronaut):
    path = _save(tmp_path / "really_webp.jpg", Image.fromarray(astronaut), "WEBP", lossless=True)
    np.testing.assert_array_equal(read_image(path), astronaut)
    assert read_image_size(path) == (512, 512)


# --- pixel budget ----------------------------------------------------------------------------


def test_declared_size_is_refused_before_any_decoding(tmp_path, monkeypatch):
    bomb = _bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 100  # far too little data for 900 MP of pixels

    def refuse_to_decode(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse_to_decode)
    with pytest.raises(ImageTooLargeError, match=r"30000x30000.*100,000,000") as caught:
        read_image(bomb)
    assert caught.value.status == "too_large"
    assert read_image_size(bomb) == (30000, 30000)


def test_max_pixels_is_inclusive(tmp_path, astronaut):
    path = _save(tmp_path / "a.png", Image.fromarray(astronaut))
    assert read_image(path, max_pixels=512 * 512).shape == (512, 512, 3)
    with pytest.raises(ImageTooLargeError, match="512x512"):
        read_image(path, max_pixels=512 * 512 - 1)


def test_pil_limit_neither_preempts_ours_nor_changes(tmp_path, astronaut, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = _save(tmp_path / "a.png", Image.fromarray(astronaut))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert read_image(path).shape == (512, 512, 3)
    with pytest.raises(ImageTooLargeError, match=r"header declares 30000x30000"):
        read_image(_bomb_png(tmp_path / "bomb.png"))
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_pil_limit_hit_while_decoding_is_reported_as_too_large(tmp_path, astronaut, monkeypatch):
    path = _save(tmp_path / "a.tif", Image.fromarray(astronaut))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # TIFF re-checks it when decoding
    with pytest.raises(ImageTooLargeError, match="exceeds limit"):
        read_image(path)


def test_default_pil_limit_is_untouched_after_reads(tmp_path, astronaut):
    before = Image.MAX_IMAGE_PIXELS
    read_image(_save(tmp_path / "a.png", Image.fromarray(astronaut)))
    with pytest.raises(ImageTooLargeError):
        read_image(_bomb_png(tmp_path / "bomb.png"))
    assert Image.MAX_IMAGE_PIXELS == before
    assert DEFAULT_MAX_PIXELS == 100_000_000


def test_concurrent_reads_restore_the_pil_limit(tmp_path, astronaut):
    before = Image.MAX_IMAGE_PIXELS
    paths = [_save(tmp_path / "a.png", Image.fromarray(astronaut)), _bomb_png(tmp_path / "b.png")]

    def read_quietly(path: Path) -> None:
        with contextlib.suppress(ImageTooLargeError):
            read_image(path)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(read_quietly, paths * 16))
    assert Image.MAX_IMAGE_PIXELS == before


@pytest.mark.parametrize("max_pixels", [0, -1])
def test_non_positive_max_pixels_is_rejected(tmp_path, max_pixels):
    with pytest.raises(ValueError, match="max_pixels"):
        read_image(tmp_path / "unused.png", max_pixels=max_pixels)


# --- inputs are never modified -------------------------------------------------------------------


def test_reading_leaves_inputs_byte_identical(tmp_path, astronaut):
    exif = Image.Exif()
    exif[0x0112] = 6
    inputs = [
        _save(tmp_path / "rotated.jpg", Image.fromarray(astronaut), exif=exif),
        _save(tmp_path / "a.png", Image.fromarray(astronaut)),
        _save(tmp_path / "webp.jpg", Image.fromarray(astronaut), "WEBP"),
        _truncated_jpeg(tmp_path / "cut.jpg", astronaut),
        _bomb_png(tmp_path / "bomb.png"),
    ]
    before = {path: _sha256(path) for path in inputs}
    for path in inputs:
        read_image_size(path)
        # Failing reads must not touch the file either.
        with contextlib.suppress(ImageReadError, ImageTooLargeError):
            read_image(path)
    assert {path: _sha256(path) for path in inputs} == before
    assert sorted(tmp_path.iterdir()) == sorted(inputs)


# --- encoding and atomic writes -----------------------------------------------------------------


def test_png_round_trip_is_exact(tmp_path, astronaut):
    path = tmp_path / "out" / "a.png"  # parent folder is created
    write_image_atomic(path, astronaut)
    np.testing.assert_array_equal(read_image(path), astronaut)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".JPG", ".webp"])
def test_lossy_round_trip_is_close(tmp_path, astronaut, suffix):
    path = tmp_path / f"a{suffix}"
    write_image_atomic(path, astronaut, jpeg_quality=95)
    assert _mean_abs_diff(read_image(path), astronaut) < 3


def test_encode_image_writes_the_named_format(astronaut):
    assert encode_image(astronaut, ".jpg").startswith(b"\xff\xd8")
    assert encode_image(astronaut, ".png").startswith(b"\x89PNG\r\n\x1a\n")
    webp = encode_image(astronaut, ".webp")
    assert webp[:4] == b"RIFF"
    assert webp[8:12] == b"WEBP"


def test_jpeg_quality_changes_the_size(astronaut):
    assert len(encode_image(astronaut, ".jpg", jpeg_quality=20)) < len(
        encode_image(astronaut, ".jpg", jpeg_quality=95)
    )


def test_encode_accepts_non_contiguous_views(astronaut):
    view = astronaut[::2, ::-2]
    decoded = cv2.imdecode(np.frombuffer(encode_image(view, ".png"), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(decoded[:, :, ::-1], view)


def test_failed_write_leaves_the_existing_file_intact(tmp_path, astronaut, monkeypatch):
    path = tmp_path / "keep.png"
    write_image_atomic(path, astronaut)
    before = _sha256(path)

    def broken_encode(*args, **kwargs):
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(imageio, "encode_image", broken_encode)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_image_atomic(path, np.zeros((4, 4, 3), dtype=np.uint8))
    assert _sha256(path) == before
    assert list(tmp_path.iterdir()) == [path]


def test_unsupported_suffix_lists_the_allowed_ones(tmp_path, astronaut):
    path = tmp_path / "a.tif"
    path.write_bytes(b"existing")
    with pytest.raises(ValueError, match=r"'\.tif'; use one of \.jpeg, \.jpg, \.png, \.webp"):
        write_image_atomic(path, astronaut)
    assert path.read_bytes() == b"existing"


@pytest.mark.parametrize(
    ("bad", "received"),
    [
        (np.zeros((4, 4, 3), dtype=np.float32), r"shape \(4, 4, 3\) and dtype float32"),
        (np.zeros((4, 4), dtype=np.uint8), r"shape \(4, 4\) and dtype uint8"),
        (np.zeros((4, 4, 4), dtype=np.uint8), r"shape \(4, 4, 4\)"),
        (np.zeros((0, 4, 3), dtype=np.uint8), r"shape \(0, 4, 3\)"),
        ([[[0, 0, 0]]], "got a list"),
    ],
)
def test_encode_rejects_anything_but_hw3_uint8(bad, received):
    with pytest.raises(ValueError, match=received):
        encode_image(bad, ".png")


@pytest.mark.parametrize("quality", [0, 101])
def test_jpeg_quality_out_of_range_is_rejected(astronaut, quality):
    with pytest.raises(ValueError, match="jpeg_quality"):
        encode_image(astronaut, ".jpg", jpeg_quality=quality)


def test_encoder_refusal_is_a_value_error():
    too_wide = np.zeros((1, 70_000, 3), dtype=np.uint8)  # JPEG allows 65500 pixels a side
    with pytest.raises(ValueError, match=r"could not encode a 70000x1 image as \.jpg"):
        encode_image(too_wide, ".jpg")


# --- real photos ---------------------------------------------------------------------------------


def test_every_deepface_photo_reads_as_rgb():
    if not DEEPFACE_DIR.is_dir():
        pytest.skip(f"{DEEPFACE_DIR} is absent")
    photos = sorted(DEEPFACE_DIR.glob("*.jpg"))
    assert photos
    for photo in photos:
        image_rgb = read_image(photo)
        assert image_rgb.ndim == 3, photo
        assert image_rgb.shape[2] == 3, photo
        assert image_rgb.dtype == np.uint8, photo
        assert read_image_size(photo) == (image_rgb.shape[1], image_rgb.shape[0]), photo
