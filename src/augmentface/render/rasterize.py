"""Backward-mapping mesh warp: re-render a deformed face mesh with texture from the source photo.

The deformed (target) mesh is rasterised into a triangle-ID buffer with the painter's algorithm
(far-to-near, compiled: :mod:`augmentface.render.kernels`, ~0.06 ms for the ~900
triangles of the astronaut's 118x139 face in her 512x512 photo). Every covered target pixel
gets barycentric weights in its target triangle; the same weights applied to the source
triangle give the source position to sample, and one ``cv2.remap`` does the sampling. All
buffers cover only the region of interest (the mesh's bounding box), so a 300 px face in a
4000x3000 photo costs no full-frame work.

Coordinates are pixels with pixel centres at integer ``(x, y)``; ``verts_px[:, 0]`` is ``x``
(column), ``verts_px[:, 1]`` is ``y`` (row).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Below this |signed area| (px²) a target triangle is a degenerate sliver: its inverse affine map
# explodes and its texture would be sampled from arbitrarily far away.
_MIN_AREA_PX2 = 0.05


@dataclass(frozen=True)
class MeshWarp:
    """The re-rendered region of interest of a mesh warp.

    Attributes
    ----------
    image_rgb : np.ndarray
        (h, w, 3) uint8. The warped pixels of the roi; uncovered pixels are the source's.
    covered : np.ndarray
        (h, w) bool. Pixels covered by a drawn (non-folded) target triangle.
    roi : tuple[int, int, int, int]
        ``(x0, y0, x1, y1)`` in full-image pixels, half-open: the arrays above are
        ``image[y0:y1, x0:x1]``.
    triangle_ids : np.ndarray
        (h, w) int32. Index of the visible target triangle per pixel, -1 where uncovered.
    barycentric_maps : np.ndarray | None
        (T, 3, 3) float64. Per target triangle, the linear map from a homogeneous roi pixel
        ``(x, y, 1)`` (roi-local) to its barycentric weights (:func:`barycentric_at`'s); later
        layers that map the same pixels through the same triangles reuse it.
    """

    image_rgb: np.ndarray
    covered: np.ndarray
    roi: tuple[int, int, int, int]
    triangle_ids: np.ndarray
    barycentric_maps: np.ndarray | None = None


def triangle_id_buffer(
    verts_px: np.ndarray,
    depth_px: np.ndarray,
    triangles: np.ndarray,
    shape: tuple[int, int],
    *,
    beneath: np.ndarray | None = None,
) -> np.ndarray:
    """Rasterise a mesh into a buffer of visible triangle indices (painter's algorithm).

    Parameters
    ----------
    verts_px : np.ndarray
        (N, 2) float. Vertex positions ``(x, y)`` in the buffer's pixel frame.
    depth_px : np.ndarray
        (N,) float. Vertex depth; larger is farther from the camera.
    triangles : np.ndarray
        (T, 3) int. Vertex indices per triangle.
    shape : tuple[int, int]
        ``(H, W)`` of the buffer.
    beneath : np.ndarray | None
        (T,) bool. Triangles drawn first, under every other whatever their depth, so they
        show only where no other triangle does (folds: :func:`folded_triangles`).

    Returns
    -------
    np.ndarray
        (H, W) int32. Index of the nearest triangle covering each pixel centre, -1 where none.
    """
    from augmentface.render.kernels import fill_triangle_ids  # compiles on first use

    ids = np.full(shape, -1, dtype=np.int32)
    mean_depth_px = depth_px[triangles].mean(axis=1)
    # Far-to-near so nearer triangles overwrite farther ones; stable so ties draw in index order.
    order = np.argsort(-mean_depth_px, kind="stable")
    if beneath is not None:
        order = np.concatenate([order[beneath[order]], order[~beneath[order]]])
    fill_triangle_ids(ids, *_kernel_mesh(verts_px, triangles), order.astype(np.intp, copy=False))
    return ids


def _barycentric_affines(verts_px: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Per-triangle linear maps from a homogeneous pixel ``(x, y, 1)`` to barycentric weights.

    Each row of the result holds the coefficients of one weight, so the rows sum to
    ``(0, 0, 1)`` and the weights always sum to 1. Degenerate triangles (zero area) have no
    inverse; they get all the weight on their first vertex.

    Returns
    -------
    np.ndarray
        (T, 3, 3) float64. ``weights = maps[t] @ (x, y, 1)``.
    """
    from augmentface.render.kernels import barycentric_affines  # compiles on first use

    return barycentric_affines(*_kernel_mesh(verts_px, triangles))


def barycentric_at(
    ids: np.ndarray, verts_px: np.ndarray, triangles: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Barycentric weights of every covered pixel centre in its triangle.

    Parameters
    ----------
    ids : np.ndarray
        (H, W) int. Triangle index per pixel, -1 where empty (from :func:`triangle_id_buffer`).
    verts_px : np.ndarray
        (N, 2) float. Vertex positions ``(x, y)`` in the same pixel frame as ``ids``.
    triangles : np.ndarray
        (T, 3) int. Vertex indices per triangle.

    Returns
    -------
    rows : np.ndarray
        (M,) intp. Row (``y``) of each covered pixel.
    cols : np.ndarray
        (M,) intp. Column (``x``) of each covered pixel.
    tri : np.ndarray
        (M,) int. Triangle index at each covered pixel.
    bary : np.ndarray
        (M, 3) float64. Weights of the triangle's three vertices; they sum to 1 and
        ``bary @ corners`` is the pixel centre. Edge pixels the rasteriser includes may have
        weights slightly below 0 (extrapolation by under a pixel).
    """
    rows, cols = np.nonzero(ids >= 0)
    tri = ids[rows, cols]
    maps = _barycentric_affines(verts_px, triangles)
    bary = np.empty((rows.size, 3), dtype=np.float64)
    for k in range(3):
        # 1-D takes per coefficient: several times faster than gathering (M, 3, 3) blocks.
        coeffs = maps[:, k]
        bary[:, k] = coeffs[:, 0].take(tri) * cols + coeffs[:, 1].take(tri) * rows
        bary[:, k] += coeffs[:, 2].take(tri)
    return rows, cols, tri, bary


def signed_areas_px2(verts_px: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(T,) float64 signed triangle areas in px² (sign gives the winding in image axes)."""
    from augmentface.render.kernels import signed_areas_px2 as compiled  # compiles on first use

    return compiled(*_kernel_mesh(verts_px, triangles))


def _kernel_mesh(verts_px: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) float64 ``(x, y)`` and (T, 3) intp triangles, contiguous, as the kernels take
    them (no copy when they already are)."""
    return (
        np.ascontiguousarray(np.asarray(verts_px)[:, :2], dtype=np.float64),
        np.ascontiguousarray(triangles, dtype=np.intp),
    )


def folded_triangles(
    src_verts_px: np.ndarray, dst_verts_px: np.ndarray, triangles: np.ndarray
) -> np.ndarray:
    """Triangles that fold over (flip winding) or collapse between source and target.

    A flipped triangle is a fold of the surface: drawn in its depth order it would paste
    mirrored texture over the unfolded surface in front. The warp draws it beneath every other
    triangle instead, so it fills only the hole the fold leaves; left undrawn, that hole would
    keep the photo's own pixels at that place, skin from elsewhere (a light wedge beside each
    corner of a mouth that opens wide), where the fold's texture is its neighbours' own.

    Parameters
    ----------
    src_verts_px : np.ndarray
        (N, 2) float. Source vertex positions ``(x, y)``, px.
    dst_verts_px : np.ndarray
        (N, 2) float. Target vertex positions ``(x, y)``, px.
    triangles : np.ndarray
        (T, 3) int. Vertex indices per triangle.

    Returns
    -------
    np.ndarray
        (T,) bool. True where the signed area changed sign (or was zero in the source) or the
        target area is below ~0.05 px².
    """
    src_area_px2 = signed_areas_px2(src_verts_px, triangles)
    dst_area_px2 = signed_areas_px2(dst_verts_px, triangles)
    flipped = src_area_px2 * dst_area_px2 <= 0.0
    return flipped | (np.abs(dst_area_px2) < _MIN_AREA_PX2)


def _mesh_roi(
    src_verts_px: np.ndarray, dst_verts_px: np.ndarray, shape: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Half-open ``(x0, y0, x1, y1)`` bounding both meshes, clipped to an ``(H, W)`` image."""
    both_px = np.concatenate([src_verts_px, dst_verts_px])
    x0, y0 = np.floor(both_px.min(axis=0)).astype(int)
    x1, y1 = np.ceil(both_px.max(axis=0)).astype(int) + 1
    height, width = shape
    return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)


def _source_maps_px(
    roi: tuple[int, int, int, int],
    src_verts_px: np.ndarray,
    triangles: np.ndarray,
    ids: np.ndarray,
    dst_bary_maps: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Full-image source ``(x, y)`` to sample for every roi pixel, as float32 remap maps.

    Each target triangle's barycentric map composed with its source corners is one affine map
    from a roi pixel to the source position (the barycentric combination of the source
    corners), so the maps are evaluated for the whole roi in one compiled pass
    (:func:`.piecewise_affine_maps`). Uncovered pixels use an extra identity entry: integer
    pixel centres remap exactly, so they keep the source pixels unchanged.
    """
    from augmentface.render.kernels import corner_affines, piecewise_affine_maps

    src_px, triangles = _kernel_mesh(src_verts_px, triangles)
    # to_src in float32: it keeps 1/1000 px at 4000 px, far finer than remap's 1/32 px grid;
    # row (d, j) holds coefficient j of source coordinate d, with an identity entry last.
    to_src = np.empty((2, 3, len(triangles) + 1), np.float32)
    to_src[:, :, :-1] = corner_affines(src_px[triangles], dst_bary_maps).transpose(1, 2, 0)
    to_src[:, :, -1] = ((1.0, 0.0, roi[0]), (0.0, 1.0, roi[1]))
    return piecewise_affine_maps(ids, to_src)


def warp_mesh(
    src_image_rgb: np.ndarray,
    src_verts_px: np.ndarray,
    dst_verts_px: np.ndarray,
    dst_depth_px: np.ndarray,
    triangles: np.ndarray,
    *,
    roi: tuple[int, int, int, int] | None = None,
) -> MeshWarp:
    """Re-render the target mesh with the source photo's texture by backward mapping.

    Parameters
    ----------
    src_image_rgb : np.ndarray
        (H, W, 3) uint8. The source photo.
    src_verts_px : np.ndarray
        (N, 2) float. Mesh vertices ``(x, y)`` fitted to the source photo, px.
    dst_verts_px : np.ndarray
        (N, 2) float. The same vertices moved to the target expression, px.
    dst_depth_px : np.ndarray
        (N,) float. Target vertex depth, larger is farther from the camera (any units that
        order correctly; px by convention).
    triangles : np.ndarray
        (T, 3) int. Vertex indices per triangle.
    roi : tuple[int, int, int, int] | None
        Half-open ``(x0, y0, x1, y1)`` to render, full-image px. ``None``: the bounding box
        of both meshes, clipped to the image.

    Returns
    -------
    MeshWarp
        The rendered roi. Where ``dst == src`` it equals the source roi exactly.

    Raises
    ------
    ValueError
        If the roi is empty (e.g. the meshes lie entirely outside the image).
    """
    if roi is None:
        roi = _mesh_roi(src_verts_px, dst_verts_px, src_image_rgb.shape[:2])
    x0, y0, x1, y1 = (int(v) for v in roi)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"empty render roi {(x0, y0, x1, y1)} for image {src_image_rgb.shape}")
    dst_local_px = np.asarray(dst_verts_px, dtype=np.float64) - (x0, y0)
    folds = folded_triangles(src_verts_px, dst_verts_px, triangles)
    shape = (y1 - y0, x1 - x0)
    ids = triangle_id_buffer(dst_local_px, dst_depth_px, triangles, shape, beneath=folds)
    dst_bary_maps = _barycentric_affines(dst_local_px, triangles)  # (T, 3, 3)
    map_x, map_y = _source_maps_px((x0, y0, x1, y1), src_verts_px, triangles, ids, dst_bary_maps)
    image_rgb = cv2.remap(
        src_image_rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    return MeshWarp(
        image_rgb=image_rgb,
        covered=ids >= 0,
        roi=(x0, y0, x1, y1),
        triangle_ids=ids,
        barycentric_maps=dst_bary_maps,
    )
