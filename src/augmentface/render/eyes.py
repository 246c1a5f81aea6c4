"""The eye interior layer: the eyeball that a widening eye (AU5) reveals.

The warp holds the eyeballs still under the lids (:func:`augmentface.render.warp.warp_face`
with the eye loops static), so an eye that opens beyond its old opening would show the old
lid's skin in the newly opened band. This layer paints sclera there, coloured from the eye's own
visible sclera and shaded under the lid, and continues the iris as a disc around MediaPipe's
iris centre, filled from the visible iris mirrored through its centre.
"""

from __future__ import annotations

import cv2
import numpy as np

from augmentface.face import topology as topo

# The eye's gap between its lids is measured like the mouth's between its lips.
from augmentface.render.mouth import mouth_opening_px, mouth_openings_px
from augmentface.render.skin import cheek_skin_rgb, luma, median_rgb

#: Iris landmarks of MediaPipe's 478-point output: centre, then four points on the rim.
_IRISES = {id(topo.LEFT_EYE): range(473, 478), id(topo.RIGHT_EYE): range(468, 473)}
#: An eye counts as widening when its opening grows by more than this factor.
_WIDEN_RATIO = 1.05
# The whites of the eyes: a near-neutral chroma (RGB / luma), and the least luminance they are
# given against the cheeks' (in a well-lit face they are brighter than skin; in a shadowed
# socket somewhat darker, never as dark as lid skin in shadow).
_SCLERA_CHROMA = np.array([1.02, 1.0, 0.96])
_MAX_SCLERA_SATURATION = 0.12  # (max − min) / luma of the tint it may keep
_MIN_SCLERA_SKIN_LUMA = 0.8


def paint_eyes(
    crop: np.ndarray,
    image_rgb: np.ndarray,
    landmarks_px: np.ndarray,
    dst_verts_px: np.ndarray,
    roi: tuple[int, int, int, int],
) -> np.ndarray:
    """Paint the eyeball that each widening eye reveals beyond its old opening.

    Parameters
    ----------
    crop : (h, w, 3) uint8, the warped crop ``roi`` of the photo; not modified.
    image_rgb : (H, W, 3) uint8 source photo (the sclera and iris colours come from it).
    landmarks_px : (478 or 468, 3) float, MediaPipe landmarks in the image frame (px); without
        the 10 iris landmarks nothing is painted.
    dst_verts_px : (468, 3) float, the target mesh in the image frame (px).
    roi : (x0, y0, x1, y1) of ``crop`` in full-image pixels, half-open.

    Returns
    -------
    (h, w, 3) uint8
        ``crop`` itself when no eye widens, else a painted copy.
    """
    if len(landmarks_px) < 478:
        return crop
    out = None  # copied from the crop when an eye widens, then painted in place
    offset = np.array([roi[0], roi[1]], dtype=np.float64)
    skin_rgb = None  # measured when an eye widens
    loops = (topo.LEFT_EYE, topo.RIGHT_EYE)
    # Both eyes' openings, source and target, in one pass: (left src, left dst, right ...).
    polygons = np.stack(
        [verts[list(loop), :2] for loop in loops for verts in (landmarks_px, dst_verts_px)]
    )
    openings = mouth_openings_px(polygons, topo.EYE_UPPER_COUNT).reshape(2, 2).tolist()
    for loop, (opening_src, opening_dst) in zip(loops, openings, strict=True):
        if opening_dst <= _WIDEN_RATIO * opening_src:
            continue
        contour = list(loop)
        src_poly, dst_poly = landmarks_px[contour, :2], dst_verts_px[contour, :2]
        if skin_rgb is None:
            skin_rgb = cheek_skin_rgb(image_rgb, landmarks_px)
            out = crop.copy()
        _paint_revealed_eyeball(
            out,
            image_rgb,
            src_poly - offset,
            dst_poly - offset,
            landmarks_px[list(_IRISES[id(loop)]), :2] - offset,
            roi,
            skin_rgb,
        )
    return crop if out is None else out


def sclera_rgb(visible_rgb: np.ndarray, skin_rgb: np.ndarray) -> np.ndarray:
    """(3,) colour of the eye's white from its visible opening beside the iris.

    The opening also holds lashes, lid shadow and the caruncle, so the sclera is its brightest
    part (the median above the 60th luminance percentile). A narrow or shadowed eye shows so
    little of it that this picks up lid skin: the colour's departure from a neutral white is
    therefore capped at a sclera's saturation (far less than skin's) and its luminance kept at
    least
    :data:`_MIN_SCLERA_SKIN_LUMA` times the cheeks' luminance.
    """
    visible_rgb = np.asarray(visible_rgb, dtype=np.float64).reshape(-1, 3)
    skin_luma = max(float(luma(skin_rgb)), 1.0)
    if len(visible_rgb):
        brightness = luma(visible_rgb)
        estimate = median_rgb(visible_rgb[brightness >= _percentile(brightness, 0.6)])
    else:
        estimate = skin_rgb
    estimate_luma = max(float(luma(estimate)), 1.0)
    # Keep the estimate's tint (the photo's white balance) up to a sclera's saturation.
    tint = estimate / estimate_luma - _SCLERA_CHROMA
    tint *= min(1.0, _MAX_SCLERA_SATURATION / max(float(np.ptp(tint)), 1e-9))
    return (_SCLERA_CHROMA + tint) * max(estimate_luma, _MIN_SCLERA_SKIN_LUMA * skin_luma)


def _percentile(values: np.ndarray, share: float) -> float:
    """``np.percentile(values, 100 * share)`` (linear) of (M,) values, M >= 1, to the bit,
    through one partition: NumPy's general path costs ~50 µs a call here."""
    index = (len(values) - 1) * share
    low = int(index)  # the floor: index >= 0
    high = min(low + 1, len(values) - 1)
    part = np.partition(values, (low, high))
    a, b, gamma = float(part[low]), float(part[high]), index - low
    # np.percentile's interpolation (numpy.lib._function_base_impl._lerp): from the nearer end
    return b - (b - a) * (1 - gamma) if gamma >= 0.5 else a + (b - a) * gamma


def _paint_revealed_eyeball(
    out: np.ndarray,
    image_rgb: np.ndarray,
    src_poly: np.ndarray,
    dst_poly: np.ndarray,
    iris: np.ndarray,
    roi: tuple[int, int, int, int],
    skin_rgb: np.ndarray,
) -> None:
    """Paint sclera and iris into the (h, w, 3) uint8 crop ``out``, in place, where the eye's
    (16, 2) crop-px loop opens beyond its old one.

    ``iris`` is (5, 2) crop px: the centre, then four rim points; ``skin_rgb`` (3,) the
    cheeks' colour (:func:`.cheek_skin_rgb`).

    Every mask, blur and blend is computed in the eye's box only (:func:`_eye_box`), which
    holds all the pixels this layer can change: the same pixels as over the whole crop at
    a few per cent of its cost.
    """
    # The old opening, less the band along its rim where the old lashes and lid shadow lie.
    rim = max(1, round(0.2 * mouth_opening_px(src_poly, topo.EYE_UPPER_COUNT)))
    bx0, by0, bx1, by1 = _eye_box(src_poly, dst_poly, rim, out.shape[:2])
    shape = (by1 - by0, bx1 - bx0)
    offset = np.array([bx0, by0], dtype=np.float64)
    old = _fill(src_poly - offset, shape).astype(np.uint8)
    old = cv2.erode(old, np.ones((2 * rim + 1, 1), np.uint8)).astype(bool)
    new = _fill(dst_poly - offset, shape) & ~old
    if not new.any():
        return
    centre = iris[0]
    radius = float(np.mean(np.linalg.norm(iris[1:] - centre, axis=1)))
    ys, xs = np.nonzero(new)  # box px
    in_iris = np.hypot(xs + bx0 - centre[0], ys + by0 - centre[1]) <= radius
    source = image_rgb[roi[1] : roi[3], roi[0] : roi[2]]
    visible = source[by0:by1, bx0:bx1][old & ~_disc(centre - offset, radius * 1.1, shape)]
    sclera = sclera_rgb(visible, skin_rgb)
    base = out[by0:by1, bx0:bx1].copy()
    painted = base.copy()
    # Shade the sclera toward the lid margin the way the lid's shadow falls on a real eye.
    height = max(np.ptp(dst_poly[:, 1]), 1.0)
    depth = np.clip((ys + by0 - dst_poly[:, 1].min()) / height, 0.0, 1.0)[:, None]
    painted[ys, xs] = np.clip(sclera * (0.8 + 0.2 * depth), 0, 255).astype(np.uint8)
    # The iris continues mirrored through its centre (crop px, clipped to the crop).
    mirror_x = np.clip(xs[in_iris] + bx0, 0, out.shape[1] - 1)
    mirror_y = np.round(2 * centre[1] - (ys[in_iris] + by0)).astype(int)
    mirror_y = np.clip(mirror_y, 0, out.shape[0] - 1)
    painted[ys[in_iris], xs[in_iris]] = source[mirror_y, mirror_x]
    soft = cv2.GaussianBlur(new.astype(np.float32), (0, 0), 1.0)[..., None]
    # Outside the box the blend's weight is exactly 0: those pixels keep their values.
    out[by0:by1, bx0:bx1] = np.round(soft * painted + (1 - soft) * base).astype(np.uint8)


#: Pixels the eye's box reaches beyond its loops and the erosion's reach: the 1 px Gaussian
#: that blends the painted band in (a 9-tap kernel, 4 px a side) must see only zeros past the
#: box's edge, as it does over the whole crop.
_BOX_MARGIN = 10


def _eye_box(
    src_poly: np.ndarray, dst_poly: np.ndarray, rim: int, shape: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Half-open ``(x0, y0, x1, y1)`` crop px around both (16, 2) crop-px eye loops, grown by
    the rim's erosion and :data:`_BOX_MARGIN`, clipped to the ``(h, w)`` crop."""
    both = np.concatenate([src_poly, dst_poly])
    grow = rim + _BOX_MARGIN
    x0, y0 = np.floor(both.min(axis=0)).astype(int) - grow
    x1, y1 = np.ceil(both.max(axis=0)).astype(int) + grow + 1
    return max(int(x0), 0), max(int(y0), 0), min(int(x1), shape[1]), min(int(y1), shape[0])


def _fill(polygon_px: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) bool: pixel centres inside the polygon (1/16 px vertices)."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon_px * 16).astype(np.int32)], 1, shift=4)
    return mask.astype(bool)


def _disc(centre: np.ndarray, radius: float, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) bool: pixel centres within ``radius`` px of ``centre``."""
    ys, xs = np.ogrid[: shape[0], : shape[1]]  # broadcast: the same distances as a full grid
    return np.hypot(xs - centre[0], ys - centre[1]) <= radius
