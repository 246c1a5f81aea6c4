"""The geometry layer of a render: the fitted mesh warped to its target, with the photo's texture.

Every pixel of the deformed mesh takes its colour from the same surface point in the source
photo (backward mapping, :func:`augmentface.render.rasterize.warp_mesh`). A fixed ring of anchor
vertices around the face outline, triangulated to it, holds the warp at zero at the mask edge,
so the face blends into the untouched photo without a seam. The interiors of chosen openings
(eyeballs, teeth) can be held still while their rims (lids, lips) slide over them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from augmentface.errors import RenderError
from augmentface.face import topology as topo
from augmentface.face.model import FaceModel
from augmentface.face.topology import MeshTopology
from augmentface.render.blur import gaussian_blur
from augmentface.render.model_tables import per_model, read_only
from augmentface.render.rasterize import warp_mesh

#: Anchor ring radius relative to the face outline, from the outline's centroid.
RING_SCALE = 1.3
#: Feather width of the mask's edge, as a fraction of the ring's width.
FEATHER_FRACTION = 0.25


@dataclass(frozen=True)
class WarpLayer:
    """The warped face region, which the later layers paint on.

    Attributes
    ----------
    image_rgb : (h, w, 3) uint8, the crop ``roi`` of the warped photo.
    alpha : (h, w) uint8, 255 inside the face and anchor band, feathered to 0 at the ring.
    roi : (x0, y0, x1, y1) in full-image pixels, half-open.
    triangle_ids : (h, w) int32, the visible target triangle per pixel: indices below
        ``len(model.triangles)`` are the mesh's, higher ones the anchor band's, -1 none (the
        detail layer shades the mesh's skin through it).
    barycentric_maps : (T', 3, 3) float64, per triangle of ``triangle_ids`` the map from a
        homogeneous crop pixel ``(x, y, 1)`` to its barycentric weights in the target mesh
        (the first ``len(model.triangles)`` are the mesh's; the detail layer reuses them).
    """

    image_rgb: np.ndarray
    alpha: np.ndarray
    roi: tuple[int, int, int, int]
    triangle_ids: np.ndarray
    barycentric_maps: np.ndarray | None = None


def anchor_ring_px(oval_px: np.ndarray, scale: float = RING_SCALE) -> np.ndarray:
    """(36, 2) ring of fixed anchors: the face outline pushed out from its centroid."""
    centre = oval_px.mean(axis=0)
    return centre + scale * (oval_px - centre)


def warp_face(
    image_rgb: np.ndarray,
    src_verts_px: np.ndarray,
    dst_verts_px: np.ndarray,
    model: FaceModel,
    *,
    static_loops: Sequence[Sequence[int]] = (),
) -> WarpLayer:
    """Warp the face from the source mesh to the target mesh, inside the anchor ring.

    Parameters
    ----------
    image_rgb : (H, W, 3) uint8 source photo.
    src_verts_px : (468, 3) float, the fitted mesh in the image frame (x, y px; depth in px,
        larger is farther).
    dst_verts_px : (468, 3) float, the target mesh in the same frame.
    model : the face model (triangles and topology).
    static_loops : contours (vertex-index loops of the topology, e.g.
        :data:`augmentface.face.topology.LEFT_EYE`) whose interior stays still while the
        contour moves over it (:func:`_static_interiors`); empty gives the plain mesh warp.

    Returns
    -------
    WarpLayer
        The warped crop, its feathered mask and its roi (the anchor ring's box, clipped).

    Raises
    ------
    RenderError
        When the ring's box inside the image is under 4 px on a side.
    """
    oval = np.asarray(topo.FACE_OVAL)
    ring = anchor_ring_px(src_verts_px[oval, :2])
    n = len(src_verts_px)
    # The band lies behind every face triangle.
    far = src_verts_px[:, 2].max() + np.ptp(src_verts_px[:, 0])
    triangles, copied = _triangulation(model, n, static_loops)
    # The static interiors' contour copies sit where the contour goes (_static_interiors).
    still = dst_verts_px[copied]
    src_all = np.concatenate([src_verts_px[:, :2], ring, still[:, :2]])
    dst_all = np.concatenate([dst_verts_px[:, :2], ring, still[:, :2]])
    depth = np.concatenate([dst_verts_px[:, 2], np.full(len(ring), far), still[:, 2]])
    h, w = image_rgb.shape[:2]
    x0, y0 = np.floor(ring.min(axis=0)).astype(int)
    x1, y1 = np.ceil(ring.max(axis=0)).astype(int) + 1
    roi = (max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1)))
    if roi[2] - roi[0] < 4 or roi[3] - roi[1] < 4:
        raise RenderError(f"face region {roi} is too small or outside the image")
    warp = warp_mesh(image_rgb, src_all, dst_all, depth, triangles, roi=roi)
    return WarpLayer(
        warp.image_rgb, _face_mask(ring, roi), roi, warp.triangle_ids, warp.barycentric_maps
    )


def _triangulation(
    model: FaceModel, n_mesh: int, loops: Sequence[Sequence[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """The warp's triangles and the contour vertices its static interiors copy, per model.

    Returns the (T, 3) int32 triangles (the mesh's, then the anchor band's, with each loop's
    interior re-indexed to copies of its contour as :func:`_static_interiors` does it) and the
    (C,) intp mesh vertex of each copy, in the order the copies follow the ``n_mesh`` mesh
    vertices and the ring. Both depend on the model and the loops only, so they are made
    once and kept (read-only).
    """
    # NumPy integers hash and compare as Python ints do: the same key without converting each
    # vertex (~15 µs a render).
    key = ("warp triangulation", n_mesh, tuple(map(tuple, loops)))
    return per_model(model, key, lambda: _build_triangulation(model, n_mesh, loops))


def _build_triangulation(
    model: FaceModel, n_mesh: int, loops: Sequence[Sequence[int]]
) -> tuple[np.ndarray, np.ndarray]:
    oval = np.asarray(topo.FACE_OVAL)
    n_all = n_mesh + len(oval)
    # Only the indices matter here: vertex k carries the value k.
    index = np.arange(n_mesh, dtype=np.float64)
    triangles = np.vstack([model.triangles, _band_triangles(n_mesh, oval)])
    zeros_2 = np.zeros((n_all, 2))
    _, copies, _, triangles = _static_interiors(
        zeros_2,
        zeros_2,
        np.zeros(n_all),
        triangles,
        model.topology,
        np.stack([index, index, index], axis=1),
        loops,
    )
    return read_only(triangles.astype(np.int32), copies[n_all:, 0].astype(np.intp))


def _band_triangles(n_mesh: int, oval: np.ndarray) -> np.ndarray:
    """Triangles joining outline vertex i, i+1 to ring vertices n_mesh + i, n_mesh + i + 1."""
    k = len(oval)
    i = np.arange(k)
    j = (i + 1) % k
    ring_i, ring_j = n_mesh + i, n_mesh + j
    return np.concatenate(
        [np.stack([oval[i], oval[j], ring_j], 1), np.stack([oval[i], ring_j, ring_i], 1)]
    ).astype(np.int32)


def _static_interiors(
    src_all: np.ndarray,
    dst_all: np.ndarray,
    depth: np.ndarray,
    triangles: np.ndarray,
    topology: MeshTopology,
    dst: np.ndarray,
    loops: Sequence[Sequence[int]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Let each loop's contour slide over a still interior.

    The interior triangles of each loop get their own copies of the contour vertices whose
    source position is their target position: eyeball, iris and teeth are sampled where they
    are, unscaled, and the lids and lips move over them (closing eyes hide the iris under the
    lid; closing a laughing mouth hides its teeth under the lip, with no squashed ghost of
    them). Returns the extended vertex arrays ((N + added, 2) px, (N + added,) depth) and the
    (T, 3) triangles with the interiors re-indexed to the copies.
    """
    triangles = triangles.copy()
    interior = np.zeros(len(triangles), bool)
    interior[: len(topology.eye_interior)] = topology.eye_interior | topology.mouth_interior
    candidates = np.flatnonzero(interior)
    for loop in loops:
        contour = list(loop)
        mine = candidates[np.isin(triangles[candidates], contour).all(axis=1)]
        copies = {v: len(src_all) + i for i, v in enumerate(contour)}
        src_all = np.vstack([src_all, dst[contour, :2]])
        dst_all = np.vstack([dst_all, dst[contour, :2]])
        depth = np.concatenate([depth, dst[contour, 2]])
        triangles[mine] = np.vectorize(copies.get)(triangles[mine])
    return src_all, dst_all, depth, triangles


#: The last mask made, with its key (:func:`_face_mask`).
_last_mask: tuple[tuple[bytes, tuple[int, int, int, int]], np.ndarray] | None = None


def _face_mask(ring_px: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
    """:func:`_mask`, made once for the targets of one face rendered one after another.

    The ring is the source face's outline pushed out and the roi its box, so every target of
    a face has the same mask; render and the pipeline take a face's targets in a row, and the
    erosion and blur cost ~0.14 ms a target on a 120 px face (more on a bigger one). The key
    is the ring's bytes and the roi, so any other face makes its own. Each call gets its own
    copy (~2 µs), as a freshly made mask is.
    """
    global _last_mask
    key = (np.ascontiguousarray(ring_px, dtype=np.float64).tobytes(), tuple(roi))
    last = _last_mask  # one read: another thread may replace it meanwhile
    if last is None or last[0] != key:
        last = (key, _mask(ring_px, roi))
        _last_mask = last
    return last[1].copy()


def _mask(ring_px: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
    """Feathered 0–255 mask of the ring polygon inside the roi."""
    x0, y0, x1, y1 = roi
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    polygon = np.round((ring_px - (x0, y0)) * 16).astype(np.int32)
    cv2.fillPoly(mask, [polygon], 255, lineType=cv2.LINE_AA, shift=4)
    width = float(np.ptp(ring_px[:, 0]))
    feather = max(1, round(width * (RING_SCALE - 1) / RING_SCALE * FEATHER_FRACTION))
    # Erode then blur: the feather stays inside the ring, where the warp is already ~identity.
    # (One (2f+1)² erosion is OpenCV's own rewrite of f 3x3 ones.)
    mask = cv2.erode(mask, _square(2 * feather + 1))
    return _feather(mask, feather / 2.0, max(1, feather // _FEATHER_STEPS))


#: A feather this many times the blur's step or wider is blurred at the coarser step.
_FEATHER_STEPS = 4


def _feather(mask: np.ndarray, sigma: float, step: int) -> np.ndarray:
    """``mask`` (uint8) blurred by a Gaussian of ``sigma`` px, as cv2.GaussianBlur would.

    In float32 (the bit-exact 8-bit cv2.GaussianBlur costs ~4x as much; the mask moves by at
    most one level); for a wide feather (``step`` > 1) on a grid ``step`` times coarser
    (:func:`augmentface.render.blur.gaussian_blur`), at most a few levels from the
    full-resolution blur and ~20x cheaper on a 1000 px face.
    """
    return cv2.convertScaleAbs(gaussian_blur(mask, sigma, step=step, sigmas=3.0))


@functools.cache
def _square(side: int) -> np.ndarray:
    return np.ones((side, side), np.uint8)
