"""The crop file render hands to blend (augmentface.render.crop_file): lossless, its bytes as
specified, and damaged files refused."""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pytest

from augmentface.errors import RenderError
from augmentface.render.crop_file import MAGIC, read_crop, write_crop


def _crop(shape: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (*shape, 3), np.uint8), rng.integers(0, 256, shape, np.uint8)


@pytest.mark.parametrize("shape", [(1, 1), (139, 118), (301, 77)])
def test_crop_round_trips_in_the_specified_layout(tmp_path, shape) -> None:
    rgb, alpha = _crop(shape, seed=shape[0])
    path = tmp_path / "face.rgbaz"

    write_crop(path, rgb, alpha, durable=False)
    got_rgb, got_alpha = read_crop(path)

    np.testing.assert_array_equal(got_rgb, rgb)
    np.testing.assert_array_equal(got_alpha, alpha)
    assert got_rgb.flags.writeable and got_alpha.flags.writeable
    assert got_rgb.flags.c_contiguous and got_alpha.flags.c_contiguous
    # The layout: MAGIC, height and width as little-endian uint32, then zstd of H x W x 4 RGBA.
    data = path.read_bytes()
    assert data[:16] == struct.pack("<8sII", MAGIC, *shape)
    raw = pa.Codec("zstd").decompress(data[16:], decompressed_size=rgb.size // 3 * 4, asbytes=True)
    assert raw == np.dstack([rgb, alpha]).tobytes()


def test_a_strided_crop_is_written_as_its_pixels(tmp_path) -> None:
    rgb, alpha = _crop((60, 80), seed=1)
    path = tmp_path / "face.rgbaz"

    write_crop(path, rgb[::2, 1::2], alpha[::2, 1::2], durable=False)

    got_rgb, got_alpha = read_crop(path)
    np.testing.assert_array_equal(got_rgb, rgb[::2, 1::2])
    np.testing.assert_array_equal(got_alpha, alpha[::2, 1::2])


def test_damaged_and_mismatched_crops_are_refused(tmp_path) -> None:
    rgb, alpha = _crop((20, 30), seed=2)
    path = tmp_path / "face.rgbaz"
    with pytest.raises(ValueError):
        write_crop(path, rgb, alpha[:, :-1])
    with pytest.raises(RenderError, match="unreadable"):
        read_crop(tmp_path / "missing.rgbaz")
    write_crop(path, rgb, alpha)
    data = path.read_bytes()
    cases = ((data[:10], "too short"), (b"X" + data[1:], "header"), (data[:-5], "damaged"))
    for bad, message in cases:
        path.write_bytes(bad)
        with pytest.raises(RenderError, match=message):
            read_crop(path)
