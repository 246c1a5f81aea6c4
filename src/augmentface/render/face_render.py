"""Re-render a fitted face with a new expression, using the photo's own texture.

The fitted mesh (MediaPipe's 468 landmarks) is moved by the expression change, posed into the
image; every pixel of the deformed mesh takes its colour from the same surface point in the
source photo (backward mapping, :func:`augmentface.render.rasterize.warp_mesh`). A fixed ring of
anchor vertices around the face outline, triangulated to it, holds the warp at zero at the mask
edge, so the face blends into the untouched photo without a seam. Where the lips part further
than in the source, a procedural mouth interior is painted
(:func:`augmentface.render.mouth.paint_mouth_cavity`) instead of stretching the lips' pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from augmentface.errors import RenderError
from augmentface.face import topology as topo
from augmentface.face.model import N_MESH_VERTICES, FaceModel
from augmentface.render.mouth import mouth_opening_px, paint_mouth_cavity
from augmentface.render.rasterize import warp_mesh

#: Anchor ring radius relative to the face outline, from the outline's centroid.
RING_SCALE = 1.3
#: Feather width of the mask's edge, as a fraction of the ring's width.
FEATHER_FRACTION = 0.25
#: The cavity is painted when the target opening exceeds the source's by this many pixels and
#: by this factor: stretching a source's own teeth further than that looks like a grimace.
MIN_NEW_OPENING_PX = 1.5
MIN_OPENING_RATIO = 1.25
#: A closing mouth keeps its teeth still only when most of the new opening lies within the
#: old one; otherwise (a jaw that drops while the lips close) the interior would show the old
#: lip where the new opening is.
MIN_STATIC_SHARE = 0.85


@dataclass(frozen=True)
class RenderedFace:
    """One rendered face: a crop of the image plus where it goes.

    Attributes
    ----------
    image_rgb : (h, w, 3) uint8, the crop ``roi`` of the re-rendered photo.
    alpha : (h, w) uint8, 255 inside the face and anchor band, feathered to 0 at the ring.
    roi : (x0, y0, x1, y1) in full-image pixels, half-open.
    target_verts_px : (468, 3) float, the deformed mesh in image pixels.
    mouth_painted : whether a procedural mouth interior was painted.
    """

    image_rgb: np.ndarray
    alpha: np.ndarray
    roi: tuple[int, int, int, int]
    target_verts_px: np.ndarray
    mouth_painted: bool


def anchor_ring_px(oval_px: np.ndarray, scale: float = RING_SCALE) -> np.ndarray:
    """(36, 2) ring of fixed anchors: the face outline pushed out from its centroid."""
    centre = oval_px.mean(axis=0)
    return centre + scale * (oval_px - centre)


def _band_triangles(n_mesh: int, oval: np.ndarray) -> np.ndarray:
    """Triangles joining outline vertex i, i+1 to ring vertices n_mesh + i, n_mesh + i + 1."""
    k = len(oval)
    i = np.arange(k)
    j = (i + 1) % k
    ring_i, ring_j = n_mesh + i, n_mesh + j
    return np.concatenate(
        [np.stack([oval[i], oval[j], ring_j], 1), np.stack([oval[i], ring_j, ring_i], 1)]
    ).astype(np.int32)


def _lip_rgb(image_rgb: np.ndarray, verts_px: np.ndarray) -> np.ndarray:
    """Median colour of the lips, sampled between the outer and inner lip contours."""
    outer = verts_px[list(topo.LIPS_OUTER), :2]
    inner = verts_px[list(topo.LIPS_INNER), :2]
    points = np.concatenate([outer, 0.5 * (outer + inner)])
    h, w = image_rgb.shape[:2]
    xs = np.clip(np.round(points[:, 0]).astype(int), 0, w - 1)
    ys = np.clip(np.round(points[:, 1]).astype(int), 0, h - 1)
    return np.median(image_rgb[ys, xs].astype(np.float64), axis=0)


def _mask(ring_px: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
    """Feathered 0–255 mask of the ring polygon inside the roi."""
    x0, y0, x1, y1 = roi
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    polygon = np.round((ring_px - (x0, y0)) * 16).astype(np.int32)
    cv2.fillPoly(mask, [polygon], 255, lineType=cv2.LINE_AA, shift=4)
    width = float(np.ptp(ring_px[:, 0]))
    feather = max(1, round(width * (RING_SCALE - 1) / RING_SCALE * FEATHER_FRACTION))
    # Erode then blur: the feather stays inside the ring, where the warp is already ~identity.
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=feather)
    return cv2.GaussianBlur(mask, (0, 0), feather / 2.0)


def render_expression(
    image_rgb: np.ndarray,
    landmarks_px: np.ndarray,
    delta_verts_px: np.ndarray,
    model: FaceModel,
    *,
    interiors: bool = True,
) -> RenderedFace:
    """Deform the face in ``image_rgb`` by ``delta_verts_px`` and re-render it.

    Parameters
    ----------
    image_rgb : (H, W, 3) uint8 source photo.
    landmarks_px : (478 or 468, 3) MediaPipe landmarks of the face, image frame (px).
    delta_verts_px : (468, 3) displacement of every mesh vertex in the image frame (px), i.e.
        the expression change posed into the image
        (:func:`augmentface.frames.offsets_model_to_image`).
    model : the face model (topology and triangles).
    interiors : True (the default) treats the openings as what lies behind them: still
        eyeballs and closing teeth (:func:`_static_interiors`), sclera painted where an eye
        widens (:func:`_widen_eyes`), a mouth interior where the lips part
        (:func:`_paint_mouth`). False gives the plain mesh warp, which stretches the openings'
        pixels like skin: the naive baseline, for comparisons only.
    """
    src = np.asarray(landmarks_px, dtype=np.float64)[:N_MESH_VERTICES]
    dst = src + delta_verts_px
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise RenderError("non-finite vertices")
    oval = np.asarray(topo.FACE_OVAL)
    ring = anchor_ring_px(src[oval, :2])
    n = len(src)
    far = src[:, 2].max() + np.ptp(src[:, 0])  # the band lies behind every face triangle
    src_all = np.vstack([src[:, :2], ring])
    dst_all = np.vstack([dst[:, :2], ring])
    depth = np.concatenate([dst[:, 2], np.full(len(ring), far)])
    triangles = np.vstack([model.triangles, _band_triangles(n, oval)])
    if interiors:
        src_all, dst_all, depth, triangles = _static_interiors(
            src_all, dst_all, depth, triangles, model.topology, src, dst
        )
    h, w = image_rgb.shape[:2]
    x0, y0 = np.floor(ring.min(axis=0)).astype(int)
    x1, y1 = np.ceil(ring.max(axis=0)).astype(int) + 1
    roi = (max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1)))
    if roi[2] - roi[0] < 4 or roi[3] - roi[1] < 4:
        raise RenderError(f"face region {roi} is too small or outside the image")
    warp = warp_mesh(image_rgb, src_all, dst_all, depth, triangles, roi=roi)
    if not interiors:
        return RenderedFace(warp.image_rgb, _mask(ring, roi), roi, dst, False)
    crop = _widen_eyes(warp.image_rgb, image_rgb, np.asarray(landmarks_px, np.float64), dst, roi)
    crop, painted = _paint_mouth(crop, image_rgb, src, dst, roi)
    return RenderedFace(crop, _mask(ring, roi), roi, dst, painted)


def _static_interiors(src_all, dst_all, depth, triangles, topology, src, dst):
    """Let lids and closing lips slide over a still eyeball and still teeth.

    The interior triangles of the eyes, and of a closing mouth, get their own copies of the
    contour vertices whose source position is their target position: eyeball, iris and teeth
    are sampled where they are, unscaled, and the lids and lips move over them (closing eyes
    hide the iris under lid; closing a laughing mouth hides its teeth under lip, with no
    squashed ghost of them). An opening mouth keeps the stretched mapping, and
    :func:`_paint_mouth` paints one that opens well beyond its old opening.
    """
    triangles = triangles.copy()
    interior = np.zeros(len(triangles), bool)
    interior[: len(topology.eye_interior)] = topology.eye_interior | topology.mouth_interior
    candidates = np.flatnonzero(interior)
    for loop, upper in (
        (topo.LEFT_EYE, topo.EYE_UPPER_COUNT),
        (topo.RIGHT_EYE, topo.EYE_UPPER_COUNT),
        (topo.LIPS_INNER, topo.LIPS_INNER_UPPER_COUNT),
    ):
        contour = list(loop)
        # Eyeballs always stay still (_widen_eyes paints what a widening eye reveals); the
        # teeth only while the mouth closes within its old opening.
        if loop is topo.LIPS_INNER and (
            mouth_opening_px(dst[contour, :2], upper) >= mouth_opening_px(src[contour, :2], upper)
            or _share_inside(dst[contour, :2], src[contour, :2]) < MIN_STATIC_SHARE
        ):
            continue
        mine = candidates[np.isin(triangles[candidates], contour).all(axis=1)]
        copies = {v: len(src_all) + i for i, v in enumerate(contour)}
        src_all = np.vstack([src_all, dst[contour, :2]])
        dst_all = np.vstack([dst_all, dst[contour, :2]])
        depth = np.concatenate([depth, dst[contour, 2]])
        triangles[mine] = np.vectorize(copies.get)(triangles[mine])
    return src_all, dst_all, depth, triangles


#: Iris landmarks of MediaPipe's 478-point output: centre, then four points on the rim.
_IRISES = {id(topo.LEFT_EYE): range(473, 478), id(topo.RIGHT_EYE): range(468, 473)}


def _widen_eyes(crop, image_rgb, landmarks_px, dst, roi) -> np.ndarray:
    """Paint the eyeball that a widening eye (AU5) reveals above or below the old opening.

    The eyeball stays still (:func:`_static_interiors`), so the newly opened band would show
    the old lid's skin: it gets sclera, coloured from the eye's own visible sclera and shaded
    under the lid, and the iris continues as a disc around MediaPipe's iris centre, filled
    from the visible iris mirrored through its centre.
    """
    if len(landmarks_px) < 478:
        return crop
    out = crop
    offset = np.array([roi[0], roi[1]], dtype=np.float64)
    for loop in (topo.LEFT_EYE, topo.RIGHT_EYE):
        contour = list(loop)
        src_poly, dst_poly = landmarks_px[contour, :2], dst[contour, :2]
        if mouth_opening_px(dst_poly, topo.EYE_UPPER_COUNT) <= 1.05 * mouth_opening_px(
            src_poly, topo.EYE_UPPER_COUNT
        ):
            continue
        out = _paint_revealed_eyeball(
            out,
            image_rgb,
            src_poly - offset,
            dst_poly - offset,
            landmarks_px[list(_IRISES[id(loop)]), :2] - offset,
            roi,
        )
    return out


def _paint_revealed_eyeball(crop, image_rgb, src_poly, dst_poly, iris, roi) -> np.ndarray:
    shape = crop.shape[:2]
    # The old opening, less the band along its rim where the old lashes and lid shadow lie.
    rim = max(1, round(0.2 * mouth_opening_px(src_poly, topo.EYE_UPPER_COUNT)))
    old = cv2.erode(_fill(src_poly, shape).astype(np.uint8), np.ones((2 * rim + 1, 1), np.uint8))
    old = old.astype(bool)
    new = _fill(dst_poly, shape) & ~old
    if not new.any():
        return crop
    centre = iris[0]
    radius = float(np.mean(np.linalg.norm(iris[1:] - centre, axis=1)))
    ys, xs = np.nonzero(new)
    in_iris = np.hypot(xs - centre[0], ys - centre[1]) <= radius
    source = image_rgb[roi[1] : roi[3], roi[0] : roi[2]]
    visible = source[old & ~_disc(centre, radius * 1.1, shape)]
    if len(visible):
        # The opening beside the iris also holds lashes, lid shadow and the caruncle: the
        # sclera is its brightest part.
        luma = visible.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        sclera = np.median(visible[luma >= np.percentile(luma, 60)], axis=0)
    else:
        sclera = np.array([225, 215, 205])
    out = crop.copy()
    # Shade the sclera toward the lid margin the way the lid's shadow falls on a real eye.
    height = max(np.ptp(dst_poly[:, 1]), 1.0)
    depth = np.clip((ys - dst_poly[:, 1].min()) / height, 0.0, 1.0)[:, None]
    out[ys, xs] = np.clip(sclera * (0.8 + 0.2 * depth), 0, 255).astype(np.uint8)
    mirror_x = np.clip(np.round(xs[in_iris]).astype(int), 0, shape[1] - 1)
    mirror_y = np.clip(np.round(2 * centre[1] - ys[in_iris]).astype(int), 0, shape[0] - 1)
    out[ys[in_iris], xs[in_iris]] = source[mirror_y, mirror_x]
    soft = cv2.GaussianBlur(new.astype(np.float32), (0, 0), 1.0)[..., None]
    return np.round(soft * out + (1 - soft) * crop).astype(np.uint8)


def _fill(polygon_px: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon_px * 16).astype(np.int32)], 1, shift=4)
    return mask.astype(bool)


def _disc(centre: np.ndarray, radius: float, shape: tuple[int, int]) -> np.ndarray:
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(xs - centre[0], ys - centre[1]) <= radius


def _share_inside(polygon_px: np.ndarray, outer_px: np.ndarray) -> float:
    """Share of a polygon's area that lies inside another polygon (rasterised at 1/4 px)."""
    origin = np.minimum(polygon_px.min(axis=0), outer_px.min(axis=0))
    size = np.ceil((np.maximum(polygon_px.max(axis=0), outer_px.max(axis=0)) - origin) * 4) + 2
    shape = (int(size[1]), int(size[0]))
    masks = []
    for points in (polygon_px, outer_px):
        mask = np.zeros(shape, np.uint8)
        cv2.fillPoly(mask, [np.round((points - origin) * 4).astype(np.int32)], 1)
        masks.append(mask.astype(bool))
    area = masks[0].sum()
    return float((masks[0] & masks[1]).sum() / area) if area else 1.0


def _paint_mouth(crop, image_rgb, src, dst, roi) -> tuple[np.ndarray, bool]:
    """Paint a mouth interior where the target's lips part further than the source's."""
    inner = list(topo.LIPS_INNER)
    upper = topo.LIPS_INNER_UPPER_COUNT
    opening_src = mouth_opening_px(src[inner, :2], upper)
    opening_dst = mouth_opening_px(dst[inner, :2], upper)
    if opening_dst < max(opening_src + MIN_NEW_OPENING_PX, MIN_OPENING_RATIO * opening_src):
        return crop, False
    polygon = dst[inner, :2] - (roi[0], roi[1])
    painted = paint_mouth_cavity(crop, polygon, upper_count=upper, lip_rgb=_lip_rgb(image_rgb, src))
    return painted, True
