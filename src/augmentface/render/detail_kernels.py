"""The detail layer's per-triangle and per-pixel loops (:mod:`augmentface.render.details`),
compiled with Numba (imported on first use, cached on disk).

The maps are sampled as ``cv2.remap`` samples a float32 image with ``INTER_LINEAR`` and a
constant border of 0 (the layer's sampler before these loops, still
:func:`augmentface.render.details.sample_points`): the position is rounded to 1/32 texel
(OpenCV's ``INTER_TAB_SIZE``), and the four texels around it are weighted by the products of
the 1-D weights at that step (exact in float32) and summed in OpenCV's order, in float32; the
samples are ``cv2.remap``'s to the bit. The shading that follows is the NumPy code's float32
arithmetic, but for ``exp``: NumPy's float32 ``exp`` and the C library's differ in the last
bit for about a third of arguments, which moves a pixel by one level now and then.
On the benchmark's smile on the astronaut (a 118x139 px face) the per-pixel work takes
~0.07 ms, where the dozen NumPy calls on the gathered pixels it replaced took ~0.2 ms.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Zero texels around each plane of the map sums :func:`shade_details` samples.
MAP_PAD = 2
#: Sub-texel steps of a bilinear sample (OpenCV's ``INTER_TAB_SIZE``), and its bits.
_TAB_BITS = 5
_TAB_SIZE = 1 << _TAB_BITS


@numba.njit(cache=True, nogil=True)
def boxes_reach_maps(
    counts: np.ndarray,
    chosen: np.ndarray,
    box_low: np.ndarray,
    box_high: np.ndarray,
    to_texel: np.ndarray,
) -> np.ndarray:  # pragma: no cover - compiled; see details._reaches_maps
    """(T,) bool: whether triangle ``t``'s texel box, ``box_low[t]`` to ``box_high[t]`` ((T, 2)
    float64 ``(u, v)`` texels) grown by 1.5 px through ``to_texel[t]`` ((T, 2, 3)) plus 2
    texels and cut to the map, holds a non-zero texel of a ``chosen`` map ((A,) intp into
    ``counts``, (K, S + 1, S + 1) int32 summed-area tables of non-zero texels)."""
    n = to_texel.shape[0]
    last = counts.shape[1] - 2  # S - 1
    reaches = np.zeros(n, np.bool_)
    for t in range(n):
        grow_u = (abs(to_texel[t, 0, 0]) + abs(to_texel[t, 0, 1])) * 1.5 + 2.0
        grow_v = (abs(to_texel[t, 1, 0]) + abs(to_texel[t, 1, 1])) * 1.5 + 2.0
        u0 = min(max(math.floor(box_low[t, 0] - grow_u), 0), last)
        v0 = min(max(math.floor(box_low[t, 1] - grow_v), 0), last)
        u1 = min(max(math.ceil(box_high[t, 0] + grow_u), 0), last) + 1
        v1 = min(max(math.ceil(box_high[t, 1] + grow_v), 0), last) + 1
        for k in chosen:
            if counts[k, v1, u1] - counts[k, v0, u1] - counts[k, v1, u0] + counts[k, v0, u0] > 0:
                reaches[t] = True
                break
    return reaches


@numba.njit(cache=True, nogil=True)
def map_sums(
    layer: np.ndarray, weights: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled; see tests/test_details.py
    """(2, S + 2 p, S + 2 p) float32: the maps of a (K, S, S) float32 ``layer`` weighted by
    (K,) float32 ``weights`` and summed in map order, those of the positive weights
    (deepening) in plane 0 and those of the negative ones (flattening) in plane 1, each amid
    ``p`` = :data:`MAP_PAD` texels of 0 (the sampler's border)."""
    size = layer.shape[1]
    sums = np.zeros((2, size + 2 * MAP_PAD, size + 2 * MAP_PAD), np.float32)
    for k in range(layer.shape[0]):
        weight = weights[k]
        if weight == 0:
            continue
        plane = sums[0] if weight > 0 else sums[1]
        for i in range(size):
            for j in range(size):
                plane[i + MAP_PAD, j + MAP_PAD] += weight * layer[k, i, j]
    return sums


@numba.njit(cache=True, nogil=True, inline="always")
def _sample(
    sums: np.ndarray, u: np.float32, v: np.float32
) -> tuple[np.float32, np.float32]:  # pragma: no cover - compiled
    """Both planes of ``sums`` ((2, S + 2 p, S + 2 p) float32, ``p`` = :data:`MAP_PAD` zero
    texels each side) at texel ``(u, v)`` of the unpadded map, as ``cv2.remap`` samples each
    (see the module docstring). The padding stands in for OpenCV's constant border, without a
    branch per tap: a position is clamped to within a texel of the padding's outer edge, where
    every tap it reads is 0, as every tap of a position that far off the map is border."""
    side = sums.shape[2]
    top = np.float32(side - 2 * MAP_PAD + 1)  # S + 1
    u = min(max(u, np.float32(-MAP_PAD - 1)), top)
    v = min(max(v, np.float32(-MAP_PAD - 1)), top)
    grid_u = int(np.rint(u * np.float32(_TAB_SIZE))) + MAP_PAD * _TAB_SIZE
    grid_v = int(np.rint(v * np.float32(_TAB_SIZE))) + MAP_PAD * _TAB_SIZE
    col = min(max(grid_u >> _TAB_BITS, 0), side - 2)
    row = min(max(grid_v >> _TAB_BITS, 0), side - 2)
    fu = np.float32(grid_u & (_TAB_SIZE - 1)) * np.float32(1.0 / _TAB_SIZE)
    fv = np.float32(grid_v & (_TAB_SIZE - 1)) * np.float32(1.0 / _TAB_SIZE)
    # OpenCV's weight table: products of the 1-D weights (exact in float32), taps summed in
    # this order.
    w0 = (np.float32(1.0) - fv) * (np.float32(1.0) - fu)
    w1 = (np.float32(1.0) - fv) * fu
    w2 = fv * (np.float32(1.0) - fu)
    w3 = fv * fu
    d = sums[0]
    f = sums[1]
    deepen = (
        d[row, col] * w0 + d[row, col + 1] * w1 + d[row + 1, col] * w2 + d[row + 1, col + 1] * w3
    )
    flatten = (
        f[row, col] * w0 + f[row, col + 1] * w1 + f[row + 1, col] * w2 + f[row + 1, col + 1] * w3
    )
    return deepen, flatten


@numba.njit(cache=True, nogil=True, inline="always")
def _shade(
    crop: np.ndarray, out: np.ndarray, y: int, x: int, log_ratio: np.float32
) -> None:  # pragma: no cover - compiled
    """``out[y, x]`` = ``crop[y, x]`` (uint8 RGB) times ``exp(log_ratio)``, rounded and clipped
    to 0–255, in float32 as the NumPy code before it."""
    gain = np.float32(math.exp(log_ratio))
    for c in range(3):
        level = np.rint(np.float32(crop[y, x, c]) * gain)
        out[y, x, c] = np.uint8(min(max(level, np.float32(0.0)), np.float32(255.0)))


@numba.njit(cache=True, nogil=True)
def shade_details(
    ids: np.ndarray,
    shading: np.ndarray,
    to_texel: np.ndarray,
    sums: np.ndarray,
    crop: np.ndarray,
    out: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Shade ``out`` where the maps deepen only; return what a flattening map lifts.

    At each pixel ``(x, y)`` of ``ids`` ((h, w) int32; -1 or an index of at least T for none)
    whose triangle ``t`` is ``shading`` ((T,) bool), the texel position ``to_texel[t] @ (x, y,
    1)`` ((T, 2, 3) float64, rounded to float32) samples the deepening and the flattening sum
    of ``sums`` (:func:`_sample`). Where the flattening one is 0, ``out`` ((h, w, 3) uint8)
    gets ``crop``'s pixel ((h, w, 3) uint8) shaded by the deepening one (when that is not 0);
    elsewhere the pixel waits for the relief (:func:`shade_lifted`).

    Returns
    -------
    deepen, lift : (h, w) float32, the two samples at the pixels left waiting; 0 elsewhere.
    box : (4,) intp, ``(y0, x0, y1, x1)`` half-open around those pixels; all 0 when there are
        none.
    """
    height, width = ids.shape
    n = to_texel.shape[0]
    deepen = np.zeros((height, width), np.float32)
    lift = np.zeros((height, width), np.float32)
    box = np.array([height, width, 0, 0], np.intp)
    for y in range(height):
        for x in range(width):
            t = ids[y, x]
            if t < 0 or t >= n or not shading[t]:
                continue
            u = np.float32(to_texel[t, 0, 0] * x + to_texel[t, 0, 1] * y + to_texel[t, 0, 2])
            v = np.float32(to_texel[t, 1, 0] * x + to_texel[t, 1, 1] * y + to_texel[t, 1, 2])
            down, up = _sample(sums, u, v)
            if up == 0:
                if down != 0:
                    _shade(crop, out, y, x, down)
                continue
            deepen[y, x], lift[y, x] = down, up
            box[0], box[1] = min(box[0], y), min(box[1], x)
            box[2], box[3] = max(box[2], y + 1), max(box[3], x + 1)
    if box[2] == 0:
        box[:] = 0
    return deepen, lift, box


@numba.njit(cache=True, nogil=True)
def shade_lifted(
    crop: np.ndarray,
    deepen: np.ndarray,
    lift: np.ndarray,
    box: np.ndarray,
    relief: np.ndarray,
    relief_y0: int,
    relief_x0: int,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Shade ``out`` at the pixels :func:`shade_details` left waiting (``lift`` not 0, within
    ``box``) by ``deepen + clip(lift, min(r, 0), max(-r, 0))``, where ``r`` is ``relief``
    (float32, its first pixel at ``(relief_y0, relief_x0)`` of the crop)."""
    zero = np.float32(0.0)
    for y in range(box[0], box[2]):
        for x in range(box[1], box[3]):
            up = lift[y, x]
            if up == 0:
                continue
            r = relief[y - relief_y0, x - relief_x0]
            log_ratio = deepen[y, x] + min(max(up, min(r, zero)), max(-r, zero))
            if log_ratio != 0:
                _shade(crop, out, y, x, log_ratio)
