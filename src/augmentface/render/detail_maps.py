"""The built-in expression-detail maps: procedural skin folds per AU, in the mesh's UV space.

Each map is the natural log of the luminance ratio an AU makes at intensity E (5), drawn from
what the FACS manual lists among the AU's appearance changes (Ekman, Friesen & Hager 2002) and
applied by :func:`augmentface.render.details.apply_details`. They are drawn to read as skin,
not as lines: a crease is a narrow dark Gaussian valley with light shoulders (the skin bunched
beside it) or, for a fold in the skin's slope, a steep side and a long soft one rising to a
ridge; its depth wanders a little along its length and its ends taper to nothing; a bulge is
lit from above (lighter on top, shaded below). Ratios are of coded (sRGB) values, as the layer
applies them; a coded ratio r is about r^2.2 in linear light, so the nasolabial fold's ×0.84
at E is a fold a third darker. Ratios at E, darkest and lightest:

=====  =====================================  ==================================================
AU     region (vertices)                      what is drawn, ratio at E
=====  =====================================  ==================================================
1      central forehead: above the inner      three horizontal furrows, slightly arched, about
       brows (336, 107) up to 10, between     7 mm apart, 28–36 mm long, centred on the midline
       296/299 and their mirrors              (FACS: AU1's wrinkles are in the centre of the
                                              forehead); ×0.89, shoulders ×1.03
2      lateral forehead: above the outer      on each side two furrows following the arch of
       brows (296–300) up to 338–284          the brow, 8 and 15 mm above it, medial ends
                                              fading toward the forehead's centre (FACS: AU2's
                                              wrinkles are lateral); ×0.90, shoulders ×1.03
4      glabella: between the inner brows      two near-vertical glabellar lines 4–6 mm from the
       (336, 285, 55, 107) from 151 down      midline, spreading upward, ×0.86, and a fainter
       to the nose root (168)                 oblique pair beside them, ×0.92; the skin bunched
                                              between the brows as a bulge, lighter above,
                                              darker below, ×0.95–1.05 (corrugator, procerus)
6      outer eye corners (263) to the         crow's feet: five fine lines fanning out from
       temple (301, 368, 345); below the      5 mm beyond the outer eye corner, 9–12 mm long,
       lower lids (lid to 346–350); the       ×0.88; under each lower lid a shadowed furrow
       nasolabial region                      6 mm below the lid margin with the bulge above it
                                              lit, ×0.90 and ×1.04; the nasolabial fold
                                              deepened a little by the raised cheek, ×0.95
9      nose root and bridge, between the      three horizontal lines across the root of the
       eyes (285, 413, 465, 412) from 8       nose, their ends bending up, ×0.87, and one
       down to 197                            oblique line on each side of the bridge, ×0.90
10     nasolabial region (below)              the nasolabial fold, its upper part most (AU10
                                              deepens it, raising its upper part); ×0.89, ridge
                                              ×1.03
12     nasolabial region: from above the      the nasolabial fold: a crease from the top of the
       nose wing (355, 371) down beyond       nose wing curving down past the mouth corner to
       the mouth corner (422, 335),           8 mm below it, steep on the lip's side, a long
       lateral to the upper lip (391, 322)    slope up the cheek to its ridge; strongest for
                                              AU12, fading toward its lower end; ×0.84, ridge
                                              ×1.04
14     beside the lip corners (409–291,       a small dark dimple 8 mm lateral to each lip
       410, 436, 434, 273)                    corner on a short vertical crease; ×0.86
15     below the lip corners (291, 287,       a short line running down and a little out from
       430, 424, 335, 321)                    each lip corner (the pulled-down corner's fold),
                                              lit on its lateral side; ×0.88, ×1.04
17     chin: below the lower lip (17–321)     the mentolabial furrow under the lower lip
       down to 175                            deepened, the chin boss below it lit, ×0.85 and
                                              ×1.05; the boss's skin bumpy and dimpled
                                              (band-limited noise of 1 mm features, pits deeper
                                              than bumps), about ×0.95–1.04
=====  =====================================  ==================================================

Geometry is drawn in a face frame of millimetres on the canonical unwrap: ``x`` toward the
subject's left, ``y`` down, origin at the nose root (vertex 168), scaled by the unwrap's UV per
mm near the front of the face; every shape is placed relative to mesh vertices. Bilateral
shapes are drawn on the subject's left and mirrored (the unwrap is symmetric about ``u = 0.5``).
Each map is cut to its region: the skin triangles whose UV centroid lies inside the region's
vertex loops (:func:`detail_region_triangles`), so it is exactly 0 outside; the shapes fade
out inside it. The maps are deterministic (fixed seeds) and cached per face model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.interpolate import make_interp_spline
from scipy.spatial import cKDTree

from augmentface.face.model import FaceModel
from augmentface.render.details import DetailMaps, uv_texels

#: Texels on a side of the built-in maps: ~2.6 texels per mm at the front of the face, so a
#: 0.4 mm crow's-foot line is still drawn on a 1000 px face.
BUILTIN_SIZE = 512
BUILTIN_SOURCE = "builtin"

#: A point of a shape: ``(vertex, dx_mm, dy_mm)``, the vertex's place in the face frame moved
#: by ``(dx, dy)`` mm (x toward the subject's left, y down).
Anchor = tuple[int, float, float]


@dataclass(frozen=True)
class _Crease:
    """A fold along a curve: a dark valley, a light shoulder (ridge) beside it.

    ``path`` are the curve's control points (a spline through them). ``depth`` (darkening) and
    ``ridge`` (lightening) are log ratios at E. The valley is a Gaussian of ``width_mm``; with
    ``toward`` set it is asymmetric, a fold in the skin's slope: steep (``width_mm``) on one
    side, a long soft slope (``soft_width_mm``) and the ridge on ``toward``'s side (the bulge
    falling into the fold); without, it is symmetric with a ridge on both sides (skin bunched
    either side of a wrinkle). Ends fade in over ``taper`` (fractions of the length at the
    start and the end); ``wander`` is how much the depth varies along the crease.
    """

    path: tuple[Anchor, ...]
    depth: float
    width_mm: float
    toward: Anchor | None = None
    soft_width_mm: float = 0.0
    ridge: float = 0.0
    ridge_offset_mm: float = 0.0
    ridge_width_mm: float = 1.0
    taper: tuple[float, float] = (0.3, 0.3)
    wander: float = 0.3


@dataclass(frozen=True)
class _Bulge:
    """Skin bunched into a mound, lit from above: ``+amplitude`` at its top, ``-amplitude`` at
    its bottom (a vertical derivative of a Gaussian with radii ``radii_mm``)."""

    centre: Anchor
    radii_mm: tuple[float, float]
    amplitude: float


@dataclass(frozen=True)
class _Pit:
    """A dimple: a round Gaussian dip of ``depth`` (log ratio at E) and radius ``sigma_mm``."""

    centre: Anchor
    sigma_mm: float
    depth: float


@dataclass(frozen=True)
class _Bumps:
    """Bumpy skin: band-limited noise (feature size ``scale_mm``) in an ellipse, ``amplitude``
    its standard deviation (log ratio at E), pits deeper than bumps."""

    centre: Anchor
    radii_mm: tuple[float, float]
    scale_mm: float
    amplitude: float


Shape = _Crease | _Bulge | _Pit | _Bumps


@dataclass(frozen=True)
class _MapSpec:
    """One AU's map: shapes drawn on the subject's left and mirrored (``bilateral``) or drawn
    once across the midline (``midline``), cut to the region inside ``loops`` (vertex loops;
    ``mirrored_loops`` are mirrored too)."""

    au: int
    bilateral: tuple[Shape, ...] = ()
    midline: tuple[Shape, ...] = ()
    loops: tuple[tuple[int, ...], ...] = ()
    mirrored_loops: tuple[tuple[int, ...], ...] = ()
    seed: int = field(default=0)


def _furrow(y_mm: float, half_length_mm: float, arch_mm: float) -> tuple[Anchor, ...]:
    """A horizontal forehead furrow across the midline, ``y_mm`` from the glabella's top
    (vertex 9), its centre ``arch_mm`` higher than its ends."""
    xs = np.linspace(-1.0, 1.0, 5)
    return tuple((9, float(half_length_mm * x), float(y_mm + arch_mm * x * x)) for x in xs)


def _radial(origin: int, angle_deg: float, start_mm: float, length_mm: float) -> tuple[Anchor, ...]:
    """A straight line pointing away from vertex ``origin`` at ``angle_deg`` (0 = toward the
    subject's left, positive = down), from ``start_mm`` out, ``length_mm`` long."""
    direction = np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))])
    radii = start_mm + length_mm * np.array([0.0, 0.5, 1.0])
    return tuple((origin, float(r * direction[0]), float(r * direction[1])) for r in radii)


#: The nasolabial fold, from above the nose wing to beyond the mouth corner.
_NASOLABIAL_PATH: tuple[Anchor, ...] = (
    (429, 1.5, 1.0), (358, 2.0, 1.5), (426, -1.0, 0.0), (436, -1.5, 1.5), (432, -2.0, 0.0),
    (422, 0.0, -2.0),
)  # fmt: skip
_CHEEK: Anchor = (427, 0.0, 0.0)
_NASOLABIAL_LOOP = (355, 371, 266, 425, 411, 416, 434, 430, 422, 335, 273, 287, 410, 322, 391,
                    327, 294, 358, 429)  # fmt: skip


def _nasolabial(depth: float, ridge: float, taper: tuple[float, float]) -> _Crease:
    """The nasolabial fold: steep toward the upper lip, a long slope up the cheek to its ridge."""
    return _Crease(_NASOLABIAL_PATH, depth, 1.4, _CHEEK, 4.0, ridge, 7.5, 3.0, taper, wander=0.2)


def _wrinkle(
    path: tuple[Anchor, ...], depth: float, width_mm: float, taper: tuple[float, float]
) -> _Crease:
    """A fine wrinkle: a symmetric valley with the skin bunched into low ridges either side."""
    return _Crease(
        path, depth, width_mm, None, 0.0, depth / 4, 2.6 * width_mm, 1.5 * width_mm, taper
    )


# fmt: off
_SPECS: tuple[_MapSpec, ...] = (
    _MapSpec(
        1,
        midline=tuple(
            _wrinkle(_furrow(y, half, 1.2), 0.12, 0.75, (0.35, 0.35))
            for y, half in ((-8.0, 14.0), (-15.0, 18.0), (-22.0, 15.0))
        ),
        loops=((10, 338, 297, 299, 296, 336, 9, 107, 66, 69, 67, 109),),
        seed=1,
    ),
    _MapSpec(
        2,
        bilateral=(
            _wrinkle(((296, -1.0, -8.0), (334, 0.0, -9.0), (293, 0.0, -8.0), (300, -4.0, -7.5)),
                     0.11, 0.75, (0.45, 0.3)),
            _wrinkle(((296, 1.0, -15.0), (334, 0.0, -16.0), (293, -1.0, -15.0),
                      (300, -6.0, -14.0)), 0.09, 0.75, (0.45, 0.3)),
        ),
        mirrored_loops=((338, 297, 332, 284, 301, 300, 293, 334, 296, 336, 337),),
        seed=2,
    ),
    _MapSpec(
        4,
        bilateral=(
            _wrinkle(((8, 3.6, -2.5), (9, 4.3, 0.0), (9, 5.6, -7.0)), 0.15, 0.9, (0.35, 0.45)),
            _wrinkle(((285, -1.5, -1.5), (336, -2.0, 0.5), (336, -0.5, -5.0)), 0.08, 0.7,
                     (0.4, 0.5)),
        ),
        midline=(_Bulge((9, 0.0, 4.5), (6.0, 3.5), 0.05),),
        loops=((151, 337, 336, 285, 417, 168, 193, 55, 107, 108),),
        seed=4,
    ),
    _MapSpec(
        6,
        bilateral=(
            *(
                _wrinkle(_radial(263, angle, 5.5, length), 0.13, 0.45, (0.35, 0.5))
                for angle, length in ((-36.0, 9.0), (-16.0, 11.0), (3.0, 12.0), (21.0, 11.0),
                                      (38.0, 9.0))
            ),
            _Crease(((381, 0.0, 6.0), (380, 0.0, 6.3), (374, 0.0, 6.5), (373, 0.0, 6.3),
                     (390, 1.0, 5.5), (249, 3.0, 4.0)), 0.10, 1.0, (374, 0.0, 0.0), 1.6, 0.04,
                    2.8, 1.1, (0.3, 0.35)),
            _nasolabial(0.05, 0.02, (0.2, 0.6)),
        ),
        mirrored_loops=(
            (260, 445, 276, 300, 301, 368, 345, 340, 448, 339, 255, 359, 467),
            (381, 380, 374, 373, 390, 249, 255, 261, 346, 347, 348, 349, 350, 357, 453, 341),
            _NASOLABIAL_LOOP,
        ),
        seed=6,
    ),
    _MapSpec(
        9,
        bilateral=(_wrinkle(((168, 4.5, 10.5), (168, 6.5, 12.5), (168, 8.5, 14.0)), 0.10, 0.55,
                            (0.4, 0.4)),),
        midline=tuple(
            _wrinkle(((168, -h, y - 1.5), (168, -h / 2, y - 0.3), (168, 0.0, y),
                      (168, h / 2, y - 0.3), (168, h, y - 1.5)), 0.14, 0.6, (0.3, 0.3))
            for y, h in ((-2.5, 6.5), (1.5, 7.5), (5.5, 6.5))
        ),
        loops=((8, 285, 413, 465, 412, 419, 197, 196, 188, 245, 193, 55),),
        seed=9,
    ),
    _MapSpec(10, bilateral=(_nasolabial(0.12, 0.03, (0.12, 0.8)),),
             mirrored_loops=(_NASOLABIAL_LOOP,), seed=10),
    _MapSpec(12, bilateral=(_nasolabial(0.17, 0.04, (0.12, 0.65)),),
             mirrored_loops=(_NASOLABIAL_LOOP,), seed=12),
    _MapSpec(
        14,
        bilateral=(
            _Pit((287, 2.8, 0.6), 1.4, 0.10),
            _Crease(((287, 2.4, -4.0), (287, 2.8, 0.6), (287, 2.5, 5.0)), 0.06, 0.6, _CHEEK,
                    1.2, 0.03, 2.5, 1.5, (0.4, 0.4)),
        ),
        mirrored_loops=((409, 410, 436, 427, 434, 422, 273, 375, 291),),
        seed=14,
    ),
    _MapSpec(
        15,
        bilateral=(_Crease(((291, 1.5, 2.5), (291, 3.0, 7.5), (291, 4.5, 13.5)), 0.13, 0.7,
                           (432, 0.0, 0.0), 1.6, 0.035, 3.0, 1.5, (0.3, 0.45)),),
        mirrored_loops=((291, 287, 432, 430, 424, 335, 321, 375),),
        seed=15,
    ),
    _MapSpec(
        17,
        midline=(
            _Crease(((18, -16.0, -7.5), (18, -8.0, -4.5), (18, 0.0, -3.5), (18, 8.0, -4.5),
                     (18, 16.0, -7.5)), 0.16, 0.9, (200, 0.0, 0.0), 2.0, 0.05, 4.0, 2.0,
                    (0.3, 0.3)),
            _Bumps((200, 0.0, 2.0), (14.0, 10.0), 1.1, 0.04),
        ),
        loops=((17, 314, 405, 321, 335, 424, 431, 395, 369, 396, 175, 171, 140, 170, 211, 204,
                106, 182, 91, 181, 84),),
        seed=17,
    ),
)
# fmt: on

#: The AUs with a built-in map.
BUILTIN_AUS: tuple[int, ...] = tuple(spec.au for spec in _SPECS)

_CACHE: dict[str, DetailMaps] = {}


def builtin_detail_maps(model: FaceModel) -> DetailMaps:
    """The built-in maps (:data:`BUILTIN_AUS`) for ``model``, built once per face model id."""
    if model.model_id not in _CACHE:
        frame = _FaceFrame.of(model, BUILTIN_SIZE)
        texels = uv_texels(model, BUILTIN_SIZE)
        maps = np.stack([_draw(spec, model, frame, texels) for spec in _SPECS])
        _CACHE[model.model_id] = DetailMaps(BUILTIN_AUS, maps, model.model_id, BUILTIN_SOURCE)
    return _CACHE[model.model_id]


def detail_region_triangles(model: FaceModel, au: int) -> np.ndarray:
    """(T,) bool: the skin triangles of a built-in map's region (its map is 0 elsewhere).

    Raises
    ------
    KeyError
        When ``au`` has no built-in map.
    """
    spec = next((s for s in _SPECS if s.au == au), None)
    if spec is None:
        raise KeyError(f"AU{au} has no built-in detail map (those with one: {BUILTIN_AUS})")
    mirror = model.topology.mirror
    loops = [*spec.loops, *spec.mirrored_loops]
    loops += [tuple(int(mirror[v]) for v in loop) for loop in spec.mirrored_loops]
    uv = model.mesh.uv
    centroids = uv[model.triangles].mean(axis=1).astype(np.float32)
    inside = np.zeros(len(model.triangles), bool)
    for loop in loops:
        polygon = uv[list(loop)].astype(np.float32)
        inside |= np.array([cv2.pointPolygonTest(polygon, tuple(c), False) > 0 for c in centroids])
    return inside & model.topology.skin_triangles


@dataclass(frozen=True)
class _FaceFrame:
    """The face frame (mm) of an ``S x S`` map: the texel centres' coordinates and the
    vertices' places."""

    size: int
    origin_uv: np.ndarray  # (2,) the nose root's UV
    uv_per_mm: np.ndarray  # (2,) along u and along v
    verts_mm: np.ndarray  # (468, 2)

    @classmethod
    def of(cls, model: FaceModel, size: int) -> _FaceFrame:
        uv = model.mesh.uv
        verts = model.mesh.verts_model_mm
        # UV per mm of the unwrap near the front of the face, where the features lie; the
        # unwrap compresses the sides, as a photo of a face seen from the front does.
        front = np.abs(verts[:, 0]) < 40.0
        per_mm = np.array(
            [
                np.polyfit(verts[front, 0], uv[front, 0], 1)[0],
                -np.polyfit(verts[front, 1], uv[front, 1], 1)[0],
            ]
        )
        origin = uv[168]
        return cls(size, origin, per_mm, (uv - origin) / per_mm)

    def point(self, anchor: Anchor) -> np.ndarray:
        """(2,) face-frame mm of an anchor."""
        vertex, dx, dy = anchor
        return self.verts_mm[vertex] + (dx, dy)

    def texel_box(self, centre_mm: np.ndarray, radius_mm: np.ndarray) -> tuple[slice, slice]:
        """Rows and columns of the texels within ``radius_mm`` (2,) of ``centre_mm`` (2,)."""
        lo = ((centre_mm - radius_mm) * self.uv_per_mm + self.origin_uv) * self.size - 0.5
        hi = ((centre_mm + radius_mm) * self.uv_per_mm + self.origin_uv) * self.size - 0.5
        lo = np.clip(np.floor(lo).astype(int), 0, self.size)
        hi = np.clip(np.ceil(hi).astype(int) + 1, 0, self.size)
        return slice(lo[1], hi[1]), slice(lo[0], hi[0])

    def texels_mm(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """Face-frame ``x`` and ``y`` (mm) of the texel centres of a box, each (h, w)."""
        u = (np.arange(cols.start, cols.stop) + 0.5) / self.size
        v = (np.arange(rows.start, rows.stop) + 0.5) / self.size
        x = (u - self.origin_uv[0]) / self.uv_per_mm[0]
        y = (v - self.origin_uv[1]) / self.uv_per_mm[1]
        return np.meshgrid(x, y)


def _draw(
    spec: _MapSpec,
    model: FaceModel,
    frame: _FaceFrame,
    texels: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """(S, S) float32: one AU's map, cut to its region."""
    rng = np.random.default_rng(spec.seed)
    left = np.zeros((frame.size, frame.size))
    for shape in spec.bilateral:
        _add(left, shape, frame, rng)
    both = left + left[:, ::-1]  # the unwrap is symmetric about u = 0.5
    for shape in spec.midline:
        _add(both, shape, frame, rng)
    rows, cols, tri, _ = texels
    region = np.zeros_like(both, dtype=bool)
    region[rows, cols] = detail_region_triangles(model, spec.au)[tri]
    return np.where(region, both, 0.0).astype(np.float32)


def _add(canvas: np.ndarray, shape: Shape, frame: _FaceFrame, rng: np.random.Generator) -> None:
    """Add one shape to the map ``canvas`` (S, S) in place."""
    if isinstance(shape, _Crease):
        _add_crease(canvas, shape, frame, rng)
        return
    centre = frame.point(shape.centre)
    if isinstance(shape, _Bulge):
        radii = np.array(shape.radii_mm)
        rows, cols = frame.texel_box(centre, 3.0 * radii)
        x, y = frame.texels_mm(rows, cols)
        nx, ny = (x - centre[0]) / radii[0], (y - centre[1]) / radii[1]
        # Peak ±amplitude one radius above and below the centre.
        values = -shape.amplitude * ny * np.exp(0.5 - 0.5 * (nx**2 + ny**2))
        canvas[rows, cols] += values * _window(np.hypot(nx, ny) / 3.0)
    elif isinstance(shape, _Pit):
        radius = 4.0 * shape.sigma_mm
        rows, cols = frame.texel_box(centre, np.array([radius, radius]))
        x, y = frame.texels_mm(rows, cols)
        r = np.hypot(x - centre[0], y - centre[1])
        canvas[rows, cols] += (
            -shape.depth * np.exp(-0.5 * (r / shape.sigma_mm) ** 2) * _window(r / radius)
        )
    else:
        radii = np.array(shape.radii_mm)
        rows, cols = frame.texel_box(centre, radii)
        x, y = frame.texels_mm(rows, cols)
        noise = rng.standard_normal(x.shape)
        sigma_texels = shape.scale_mm * frame.uv_per_mm * frame.size
        noise = cv2.GaussianBlur(noise, (0, 0), sigma_texels[0], sigmaY=sigma_texels[1])
        inside = _window(np.hypot((x - centre[0]) / radii[0], (y - centre[1]) / radii[1]))
        noise /= noise[inside > 0].std()
        # Dimpled skin: pits deeper than the bumps between them.
        canvas[rows, cols] += shape.amplitude * (noise - 0.5 * np.maximum(noise, 0.0)) * inside


def _add_crease(
    canvas: np.ndarray, crease: _Crease, frame: _FaceFrame, rng: np.random.Generator
) -> None:
    """Add a crease: valley and ridge by signed distance to its curve, tapered along it."""
    control = np.array([frame.point(a) for a in crease.path])
    chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(control, axis=0), axis=1))])
    spline = make_interp_spline(chord / chord[-1], control, k=min(3, len(control) - 1))
    t = np.linspace(0.0, 1.0, max(64, int(chord[-1] / 0.05)))
    curve = spline(t)
    tangent = np.gradient(curve, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    ridge_reach = crease.ridge_offset_mm + 2.5 * crease.ridge_width_mm if crease.ridge else 0.0
    reach_steep = 3.0 * crease.width_mm
    reach_soft = max(3.0 * max(crease.soft_width_mm, crease.width_mm), ridge_reach)
    rows, cols = frame.texel_box(
        0.5 * (curve.min(0) + curve.max(0)),
        0.5 * np.ptp(curve, axis=0) + max(reach_steep, reach_soft),
    )
    x, y = frame.texels_mm(rows, cols)
    points = np.stack([x.ravel(), y.ravel()], axis=1)
    tree = cKDTree(curve)
    distance, nearest = tree.query(points)
    if crease.toward is None:
        soft = np.ones(len(points), bool)
        sigma = np.full(len(points), crease.width_mm)
    else:
        toward = frame.point(crease.toward)
        toward_side = _side(curve, tangent, toward[None], np.array([tree.query(toward)[1]]))
        soft = _side(curve, tangent, points, nearest) == toward_side
        sigma = np.where(soft, crease.soft_width_mm, crease.width_mm)
    values = -crease.depth * np.exp(-0.5 * (distance / sigma) ** 2)
    values += (
        soft
        * crease.ridge
        * np.exp(-0.5 * ((distance - crease.ridge_offset_mm) / crease.ridge_width_mm) ** 2)
    )
    values *= _window(distance / np.where(soft, reach_soft, reach_steep))
    along = t[nearest]
    # The depth wanders along the crease: three sinusoids of random phase, slow to quick.
    phases = rng.uniform(0.0, 2.0 * np.pi, 3)
    wander = sum(
        share * np.sin(2.0 * np.pi * cycles * along + phase)
        for share, cycles, phase in zip((0.5, 0.3, 0.2), (1.3, 3.1, 7.3), phases, strict=True)
    )
    taper = _smoothstep(along / crease.taper[0]) * _smoothstep((1.0 - along) / crease.taper[1])
    canvas[rows, cols] += (values * taper * (1.0 + crease.wander * wander)).reshape(x.shape)


def _side(
    curve: np.ndarray, tangent: np.ndarray, points: np.ndarray, nearest: np.ndarray
) -> np.ndarray:
    """(M,) +1 or -1: which side of the curve each (M, 2) point lies on (its nearest sample)."""
    offset = points - curve[nearest]
    return np.sign(tangent[nearest, 0] * offset[:, 1] - tangent[nearest, 1] * offset[:, 0])


def _window(r: np.ndarray) -> np.ndarray:
    """Compact bump: 1 at r = 0 falling smoothly to exactly 0 at r >= 1."""
    return np.clip(1.0 - r**2, 0.0, None) ** 2


def _smoothstep(s: np.ndarray) -> np.ndarray:
    """0 for s <= 0, 1 for s >= 1, a smooth cubic in between."""
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)
