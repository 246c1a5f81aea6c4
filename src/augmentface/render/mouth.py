"""The mouth interior layer: what a viewer expects inside lips that part further than the photo's.

A photo of a closed mouth has no texture for the inside of an open one, and smearing lip
texture into the gap reads as a wound, not a mouth. :func:`paint_mouth`, the layer's entry,
decides from the source and target meshes whether the lips part far enough to need one, and
:func:`paint_mouth_cavity` paints it inside the target's inner-lip contour: a dark oral cavity,
an upper-teeth band hanging from the upper lip, and for large openings a hint of the lower teeth
and the tongue. Colours come from the photo's own lips and brightness; every size is a fraction
of the mouth width or opening height, so the same look holds for a 40 px face and a 1000 px one.
The other mouth decision of a render, whether the teeth stay still while the lips close over
them, is :func:`keeps_teeth_still`, which the warp's triangulation follows.

Geometry uses a mouth frame: ``u`` runs along the line from the first mouth corner to the second
(px), ``v`` runs perpendicular to it, down the face (px). For a level mouth ``u`` is ``x`` and
``v`` is ``y``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from augmentface.face import topology as topo
from augmentface.render.skin import cheek_skin_rgb, median_rgb

#: The cavity is painted when the target opening exceeds the source's by this many pixels and
#: by this factor: stretching a source's own teeth further than that looks like a grimace.
MIN_NEW_OPENING_PX = 1.5
MIN_OPENING_RATIO = 1.25
#: A closing mouth keeps its teeth still only when most of the new opening lies within the
#: old one; otherwise (a jaw that drops while the lips close) the interior would show the old
#: lip where the new opening is.
MIN_STATIC_SHARE = 0.85

# ITU-R BT.601 luma weights: perceived brightness of an RGB colour.
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])
# Oral cavity: a reddish-brown (R, G, B) chroma, mixed half-and-half with the lips' own chroma.
_CAVITY_CHROMA = np.array([1.45, 0.80, 0.68])
# Tongue: a pinker red, mixed the same way.
_TONGUE_CHROMA = np.array([1.6, 0.75, 0.8])
# Cavity luminance is this fraction of the lips', kept within these fractions of full scale.
_CAVITY_LUMA_RATIO = 0.36
_CAVITY_LUMA_RANGE = (0.08 * 255, 0.22 * 255)
# Teeth in a well-exposed photo, and the lip-and-skin luminance that exposure gives.
_TEETH_RGB = np.array([200.0, 190.0, 175.0])
# Lit teeth against the cheeks' skin in the same photo: their luminance ratio and the teeth's
# chroma (RGB / luma), medians over the 12 shared photos that smile with parted lips
# (ratio 1.12, interquartile range 1.04–1.21; python scripts/teeth_colour.py PHOTO_FOLDER).
TEETH_SKIN_LUMA_RATIO = 1.12
# The same statistic of our rendered smiles includes the layer's own shading (the upper lip's
# shadow, the arch turning away, the gaps): lit teeth at this ratio make it read 1.12 too.
TEETH_LIT_SKIN_LUMA_RATIO = 1.21
_TEETH_CHROMA = np.array([1.07, 0.98, 0.93])
_REFERENCE_SKIN_LUMA = 150.0
# Upper teeth show this fraction of the local opening, at most this fraction of mouth width,
# when the caller does not say how far the upper lip bares them.
_UPPER_TEETH_OPENING_FRACTION = 0.36
_UPPER_TEETH_WIDTH_CAP = 0.15
# The upper teeth are fixed to the skull, so what shows of them is how far the upper lip sits
# above their biting edge: at rest 1–3 mm of the central incisors show below a relaxed upper
# lip (about 5 % of a ~50 mm mouth width), and every millimetre the lip rises bares one more
# (Van Der Geld et al. 2008, Acta Odontol Scand 66:207, tooth display in smiling). The band
# never fills the whole opening: the lower lip or the dark between the teeth shows below it.
REST_TEETH_SHOW_WIDTH_FRACTION = 0.05
# The lower incisors sit behind the upper ones and go with the mandible. A relaxed lower lip
# leaves about 1 mm of them in view (Vig & Brundo 1978, J Prosthet Dent 39:502: 0.5 mm in
# women, 1.2 mm in men; 2 % of a ~50 mm mouth); every millimetre the lip drops away from the
# jaw (AU25, AU16) bares one more, while a jaw drop (AU26) takes lip and teeth down together.
REST_LOWER_TEETH_SHOW_WIDTH_FRACTION = 0.02
# The lower arch is narrower than the upper: its incisors and canines span about the middle
# two thirds of the opening, fading out between these lateral fractions.
_LOWER_TEETH_LATERAL = (0.8, 0.5)
_MAX_TEETH_GAP_FRACTION = 0.78
# The upper teeth fade into the dark of the buccal corridors between these fractions of the
# half mouth width: the premolars turn away from the light toward the corners. Set so that the
# share of a rendered smile's opening that is dark (below 0.45 of the cheeks' luminance) falls
# among real smiles' (ours 0.07; real median 0.13, interquartile 0.06-0.23; python
# scripts/teeth_colour.py PHOTO_FOLDER; without the fade ours was 0.01). Moore et al. 2005
# (Am J Orthod Dentofacial Orthop 127:208) rated smiles whose corridors take 2-28 % of the
# smile's width; here the teeth fade from 55 % of the half width out and are gone at 85 %.
_UPPER_TEETH_LATERAL = (0.85, 0.55)
# Boundaries between upper teeth (central/lateral incisor, canine, premolars) as fractions of the
# half mouth width from the midline: a dental arch of ~25 mm radius seen from the front.
_UPPER_TOOTH_EDGES = (0.0, 0.33, 0.56, 0.78, 0.92)
_LOWER_TOOTH_EDGES = (0.0, 0.22, 0.44, 0.64)
# Openings (mean gap, px) below this get only a dark line: no room for teeth.
_TINY_OPENING_PX = 2.0
# Opening/width ratios over which the tongue and lower teeth fade in.
_LARGE_OPENING_RAMP = (0.22, 0.40)


@dataclass(frozen=True)
class _MouthFrame:
    """The mouth frame and both inner-lip arcs in it.

    ``origin_px`` (2,) is the first mouth corner, ``axis`` (2,) and ``normal`` (2,) are unit
    vectors of ``u`` and ``v``; ``upper_uv`` (A, 2) and ``lower_uv`` (B, 2) are the arcs sorted by
    ``u`` (both include the corners); ``mid_u_px`` is the ``u`` of the upper lip's middle point.
    """

    origin_px: np.ndarray
    axis: np.ndarray
    normal: np.ndarray
    width_px: float
    upper_uv: np.ndarray
    lower_uv: np.ndarray
    mid_u_px: float

    def to_uv(self, points_px: np.ndarray) -> np.ndarray:
        """(..., 2) image px -> (..., 2) mouth-frame ``(u, v)`` px."""
        return _project(points_px, self.origin_px, self.axis, self.normal)

    def upper_v(self, u_px: np.ndarray) -> np.ndarray:
        """``v`` of the upper inner lip at ``u`` (clamped to the corners beyond them)."""
        return np.interp(u_px, self.upper_uv[:, 0], self.upper_uv[:, 1])

    def lower_v(self, u_px: np.ndarray) -> np.ndarray:
        """``v`` of the lower inner lip at ``u`` (clamped to the corners beyond them)."""
        return np.interp(u_px, self.lower_uv[:, 0], self.lower_uv[:, 1])


def _project(
    points_px: np.ndarray, origin_px: np.ndarray, axis: np.ndarray, normal: np.ndarray
) -> np.ndarray:
    """(..., 2) image px -> (..., 2) ``(u, v)`` px in the frame at ``origin_px``."""
    offset_px = points_px - origin_px
    return np.stack([offset_px @ axis, offset_px @ normal], axis=-1)


def _mouth_frame(polygon_px: np.ndarray, upper_count: int) -> _MouthFrame:
    """Build the mouth frame of an inner-lip loop whose first ``upper_count`` points are the
    upper lip from corner to corner."""
    polygon_px = np.asarray(polygon_px, dtype=np.float64)
    if not 2 <= upper_count < len(polygon_px):
        raise ValueError(f"upper_count {upper_count} must be in [2, {len(polygon_px)})")
    first_px = polygon_px[0]
    offset_px = polygon_px - first_px
    chord_px = offset_px[upper_count - 1]
    width_px = math.sqrt(chord_px.dot(chord_px))  # np.linalg.norm's sum, without its checks
    axis = chord_px / max(width_px, 1e-9)
    # v points down the face, taken as down the image (heads roll well under 90°), so lips that
    # cross over give a negative gap instead of silently swapping roles.
    ax, ay = float(axis[0]), float(axis[1])
    normal = np.array([-ay, ax] if ax > 0 or (ax == 0 and ay <= 0) else [ay, -ax])
    # Every point projected once, in few NumPy calls (this runs several times a render); the
    # lower arc runs from the second corner along the rest of the loop back to the first.
    uv_px = np.empty_like(offset_px)
    uv_px[:, 0], uv_px[:, 1] = offset_px @ axis, offset_px @ normal
    lower = _lower_arc(len(polygon_px), upper_count)
    upper_uv, lower_uv = uv_px[:upper_count], uv_px[lower]
    middle = (upper_count - 1) // 2, upper_count // 2
    return _MouthFrame(
        origin_px=first_px,
        axis=axis,
        normal=normal,
        width_px=width_px,
        upper_uv=upper_uv[np.argsort(upper_uv[:, 0], kind="stable")],
        lower_uv=lower_uv[np.argsort(lower_uv[:, 0], kind="stable")],
        mid_u_px=(float(uv_px[middle[0], 0]) + float(uv_px[middle[1], 0])) / 2,
    )


@functools.cache
def _lower_arc(count: int, upper_count: int) -> np.ndarray:
    """Indices of a lip loop's lower arc: the second corner, the lower points, the first."""
    return np.r_[upper_count - 1 : count, 0]


def mouth_opening_px(polygon_px: np.ndarray, upper_count: int) -> float:
    """Mean gap between the upper and lower inner-lip arcs, px.

    Parameters
    ----------
    polygon_px : np.ndarray
        (K, 2) float. Inner-lip loop ``(x, y)``, px: the first ``upper_count`` points run along
        the upper lip from one mouth corner to the other, the rest along the lower lip back.
    upper_count : int
        Number of upper-lip points, both corners included.

    Returns
    -------
    float
        The arcs' gap perpendicular to the corner-to-corner line (``y`` for a level mouth),
        matched by position along that line and averaged over the mouth width; overlapping lips
        count as 0.
    """
    return float(mouth_openings_px(np.asarray(polygon_px)[None], upper_count)[0])


def mouth_openings_px(polygons_px: np.ndarray, upper_count: int) -> np.ndarray:
    """:func:`mouth_opening_px` of several loops of one length at once: (B,) float64, px.

    ``polygons_px`` is (B, K, 2). A render measures its two eyes' and its lips' openings in
    the source and the target, several times over: the loop is compiled
    (:func:`augmentface.render.kernels.loop_openings_px`), a few microseconds a call where
    NumPy's per-call overhead at 16-20 points cost ~0.05 ms.
    """
    from augmentface.render.kernels import loop_openings_px  # compiles on first use

    polygons_px = np.ascontiguousarray(polygons_px, dtype=np.float64)
    size = polygons_px.shape[1]
    if not 2 <= upper_count < size:
        raise ValueError(f"upper_count {upper_count} must be in [2, {size})")
    return loop_openings_px(polygons_px, upper_count)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """Luminance (0-255) of (..., 3) RGB."""
    return np.asarray(rgb, dtype=np.float64) @ _LUMA_WEIGHTS


def _cavity_rgb(lip_rgb: np.ndarray) -> np.ndarray:
    """(3,) mean oral-cavity colour: the lips' hue pulled to reddish-brown, darkened."""
    lip_rgb = np.asarray(lip_rgb, dtype=np.float64)
    lip_luma = max(float(_luma(lip_rgb)), 1.0)
    chroma = 0.5 * lip_rgb / lip_luma + 0.5 * _CAVITY_CHROMA / _luma(_CAVITY_CHROMA)
    return chroma * np.clip(_CAVITY_LUMA_RATIO * lip_luma, *_CAVITY_LUMA_RANGE)


def _tongue_rgb(lip_rgb: np.ndarray) -> np.ndarray:
    """(3,) tongue colour: the lips' hue, redder and in the mouth's shade."""
    lip_rgb = np.asarray(lip_rgb, dtype=np.float64)
    lip_luma = max(float(_luma(lip_rgb)), 1.0)
    chroma = 0.5 * lip_rgb / lip_luma + 0.5 * _TONGUE_CHROMA / _luma(_TONGUE_CHROMA)
    return chroma * 0.5 * lip_luma


def _default_teeth_rgb(surround_rgb: np.ndarray) -> np.ndarray:
    """(3,) teeth colour for a photo whose lips and skin around the mouth average
    ``surround_rgb``: off-white, a fifth of the surround's tint (white balance), and the
    photo's exposure."""
    surround_luma = max(float(_luma(surround_rgb)), 1.0)
    tinted_rgb = 0.8 * _TEETH_RGB + 0.2 * surround_rgb * (_luma(_TEETH_RGB) / surround_luma)
    exposure = np.clip(surround_luma / _REFERENCE_SKIN_LUMA, 0.35, 1.2)
    return np.clip(tinted_rgb * exposure, 0.0, 255.0)


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """0 below ``edge0``, 1 above ``edge1``, a smooth cubic between."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _coverage(distance_px: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a pixel whose centre lies ``distance_px`` inside an edge."""
    return np.clip(distance_px + 0.5, 0.0, 1.0)


def _polygon_alpha(
    local_polygon_px: np.ndarray, shape: tuple[int, int], feather_px: float
) -> np.ndarray:
    """(h, w) float32 0..1 coverage of the polygon, anti-aliased and feathered by ~feather_px."""
    mask = np.zeros(shape, dtype=np.uint8)
    fixed = np.round(local_polygon_px * 16).astype(np.int32)
    cv2.fillPoly(mask, [fixed], 255, lineType=cv2.LINE_AA, shift=4)
    alpha = mask.astype(np.float32) / 255.0
    if feather_px > 0:
        # sigma = feather/2: the kernel (±2 sigma) reaches exactly feather_px past the edge.
        alpha = cv2.GaussianBlur(alpha, (0, 0), feather_px / 2.0)
    return alpha


@dataclass(frozen=True)
class _PixelGeometry:
    """Per-pixel mouth-frame quantities of a crop, each (h, w) float64.

    ``u`` and ``v`` are px; ``top`` and ``bottom`` are the lips' ``v`` at each pixel's ``u``;
    ``gap`` is ``bottom - top`` (>= 0); ``from_mid`` is ``|u - mid_u|`` and ``half`` the mouth's
    half width on that side of the midline (px; they differ when the head is turned);
    ``lateral`` is ``from_mid / half``, 0 on the midline and 1 at a corner.
    """

    u: np.ndarray
    v: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    gap: np.ndarray
    from_mid: np.ndarray
    half: np.ndarray
    lateral: np.ndarray


def _pixel_geometry(frame: _MouthFrame, x0: int, y0: int, shape: tuple[int, int]) -> _PixelGeometry:
    """Mouth-frame geometry of every pixel centre of the crop at ``(x0, y0)``."""
    rows, cols = np.mgrid[y0 : y0 + shape[0], x0 : x0 + shape[1]]
    uv = frame.to_uv(np.stack([cols, rows], axis=-1).astype(np.float64))
    u, v = uv[..., 0], uv[..., 1]
    top, bottom = frame.upper_v(u), frame.lower_v(u)
    from_mid = np.abs(u - frame.mid_u_px)
    half = np.maximum(
        np.where(u < frame.mid_u_px, frame.mid_u_px, frame.width_px - frame.mid_u_px), 1e-9
    )
    lateral = np.clip(from_mid / half, 0.0, 1.0)
    return _PixelGeometry(u, v, top, bottom, np.maximum(bottom - top, 0.0), from_mid, half, lateral)


def _tooth_gaps(geo: _PixelGeometry, width_px: float, edges: tuple[float, ...]) -> np.ndarray:
    """(h, w) 0..1 darkness of the faint gaps between teeth at the given half-width fractions."""
    # A gap is about a hundredth of the mouth width wide, but never sharper than a pixel.
    sigma_px = max(0.45, 0.006 * width_px)
    dist_px = np.min([np.abs(geo.from_mid - e * geo.half) for e in edges], axis=0)
    return np.exp(-0.5 * (dist_px / sigma_px) ** 2)


def _shade_cavity(geo: _PixelGeometry, cavity_rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) cavity: lighter near the lips, darkest toward the back (centre-bottom)."""
    depth_t = np.clip((geo.v - geo.top) / np.maximum(geo.gap, 1e-6), 0.0, 1.0)
    back = np.exp(-((geo.lateral / 0.55) ** 2) - ((depth_t - 0.62) / 0.42) ** 2)
    return cavity_rgb * (1.1 - 0.45 * back)[..., None]


def _ramp(opening_px: float, frame: _MouthFrame) -> float:
    """0..1 strength of features that appear only in large openings (tongue, lower teeth)."""
    ratio = opening_px / max(frame.width_px, 1e-9)
    return float(_smoothstep(*_LARGE_OPENING_RAMP, np.asarray(ratio)))


def _blend(base_rgb: np.ndarray, layer_rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite ``layer_rgb`` over ``base_rgb`` with (h, w) ``alpha``."""
    return base_rgb + (layer_rgb - base_rgb) * alpha[..., None]


def _paint_tongue(
    rgb: np.ndarray, geo: _PixelGeometry, frame: _MouthFrame, lip_rgb: np.ndarray, strength: float
) -> np.ndarray:
    """Darker pinkish ellipse resting on the floor of the mouth, lit from above."""
    floor_v_px = float(frame.lower_v(frame.mid_u_px))
    centre_gap_px = floor_v_px - float(frame.upper_v(frame.mid_u_px))
    centre_v_px = floor_v_px - 0.08 * centre_gap_px
    radius_u_px, radius_v_px = 0.3 * frame.width_px, 0.4 * centre_gap_px
    ellipse = np.hypot((geo.u - frame.mid_u_px) / radius_u_px, (geo.v - centre_v_px) / radius_v_px)
    alpha = strength * 0.8 * _smoothstep(1.0, 0.75, ellipse)
    lit = 1.1 - 0.3 * np.clip((geo.v - (centre_v_px - radius_v_px)) / radius_v_px, 0.0, 1.0)
    return _blend(rgb, _tongue_rgb(lip_rgb) * lit[..., None], alpha)


def _paint_lower_teeth(
    rgb: np.ndarray, geo: _PixelGeometry, frame: _MouthFrame, teeth_rgb: np.ndarray, strength: float
) -> np.ndarray:
    """Thin shadowed band of lower incisors along the middle of the lower lip."""
    band_px = np.minimum(0.09 * geo.gap, 0.05 * frame.width_px)
    alpha = _coverage(geo.v - (geo.bottom - band_px)) * _smoothstep(0.42, 0.15, geo.lateral)
    shade = 0.8 * (1.0 - 0.15 * _tooth_gaps(geo, frame.width_px, _LOWER_TOOTH_EDGES))
    return _blend(rgb, teeth_rgb * shade[..., None], 0.9 * strength * alpha)


def _paint_bared_lower_teeth(
    rgb: np.ndarray,
    geo: _PixelGeometry,
    frame: _MouthFrame,
    teeth_rgb: np.ndarray,
    lower_teeth_show_px: float,
) -> np.ndarray:
    """Lower incisors standing up from the lower lip as far as it bares them.

    Where the upper teeth come down in front of them they hide them (the upper teeth are
    painted over this band); between the two biting edges only a jaw drop leaves the dark.
    """
    arch_px = lower_teeth_show_px * (1.0 - 0.3 * geo.lateral**2)
    height_px = np.minimum(arch_px, _MAX_TEETH_GAP_FRACTION * geo.gap)
    edge_v = geo.bottom - height_px
    alpha = _coverage(geo.v - edge_v) * _smoothstep(*_LOWER_TEETH_LATERAL, geo.lateral)
    below_edge_t = np.clip((geo.v - edge_v) / np.maximum(height_px, 1e-6), 0.0, 1.0)
    gaps = _tooth_gaps(geo, frame.width_px, _LOWER_TOOTH_EDGES)
    # Behind the upper teeth and under the upper lip's shade: darker than the upper teeth, and
    # darkest at the biting edge, which the upper incisors overhang; the narrow lower incisors
    # stand close, so the gaps between them are faint.
    shade = 0.8 * (1.0 - 0.08 * gaps) * (1.0 - 0.25 * np.exp(-below_edge_t / 0.25))
    return _blend(rgb, teeth_rgb * shade[..., None], alpha)


def _upper_teeth_height_px(
    geo: _PixelGeometry, frame: _MouthFrame, teeth_show_px: float | None, max_gap_fraction: float
) -> np.ndarray:
    """(h, w) visible height of the upper teeth below the upper lip at each pixel's ``u``."""
    if teeth_show_px is None:
        return np.minimum(
            _UPPER_TEETH_OPENING_FRACTION * geo.gap, _UPPER_TEETH_WIDTH_CAP * frame.width_px
        )
    # The dental arch curves back and the lip line follows it: less shows toward the corners.
    arch_px = max(teeth_show_px, 0.0) * (1.0 - 0.3 * geo.lateral**2)
    return np.minimum(arch_px, max_gap_fraction * geo.gap)


def _paint_upper_teeth(
    rgb: np.ndarray,
    geo: _PixelGeometry,
    frame: _MouthFrame,
    teeth_rgb: np.ndarray,
    cavity_rgb: np.ndarray,
    teeth_show_px: float | None,
    max_gap_fraction: float,
) -> np.ndarray:
    """Upper-teeth band hanging from the upper lip, receding and darkening toward the corners."""
    gaps = _tooth_gaps(geo, frame.width_px, _UPPER_TOOTH_EDGES)
    height_px = _upper_teeth_height_px(geo, frame, teeth_show_px, max_gap_fraction)
    # Rounded tooth tips leave small notches (embrasures) in the biting edge at each gap.
    edge_v = geo.top + height_px * (1.0 - 0.15 * gaps)
    alpha = _coverage(edge_v - geo.v) * _smoothstep(*_UPPER_TEETH_LATERAL, geo.lateral)
    below_lip_t = np.clip((geo.v - geo.top) / np.maximum(height_px, 1e-6), 0.0, 1.0)
    # Gaps show most toward the biting edge, where neighbouring teeth round off.
    shade = (1.0 - 0.5 * geo.lateral**2) * (1.0 - 0.18 * gaps * (0.3 + 0.7 * below_lip_t))
    shade *= 1.0 - 0.3 * np.exp(-below_lip_t / 0.2)  # the upper lip's shadow
    teeth = teeth_rgb * shade[..., None]
    # The biting edge is translucent: the dark cavity shows through its last fifth.
    teeth = _blend(teeth, cavity_rgb, 0.35 * _smoothstep(0.75, 1.0, below_lip_t))
    return _blend(rgb, teeth, alpha)


def _interior_rgb(
    geo: _PixelGeometry,
    frame: _MouthFrame,
    opening_px: float,
    cavity_rgb: np.ndarray,
    teeth_rgb: np.ndarray,
    lip_rgb: np.ndarray,
    teeth_show_px: float | None,
    lower_teeth_show_px: float | None,
) -> np.ndarray:
    """(h, w, 3) float64 painted interior, back to front: cavity, tongue, lower, upper teeth."""
    rgb = _shade_cavity(geo, cavity_rgb)
    strength = _ramp(opening_px, frame)
    if strength > 0:
        rgb = _paint_tongue(rgb, geo, frame, lip_rgb, strength)
        if lower_teeth_show_px is None:
            rgb = _paint_lower_teeth(rgb, geo, frame, teeth_rgb, strength)
    if lower_teeth_show_px is None:
        # Without the lower teeth's place, keep some dark below the upper ones: teeth that
        # fill a whole opening read as a mouthguard.
        max_gap_fraction = _MAX_TEETH_GAP_FRACTION
    else:
        rgb = _paint_bared_lower_teeth(rgb, geo, frame, teeth_rgb, lower_teeth_show_px)
        # The upper incisors may reach the lower lip, as in broad smiles; below it they are
        # hidden behind the lip.
        max_gap_fraction = 1.0
    return _paint_upper_teeth(
        rgb, geo, frame, teeth_rgb, cavity_rgb, teeth_show_px, max_gap_fraction
    )


def _dark_line_alpha(frame: _MouthFrame, x0: int, y0: int, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 0..1 anti-aliased 1 px line along the middle of a barely open mouth."""
    u_px = np.linspace(0.0, frame.width_px, 24)
    v_px = 0.5 * (frame.upper_v(u_px) + frame.lower_v(u_px))
    line_px = frame.origin_px + np.outer(u_px, frame.axis) + np.outer(v_px, frame.normal)
    fixed = np.round((line_px - (x0, y0)) * 16).astype(np.int32)
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.polylines(mask, [fixed], False, 255, thickness=1, lineType=cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / 255.0


def _crop_box(
    polygon_px: np.ndarray, pad_px: int, shape: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Half-open ``(x0, y0, x1, y1)`` of the polygon's box grown by ``pad_px``, clipped."""
    x0, y0 = np.floor(polygon_px.min(axis=0)).astype(int) - pad_px
    x1, y1 = np.ceil(polygon_px.max(axis=0)).astype(int) + pad_px + 1
    return max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])


def paint_mouth_cavity(
    image_rgb: np.ndarray,
    polygon_px: np.ndarray,
    *,
    upper_count: int,
    lip_rgb: np.ndarray,
    teeth_rgb: np.ndarray | None = None,
    teeth_show_px: float | None = None,
    lower_teeth_show_px: float | None = None,
    feather_px: float = 1.0,
) -> np.ndarray:
    """Paint an open mouth's interior inside the inner-lip contour.

    Parameters
    ----------
    image_rgb : np.ndarray
        (H, W, 3) uint8. The rendered face; not modified.
    polygon_px : np.ndarray
        (K, 2) float. The target's inner-lip loop ``(x, y)``, px: the first ``upper_count``
        points run along the upper lip from one mouth corner to the other, the rest along the
        lower lip back (the corners need not be repeated).
    upper_count : int
        Number of upper-lip points, both corners included.
    lip_rgb : np.ndarray
        (3,) float. Mean lip colour in the photo; the cavity and tongue are derived from it.
    teeth_rgb : np.ndarray | None
        (3,) float. Colour of lit teeth; ``None`` derives an off-white from the brightness and
        tint of the lips and skin around the mouth.
    teeth_show_px : float | None
        How much of the upper teeth shows below the upper lip at the mouth's middle, px
        (see :func:`upper_teeth_show_px`); at most 78 % of the local opening is teeth, unless
        ``lower_teeth_show_px`` is given (then the upper teeth may reach the lower lip).
        ``None`` shows a fixed share of the opening (36 %, at most 15 % of the mouth width).
    lower_teeth_show_px : float | None
        How much of the lower teeth shows above the lower lip at the mouth's middle, px (see
        :func:`lower_teeth_show_px`). ``None`` shows a thin band of them in wide openings only.
    feather_px : float
        Soft edge against the lips, px: the paint fades out over about this distance beyond the
        (anti-aliased) polygon edge.

    Returns
    -------
    np.ndarray
        (H, W, 3) uint8. A copy of ``image_rgb`` with the interior painted; only pixels within
        ``feather_px`` + ~1 px of the polygon change. Openings below ~2 px (mean gap) get only
        a dark line.
    """
    polygon_px = np.asarray(polygon_px, dtype=np.float64)
    out_rgb = image_rgb.copy()
    x0, y0, x1, y1 = _crop_box(polygon_px, int(np.ceil(feather_px)) + 2, image_rgb.shape[:2])
    if x1 <= x0 or y1 <= y0:
        return out_rgb
    shape = (y1 - y0, x1 - x0)
    crop_rgb = image_rgb[y0:y1, x0:x1].astype(np.float64)
    frame = _mouth_frame(polygon_px, upper_count)
    alpha = _polygon_alpha(polygon_px - (x0, y0), shape, feather_px)
    cavity_rgb = _cavity_rgb(lip_rgb)
    opening_px = mouth_opening_px(polygon_px, upper_count)
    if opening_px < _TINY_OPENING_PX:
        alpha = np.maximum(alpha, 0.7 * _dark_line_alpha(frame, x0, y0, shape))
        interior_rgb = np.broadcast_to(0.8 * cavity_rgb, crop_rgb.shape)
    else:
        if teeth_rgb is None:
            surround_rgb = crop_rgb[alpha < 0.01]
            # A crop clipped at the image edge may hold no surround: the lips stand in for it.
            teeth_rgb = _default_teeth_rgb(
                surround_rgb.mean(axis=0) if len(surround_rgb) else np.asarray(lip_rgb, float)
            )
        geo = _pixel_geometry(frame, x0, y0, shape)
        interior_rgb = _interior_rgb(
            geo,
            frame,
            opening_px,
            cavity_rgb,
            teeth_rgb,
            lip_rgb,
            teeth_show_px,
            lower_teeth_show_px,
        )
    painted = _blend(crop_rgb, interior_rgb, alpha.astype(np.float64))
    out_rgb[y0:y1, x0:x1] = np.clip(np.round(painted), 0, 255).astype(np.uint8)
    return out_rgb


def paint_mouth(
    crop: np.ndarray,
    image_rgb: np.ndarray,
    src_verts_px: np.ndarray,
    dst_verts_px: np.ndarray,
    roi: tuple[int, int, int, int],
    *,
    openings_px: tuple[float, float] | None = None,
) -> tuple[np.ndarray, bool]:
    """Paint a mouth interior where the target's lips part further than the source's.

    Parameters
    ----------
    crop : (h, w, 3) uint8, the crop ``roi`` of the rendered face; not modified.
    image_rgb : (H, W, 3) uint8 source photo (the lip colour comes from it).
    src_verts_px : (468, >=2) float, the fitted mesh in the image frame (x, y px).
    dst_verts_px : (468, >=2) float, the target mesh in the same frame.
    roi : (x0, y0, x1, y1) of ``crop`` in full-image pixels, half-open.
    openings_px : the source's and the target's :func:`lip_openings_px` when the caller has
        them already; None measures them here.

    Returns
    -------
    crop : (h, w, 3) uint8
        ``crop`` itself when nothing is painted, else a painted copy.
    painted : bool
        Whether the target opening exceeds the source's by at least
        :data:`MIN_NEW_OPENING_PX` and by the factor :data:`MIN_OPENING_RATIO`, and so a
        cavity was painted.
    """
    inner = list(topo.LIPS_INNER)
    upper = topo.LIPS_INNER_UPPER_COUNT
    opening_src, opening_dst = openings_px or lip_openings_px(src_verts_px, dst_verts_px)
    if opening_dst < max(opening_src + MIN_NEW_OPENING_PX, MIN_OPENING_RATIO * opening_src):
        return crop, False
    polygon = dst_verts_px[inner, :2] - (roi[0], roi[1])
    lip_rgb = _lip_rgb(image_rgb, src_verts_px)
    painted = paint_mouth_cavity(
        crop,
        polygon,
        upper_count=upper,
        lip_rgb=lip_rgb,
        teeth_rgb=teeth_rgb_from_skin(image_rgb, src_verts_px),
        teeth_show_px=upper_teeth_show_px(src_verts_px, dst_verts_px),
        lower_teeth_show_px=lower_teeth_show_px(src_verts_px, dst_verts_px),
    )
    return painted, True


def teeth_rgb_from_skin(image_rgb: np.ndarray, verts_px: np.ndarray) -> np.ndarray:
    """(3,) colour of lit teeth in this photo, from its cheeks (:func:`.cheek_skin_rgb`).

    Teeth are a warm off-white (:data:`_TEETH_CHROMA`) at :data:`TEETH_LIT_SKIN_LUMA_RATIO` times
    the cheeks' luminance; a fifth of the skin's own chroma carries the photo's white balance.

    Parameters
    ----------
    image_rgb : (H, W, 3) uint8 photo.
    verts_px : (468, >=2) the face's mesh in the image, px.
    """
    skin_rgb = cheek_skin_rgb(image_rgb, verts_px)
    skin_luma = max(float(_luma(skin_rgb)), 1.0)
    chroma = 0.8 * _TEETH_CHROMA + 0.2 * skin_rgb / skin_luma
    return np.clip(chroma * min(TEETH_LIT_SKIN_LUMA_RATIO * skin_luma, 245.0), 0.0, 255.0)


def _moved_across_mouth(
    src_verts_px: np.ndarray, dst_verts_px: np.ndarray
) -> tuple[_MouthFrame, np.ndarray]:
    """The target's mouth frame, and every vertex's move from source to target along its
    normal (down the mouth), px: a tilted head reads the same."""
    frame = _mouth_frame(dst_verts_px[list(topo.LIPS_INNER), :2], topo.LIPS_INNER_UPPER_COUNT)
    return frame, (dst_verts_px[:, :2] - src_verts_px[:, :2]) @ frame.normal


def upper_teeth_show_px(src_verts_px: np.ndarray, dst_verts_px: np.ndarray) -> float:
    """How much of the upper teeth shows below the target's upper lip at its middle, px.

    The teeth stay with the skull while the lip moves: what shows is the rest display
    (:data:`REST_TEETH_SHOW_WIDTH_FRACTION` of the mouth width) plus how far the middle of the
    upper inner lip rose from the source to the target, measured across the mouth (along its
    normal, so a tilted head reads the same). A lip that comes down covers them.

    Parameters
    ----------
    src_verts_px, dst_verts_px : (468, >=2) float
        The fitted and the target mesh in the image frame (x, y px).
    """
    frame, moved_px = _moved_across_mouth(src_verts_px, dst_verts_px)
    upper = topo.LIPS_INNER_UPPER_COUNT
    middle = list(topo.LIPS_INNER[upper // 2 - 1 : upper // 2 + 2])
    rise_px = -float(moved_px[middle].mean())
    return max(REST_TEETH_SHOW_WIDTH_FRACTION * frame.width_px + rise_px, 0.0)


#: The chin's lowest point: it moves with the mandible only (the lip and chin-boss fields pin
#: it), so its drop is the jaw's.
_CHIN = 152
#: In a jaw drop the lower lip, farther from the jaw joint's axis, drops this many times as far
#: as the chin's lowest point (the rig's AU26 field: 20.7 mm against 18.4 mm at E).
JAW_LIP_PER_CHIN_DROP = 1.125


def lower_teeth_show_px(src_verts_px: np.ndarray, dst_verts_px: np.ndarray) -> float:
    """How much of the lower teeth shows above the target's lower lip at its middle, px.

    The lower teeth go with the mandible: what shows is the rest display
    (:data:`REST_LOWER_TEETH_SHOW_WIDTH_FRACTION` of the mouth width) plus how far the middle
    of the lower inner lip dropped from the source to the target *beyond* what the jaw's drop
    (the chin's, :data:`JAW_LIP_PER_CHIN_DROP`) explains, measured across the mouth. A lip
    pushed up (AU17) covers them.

    Parameters
    ----------
    src_verts_px, dst_verts_px : (468, >=2) float
        The fitted and the target mesh in the image frame (x, y px).
    """
    frame, moved_px = _moved_across_mouth(src_verts_px, dst_verts_px)
    lower = topo.LIPS_INNER[topo.LIPS_INNER_UPPER_COUNT :]
    middle = list(lower[len(lower) // 2 - 1 : len(lower) // 2 + 2])
    lip_drop_px = float(moved_px[middle].mean())
    rest_px = REST_LOWER_TEETH_SHOW_WIDTH_FRACTION * frame.width_px
    jaw_drop_px = JAW_LIP_PER_CHIN_DROP * float(moved_px[_CHIN])
    return max(rest_px + lip_drop_px - jaw_drop_px, 0.0)


def lip_openings_px(src_verts_px: np.ndarray, dst_verts_px: np.ndarray) -> tuple[float, float]:
    """The source's and the target's :func:`mouth_opening_px` of the inner-lip loop, px.

    :func:`keeps_teeth_still` and :func:`paint_mouth` both decide by them; a render measures
    them once and hands them to both.
    """
    inner = list(topo.LIPS_INNER)
    loops = np.stack([src_verts_px[inner, :2], dst_verts_px[inner, :2]])
    opening_src, opening_dst = mouth_openings_px(loops, topo.LIPS_INNER_UPPER_COUNT).tolist()
    return opening_src, opening_dst


def keeps_teeth_still(
    src_verts_px: np.ndarray,
    dst_verts_px: np.ndarray,
    *,
    openings_px: tuple[float, float] | None = None,
) -> bool:
    """Whether the teeth stay still while the lips close over them.

    Parameters
    ----------
    src_verts_px : (468, >=2) float, the fitted mesh in the image frame (x, y px).
    dst_verts_px : (468, >=2) float, the target mesh in the same frame.
    openings_px : the source's and the target's :func:`lip_openings_px` when the caller has
        them already; None measures them here.

    Returns
    -------
    bool
        True when the mouth closes (its opening shrinks) and at least
        :data:`MIN_STATIC_SHARE` of the new opening lies within the old one; then the lips slide
        over the source's teeth instead of squashing them. An opening mouth keeps the stretched
        mapping, and :func:`paint_mouth` paints one that opens well beyond its old opening.
    """
    opening_src, opening_dst = openings_px or lip_openings_px(src_verts_px, dst_verts_px)
    if opening_dst >= opening_src:
        return False
    inner = list(topo.LIPS_INNER)
    src, dst = src_verts_px[inner, :2], dst_verts_px[inner, :2]
    return _share_inside(dst, src) >= MIN_STATIC_SHARE


def _lip_rgb(image_rgb: np.ndarray, verts_px: np.ndarray) -> np.ndarray:
    """(3,) median colour of the lips, sampled between the outer and inner lip contours."""
    outer = verts_px[list(topo.LIPS_OUTER), :2]
    inner = verts_px[list(topo.LIPS_INNER), :2]
    points = np.concatenate([outer, 0.5 * (outer + inner)])
    h, w = image_rgb.shape[:2]
    xs = np.clip(np.round(points[:, 0]).astype(int), 0, w - 1)
    ys = np.clip(np.round(points[:, 1]).astype(int), 0, h - 1)
    return median_rgb(image_rgb[ys, xs])


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
