"""The renderer's per-pixel inner loops, compiled with Numba (imported on first use, cached
on disk): the triangle-ID rasteriser, the piecewise-affine remap maps and the per-triangle
tables they are made from.

Coverage rule of :func:`fill_triangle_ids`: a pixel centre ``(x, y)`` belongs to a triangle
when, for each of its three edges, it lies inside the edge's line or outside it by at most
half a pixel along the edge's minor axis (the pixels an 8-connected line along that edge would
set), within the triangle's bounding box rounded to whole pixels. That is the coverage of
OpenCV's ``fillConvexPoly`` with ``LINE_8``, which fills the interior and then draws the
edges: on the astronaut's face the two agree on all but 7 of 8,020 covered pixels. Triangles
are drawn in the order given and later ones overwrite earlier ones (the painter's algorithm).
Compiled, the ~900 triangles of a 118x139 face take ~0.06 ms, where one ``fillConvexPoly``
call per triangle took ~0.7 ms, nearly all of it in the Python binding; a triangle 16 px wide
or more is filled a row span at a time (0.85 ms instead of 1.66 ms for a 600 px face).

The other kernels replace NumPy expressions over a few hundred triangles or points, whose
per-call overhead made them cost tens of microseconds each, several times a render: the
barycentric maps and the corner affine maps of the warp and of the detail layer, signed areas,
and the eyes' and lips' openings.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Triangles at least this many pixels wide are filled by spans (below, testing each pixel of
#: the box is cheaper than solving for a row's ends).
_SPAN_MIN_WIDTH = 16


@numba.njit(cache=True, nogil=True)
def fill_triangle_ids(
    ids: np.ndarray, verts_px: np.ndarray, triangles: np.ndarray, order: np.ndarray
) -> None:  # pragma: no cover - compiled; its NumPy twin is in test_render_fast_paths
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
        if x1 - x0 < _SPAN_MIN_WIDTH:
            for y in range(y0, y1 + 1):
                for x in range(x0, x1 + 1):
                    if _covers(x, y, ax, ay, bx, by, cx, cy, margin_ab, margin_bc, margin_ca):
                        ids[y, x] = t
            continue
        for y in range(y0, y1 + 1):
            # The pixels of the row that pass all three tests form one span (each test is
            # monotone in x, in floating point too): its ends are solved for, widened by a
            # pixel against rounding, then moved in until the exact tests pass, so the span is
            # exactly the pixels the tests accept, at a few tests a row instead of one a pixel.
            low, high = float(x0), float(x1)
            empty = False
            for ex, ey, px, py, margin in (
                (bx - ax, by - ay, ax, ay, margin_ab),
                (cx - bx, cy - by, bx, by, margin_bc),
                (ax - cx, ay - cy, cx, cy, margin_ca),
            ):
                # test: ex * (y - py) - ey * (x - px) >= margin, an end of x where ey != 0
                slack = ex * (y - py) - margin
                if ey > 0.0:
                    high = min(high, px + slack / ey)
                elif ey < 0.0:
                    low = max(low, px + slack / ey)
                elif slack < 0.0:
                    empty = True
            if empty or high < low - 2.0:
                continue
            # high >= low - 2 >= x0 - 2 and low <= high + 2 <= x1 + 2: both finite here
            start = max(math.ceil(low) - 1, x0)
            stop = min(math.floor(high) + 1, x1)
            while start <= stop and not _covers(
                start, y, ax, ay, bx, by, cx, cy, margin_ab, margin_bc, margin_ca
            ):
                start += 1
            while stop >= start and not _covers(
                stop, y, ax, ay, bx, by, cx, cy, margin_ab, margin_bc, margin_ca
            ):
                stop -= 1
            ids[y, start : stop + 1] = t


@numba.njit(inline="always")
def _covers(
    x: int,
    y: int,
    ax: float,
    ay: float,
    bx: float,
    by: float,
    cx: float,
    cy: float,
    margin_ab: float,
    margin_bc: float,
    margin_ca: float,
) -> bool:  # pragma: no cover - compiled
    """The coverage rule's three edge tests at pixel ``(x, y)``."""
    return (
        (bx - ax) * (y - ay) - (by - ay) * (x - ax) >= margin_ab
        and (cx - bx) * (y - by) - (cy - by) * (x - bx) >= margin_bc
        and (ax - cx) * (y - cy) - (ay - cy) * (x - cx) >= margin_ca
    )


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


@numba.njit(cache=True, nogil=True)
def loop_openings_px(
    polygons_px: np.ndarray, upper_count: int
) -> np.ndarray:  # pragma: no cover - compiled; see test_render_fast_paths
    """(B,) float64: the mean gap between the upper and the lower arc of each (B, K, 2) float64
    loop, measured across its corner-to-corner chord at 64 midpoints along it (what
    :func:`augmentface.render.mouth.mouth_openings_px` documents). The first ``upper_count``
    points are the upper arc, corner to corner; the lower arc is the second corner, the rest,
    then the first corner."""
    rows, size = polygons_px.shape[0], polygons_px.shape[1]
    lower_count = size - upper_count + 2
    out = np.empty(rows)
    upper_u, upper_v = np.empty(upper_count), np.empty(upper_count)
    lower_u, lower_v = np.empty(lower_count), np.empty(lower_count)
    samples = np.empty(64)
    for b in range(rows):
        first_x, first_y = polygons_px[b, 0, 0], polygons_px[b, 0, 1]
        chord_x = polygons_px[b, upper_count - 1, 0] - first_x
        chord_y = polygons_px[b, upper_count - 1, 1] - first_y
        width = math.sqrt(chord_x * chord_x + chord_y * chord_y)
        axis_x, axis_y = chord_x / max(width, 1e-9), chord_y / max(width, 1e-9)
        # v across the chord, down the image (the normal (-ay, ax), turned to point down)
        sign = 1.0 if axis_x > 0 or (axis_x == 0 and axis_y <= 0) else -1.0
        for i in range(size):
            dx, dy = polygons_px[b, i, 0] - first_x, polygons_px[b, i, 1] - first_y
            u, v = dx * axis_x + dy * axis_y, (dy * axis_x - dx * axis_y) * sign
            if i < upper_count:
                upper_u[i], upper_v[i] = u, v
            if i >= upper_count - 1:
                lower_u[i - upper_count + 1], lower_v[i - upper_count + 1] = u, v
            if i == 0:
                lower_u[lower_count - 1], lower_v[lower_count - 1] = u, v
        for s in range(64):
            samples[s] = (s + 0.5) * (width / 64)
        up = np.argsort(upper_u, kind="mergesort")  # stable, as the NumPy version's
        low = np.argsort(lower_u, kind="mergesort")
        gap = np.interp(samples, lower_u[low], lower_v[low])
        gap -= np.interp(samples, upper_u[up], upper_v[up])
        out[b] = np.maximum(gap, 0.0).sum() / 64
    return out


@numba.njit(cache=True, nogil=True)
def barycentric_affines(
    verts_px: np.ndarray, triangles: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled; see test_rasterize
    """(T, 3, 3) float64: per triangle the map from a homogeneous pixel ``(x, y, 1)`` to its
    barycentric weights (what :func:`augmentface.render.rasterize._barycentric_affines`
    documents); ``verts_px`` (N, 2) float64, ``triangles`` (T, 3) intp. The arithmetic is the
    NumPy expression's, in its order: the same bits."""
    maps = np.empty((triangles.shape[0], 3, 3))
    for t in range(triangles.shape[0]):
        a, b, c = triangles[t, 0], triangles[t, 1], triangles[t, 2]
        ax, ay = verts_px[a, 0], verts_px[a, 1]
        abx, aby = verts_px[b, 0] - ax, verts_px[b, 1] - ay
        acx, acy = verts_px[c, 0] - ax, verts_px[c, 1] - ay
        det = abx * acy - aby * acx
        inv_det = 1.0 / det if det != 0.0 else 0.0  # degenerate: all weight on the first
        maps[t, 1, 0], maps[t, 1, 1] = acy * inv_det, -acx * inv_det
        maps[t, 2, 0], maps[t, 2, 1] = -aby * inv_det, abx * inv_det
        for k in (1, 2):
            maps[t, k, 2] = -(maps[t, k, 0] * ax + maps[t, k, 1] * ay)
        for j in range(3):
            maps[t, 0, j] = -maps[t, 1, j] - maps[t, 2, j]
        maps[t, 0, 2] += 1.0
    return maps


@numba.njit(cache=True, nogil=True)
def corner_affines(
    corners: np.ndarray, bary_maps: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled; see test_rasterize
    """(T, 2, 3) float64: per triangle ``t`` the affine map from a homogeneous pixel ``(x, y,
    1)`` to the barycentric combination of its corners' 2-D values (their source position in
    the photo for the warp, their texel position for the detail layer): ``Σ_k corners[t, k,
    d] · bary_maps[t, k, j]`` for axis ``d`` and coefficient ``j``, summed in corner order;
    ``corners`` (T, 3, 2) float64, ``bary_maps`` (T, 3, 3) float64."""
    count = corners.shape[0]
    out = np.empty((count, 2, 3))
    for t in range(count):
        for d in range(2):
            for j in range(3):
                out[t, d, j] = (
                    corners[t, 0, d] * bary_maps[t, 0, j]
                    + corners[t, 1, d] * bary_maps[t, 1, j]
                    + corners[t, 2, d] * bary_maps[t, 2, j]
                )
    return out


@numba.njit(cache=True, nogil=True)
def signed_areas_px2(
    verts_px: np.ndarray, triangles: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled; see test_rasterize
    """(T,) float64 signed areas, px², of the (T, 3) intp ``triangles`` over (N, 2) float64
    ``verts_px``: half the cross product of the edges from the first corner, as NumPy's
    expression computes it."""
    areas = np.empty(triangles.shape[0])
    for t in range(triangles.shape[0]):
        a, b, c = triangles[t, 0], triangles[t, 1], triangles[t, 2]
        ax, ay = verts_px[a, 0], verts_px[a, 1]
        cross = (verts_px[b, 0] - ax) * (verts_px[c, 1] - ay)
        cross -= (verts_px[b, 1] - ay) * (verts_px[c, 0] - ax)
        areas[t] = 0.5 * cross
    return areas
