"""The renderer's per-pixel inner loops, compiled with Numba (imported on first use, cached
on disk): the triangle-ID rasteriser and the piecewise-affine remap maps.

Coverage rule of :func:`fill_triangle_ids`: a pixel centre ``(x, y)`` belongs to a triangle
when, for each of its three edges, it lies inside the edge's line or outside it by at most
half a pixel along the edge's minor axis (the pixels an 8-connected line along that edge would
set), within the triangle's bounding box rounded to whole pixels. That is the coverage of
OpenCV's ``fillConvexPoly`` with ``LINE_8``, which fills the interior and then draws the
edges: on the astronaut's face the two agree on all but 7 of 8,020 covered pixels. Triangles
are drawn in the order given and later ones overwrite earlier ones (the painter's algorithm).
Compiled, the ~900 triangles of a 118x139 face take ~0.05 ms, where one ``fillConvexPoly``
call per triangle took ~0.7 ms, nearly all of it in the Python binding.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def fill_triangle_ids(
    ids: np.ndarray, verts_px: np.ndarray, triangles: np.ndarray, order: np.ndarray
) -> None:  # pragma: no cover - compiled; its Python twin is tests/test_rasterize.py's
    """Write ``t`` into ``ids`` (H, W int32) at every pixel triangle ``t`` covers, for ``t`` in
    ``order`` (intp), drawn first to last; ``verts_px`` (N, 2) float64 ``(x, y)``,
    ``triangles`` (T, 3) intp."""
    height, width = ids.shape
    for t in order:
        ax, ay = verts_px[triangles[t, 0], 0], verts_px[triangles[t, 0], 1]
        bx, by = verts_px[triangles[t, 1], 0], verts_px[triangles[t, 1], 1]
        cx, cy = verts_px[triangles[t, 2], 0], verts_px[triangles[t, 2], 1]
        if (bx - ax) * (cy - ay) - (by - ay) * (cx - ax) < 0.0:
            bx, by, cx, cy = cx, cy, bx, by  # counter-clockwise in image axes: inside is >= 0
        x0 = max(math.floor(min(ax, bx, cx) + 0.5), 0)
        x1 = min(math.floor(max(ax, bx, cx) + 0.5), width - 1)
        y0 = max(math.floor(min(ay, by, cy) + 0.5), 0)
        y1 = min(math.floor(max(ay, by, cy) + 0.5), height - 1)
        # half a pixel along each edge's minor axis, in the edge function's units
        margin_ab = -0.5 * max(abs(bx - ax), abs(by - ay))
        margin_bc = -0.5 * max(abs(cx - bx), abs(cy - by))
        margin_ca = -0.5 * max(abs(ax - cx), abs(ay - cy))
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                if (
                    (bx - ax) * (y - ay) - (by - ay) * (x - ax) >= margin_ab
                    and (cx - bx) * (y - by) - (cy - by) * (x - bx) >= margin_bc
                    and (ax - cx) * (y - cy) - (ay - cy) * (x - cx) >= margin_ca
                ):
                    ids[y, x] = t


@numba.njit(cache=True, nogil=True)
def piecewise_affine_maps(
    ids: np.ndarray, to_src: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled; see test_render_fast_paths
    """(h, w) float32 ``map_x`` and ``map_y``: at each pixel ``(x, y)`` of ``ids`` (h, w int32,
    -1 for none), the affine map of its triangle ``t`` applied to it,
    ``to_src[d, 0, t] * x + to_src[d, 1, t] * y + to_src[d, 2, t]`` for ``d`` = 0 (x), 1 (y);
    ``to_src`` is (2, 3, T + 1) float32, and a pixel of no triangle takes entry ``T``. The
    arithmetic is float32, in that order: NumPy's of the same expression gives the same bits.
    """
    height, width = ids.shape
    none = to_src.shape[2] - 1
    map_x = np.empty((height, width), np.float32)
    map_y = np.empty((height, width), np.float32)
    for y in range(height):
        row = np.float32(y)
        for x in range(width):
            t = ids[y, x]
            if t < 0:
                t = none
            col = np.float32(x)
            map_x[y, x] = to_src[0, 0, t] * col + to_src[0, 1, t] * row + to_src[0, 2, t]
            map_y[y, x] = to_src[1, 0, t] * col + to_src[1, 1, t] * row + to_src[1, 2, t]
    return map_x, map_y
