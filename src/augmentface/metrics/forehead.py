"""Forehead and hairline tearing: how hard a brow movement strains the warp above the brows.

The renderer (:func:`augmentface.render.face_render.render_expression`) moves the brows with the
mesh while the face outline's top and the anchor ring outside it stay put, so the skin between
the brows and the hairline is stretched (brows up, AU1/AU2) or squeezed (brows down, AU4). A
gentle strain reads as forehead skin moving; a strong one tears: hair and skin texture smear
into streaks, or a triangle folds over and its texture vanishes.

Region
    The *forehead* is every mesh triangle whose three vertices lie at or above the lowest vertex
    of the brows' upper contours in the canonical mesh (model frame, ``y`` up; so the region
    follows the face whatever the head pose), plus the renderer's band triangles from the face
    outline to the anchor ring along the outline's stretch above that height: the hairline.

Geometric strain
    Each triangle's source-to-target map is affine; its 2 x 2 Jacobian ``J`` (target px per
    source px) has singular values ``s1 >= s2``. The *area ratio* is ``det J`` (1 = unchanged,
    below 0 = folded), the *anisotropy* ``s1 / s2`` (1 = no shear or one-way stretch).

Photometric strain
    Mean squared luma gradient (Rec. 601 luma, 3 x 3 Sobel in grey levels / px, as the seam
    score of :mod:`augmentface.metrics.artifacts`) over the target forehead, output over source:
    below 1 where texture is smeared, above 1 where the warp adds edges.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from augmentface.face import topology as topo
from augmentface.metrics.artifacts import gradient_energy
from augmentface.render.warp import anchor_ring_px

__all__ = [
    "WarpStrain",
    "forehead_gradient_ratio",
    "forehead_mesh",
    "forehead_strain",
    "triangle_jacobians",
    "warp_strain",
]

#: Below this |area| (px²) a source triangle is degenerate and its Jacobian meaningless.
_MIN_SOURCE_AREA_PX2 = 1e-6


class WarpStrain(NamedTuple):
    """How far a piecewise-affine warp strains its triangles.

    Attributes
    ----------
    min_area_ratio, max_area_ratio : float
        Smallest and largest ``det J`` (signed target area / source area); 1.0 for a rigid
        motion, 0 or below where a triangle collapses or folds.
    max_anisotropy : float
        Largest ``s1 / s2``, >= 1; ``inf`` for a triangle collapsed onto a line or a point.
    folds : int
        Triangles whose winding flips or whose target area collapses (``det J <= 0``).
    """

    min_area_ratio: float
    max_area_ratio: float
    max_anisotropy: float
    folds: int


def triangle_jacobians(src_px: np.ndarray, dst_px: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Jacobian of each triangle's affine source-to-target map.

    Parameters
    ----------
    src_px, dst_px : np.ndarray
        (N, >=2) float. Vertex positions before and after the warp; the first two columns are
        ``x, y`` in px.
    triangles : np.ndarray
        (T, 3) int. Vertex indices per triangle.

    Returns
    -------
    np.ndarray
        (T, 2, 2) float64, unitless (target px per source px).

    Raises
    ------
    ValueError
        When the vertex arrays differ in shape, or a source triangle is degenerate.
    """
    src = np.asarray(src_px, dtype=np.float64)
    dst = np.asarray(dst_px, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] < 2:
        raise ValueError(f"src_px {src.shape} and dst_px {dst.shape} must be (N, >=2) alike")
    tris = np.asarray(triangles)

    def edges(verts: np.ndarray) -> np.ndarray:
        a, b, c = (verts[tris[:, k], :2] for k in range(3))
        return np.stack([b - a, c - a], axis=-1)  # (T, 2, 2): edge vectors as columns

    src_edges = edges(src)
    if (np.abs(np.linalg.det(src_edges)) < 2 * _MIN_SOURCE_AREA_PX2).any():
        raise ValueError("a source triangle is degenerate (zero area)")
    return edges(dst) @ np.linalg.inv(src_edges)


def warp_strain(src_px: np.ndarray, dst_px: np.ndarray, triangles: np.ndarray) -> WarpStrain:
    """Summarise the strain of a piecewise-affine warp over the given triangles.

    Parameters
    ----------
    src_px, dst_px : np.ndarray
        (N, >=2) float. Vertex positions before and after the warp, ``x, y`` in px first.
    triangles : np.ndarray
        (T, 3) int, T >= 1. Vertex indices of the triangles to summarise.

    Returns
    -------
    WarpStrain
        ``(1.0, 1.0, 1.0, 0)`` for the identity or any rigid motion.
    """
    jacobians = triangle_jacobians(src_px, dst_px, triangles)
    det = np.linalg.det(jacobians)
    singular = np.linalg.svd(jacobians, compute_uv=False)  # (T, 2), descending
    with np.errstate(divide="ignore"):
        anisotropy = singular[:, 0] / singular[:, 1]
    return WarpStrain(
        min_area_ratio=float(det.min()),
        max_area_ratio=float(det.max()),
        max_anisotropy=float(anisotropy.max()),
        folds=int((det <= 0).sum()),
    )


def forehead_mesh(
    src_px: np.ndarray, dst_px: np.ndarray, verts_model_mm: np.ndarray, triangles: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The forehead triangles (see the module notes) with the anchor ring the renderer adds.

    Parameters
    ----------
    src_px, dst_px : np.ndarray
        (468, >=2) float. The mesh fitted to the photo and moved to the target, image px.
    verts_model_mm : np.ndarray
        (468, 3) float. The canonical mesh, model frame, mm, ``y`` up
        (``FaceModel.topology.verts_model_mm``): it decides which triangles are forehead.
    triangles : np.ndarray
        (T, 3) int. The mesh's triangles (``FaceModel.triangles``).

    Returns
    -------
    tuple of np.ndarray
        ``(src_all, dst_all, forehead)``: (468 + 36, 2) source and target vertices, the ring
        (fixed, so the same in both) appended after the mesh; (F, 3) int triangles over them.
    """
    src = np.asarray(src_px, dtype=np.float64)[:, :2]
    dst = np.asarray(dst_px, dtype=np.float64)[:, :2]
    height = np.asarray(verts_model_mm, dtype=np.float64)[:, 1]
    brows = list(topo.LEFT_BROW_UPPER + topo.RIGHT_BROW_UPPER)
    above = height >= height[brows].min()
    tris = np.asarray(triangles)
    inner = tris[above[tris].all(axis=1)]
    oval = np.asarray(topo.FACE_OVAL)
    ring = anchor_ring_px(src[oval])
    n = len(src)
    # The band joins outline vertices i, i+1 to ring vertices i, i+1, as the renderer's does.
    i = np.flatnonzero(above[oval] & np.roll(above[oval], -1))
    j = (i + 1) % len(oval)
    band = np.concatenate(
        [np.stack([oval[i], oval[j], n + j], 1), np.stack([oval[i], n + j, n + i], 1)]
    )
    forehead = np.concatenate([inner, band]).astype(np.int32)
    return np.vstack([src, ring]), np.vstack([dst, ring]), forehead


def forehead_strain(
    src_px: np.ndarray, dst_px: np.ndarray, verts_model_mm: np.ndarray, triangles: np.ndarray
) -> WarpStrain:
    """Geometric strain of the forehead and hairline band (see the module notes).

    Parameters are those of :func:`forehead_mesh`. Returns :func:`warp_strain` over it.
    """
    src_all, dst_all, forehead = forehead_mesh(src_px, dst_px, verts_model_mm, triangles)
    return warp_strain(src_all, dst_all, forehead)


def forehead_gradient_ratio(
    output_rgb: np.ndarray,
    source_rgb: np.ndarray,
    src_px: np.ndarray,
    dst_px: np.ndarray,
    verts_model_mm: np.ndarray,
    triangles: np.ndarray,
) -> float:
    """Photometric strain: forehead gradient energy of the output over the source's.

    Parameters
    ----------
    output_rgb, source_rgb : np.ndarray
        (H, W, 3) uint8 RGB: the blended image and the photo it was made from.
    src_px, dst_px, verts_model_mm, triangles
        As :func:`forehead_mesh`; the region is the forehead at its target position.

    Returns
    -------
    float
        Unitless; exactly 1.0 when the output equals the source, below 1 for smeared texture,
        above 1 for added edges. NaN when the region covers no pixel of the image, or the
        source has no gradient there.

    Raises
    ------
    ValueError
        When the images differ in shape or are not (H, W, 3) uint8.
    """
    output, source = np.asarray(output_rgb), np.asarray(source_rgb)
    if output.shape != source.shape or output.ndim != 3 or output.dtype != np.uint8:
        raise ValueError(
            f"images must be (H, W, 3) uint8 alike, got {output.shape}, {source.shape}"
        )
    _, dst_all, forehead = forehead_mesh(src_px, dst_px, verts_model_mm, triangles)
    mask = np.zeros(output.shape[:2], np.uint8)
    for triangle in np.round(dst_all[forehead] * 16).astype(np.int32):
        cv2.fillConvexPoly(mask, triangle, 1, shift=4)
    ys, xs = np.nonzero(mask)
    if not ys.size:
        return float("nan")
    reference = gradient_energy(source, ys, xs)
    return gradient_energy(output, ys, xs) / reference if reference > 0 else float("nan")
