"""A FACS Action Unit rig on MediaPipe's 468-vertex face mesh.

Each Action Unit (AU) is a displacement field in the model frame, in millimetres, at intensity 5
(FACS "E", maximum) and linear in intensity: ``offsets = Σ_k (intensity_k / 5) · field_k``.

How a field is built: the AU's muscle moves a few *handle* vertices by a given vector (the
direction of the muscle's pull, from FACS); vertices farther than the AU's support radius, the
face outline and any region the AU leaves alone are *pinned* at zero; every other vertex gets the
harmonic interpolation of those values over the skin graph (the mesh without the eye and mouth
openings, so a field never leaks from one lip or lid to the other). Harmonic interpolation is the
smoothest field that meets the handles and pins — skin stretches, it does not tear.

Sources: the muscle, region and direction of each AU follow Ekman, Friesen & Hager, *Facial
Action Coding System: The Manual* (2002), and the EMFACS summaries in Ekman & Rosenberg (eds.),
*What the Face Reveals* (2005). Amplitudes (mm at intensity E) are this project's estimates for
an adult face of average size; they are not measured values from a publication, except AU12's,
which is scaled so that the broadest real smiles read about E (see its spec).

Combinations: FACS describes some AU combinations whose appearance is not the sum of their
parts. The rig applies those it knows (:data:`AU_COMBINATIONS`) on top of the linear sum in
:meth:`AURig.offsets`; the fit, which explains landmarks with the fields themselves, uses the
linear sum alone (:meth:`AURig.linear_offsets`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from augmentface.errors import UsageError
from augmentface.face import topology as topo
from augmentface.face.topology import MeshTopology

INTENSITY_MAX = 5.0

Vec = tuple[float, float, float]


@dataclass(frozen=True)
class AUSpec:
    """How one Action Unit moves the face.

    ``handles`` maps vertex index -> displacement (mm, model frame, at intensity 5) on the
    subject's LEFT side (x > 0) or on the midline; the rig mirrors them onto the right side.
    ``pins`` are further vertices held still, besides the face outline and everything farther
    than ``radius_mm`` from every handle.
    """

    number: int
    name: str
    muscles: str
    handles: Mapping[int, Vec]
    radius_mm: float
    pins: tuple[int, ...] = ()
    free_outline: tuple[int, ...] = ()  # outline vertices this AU may move (the jaw)
    notes: str = ""
    rotation: tuple[Vec, float] | None = field(default=None)  # (pivot_mm, angle_deg) about x
    glide_mm: float = 0.0  # forward (+z) translation that comes with the rotation at E


def _arc(loop: tuple[int, ...], upper_count: int, upper: bool) -> tuple[int, ...]:
    """Vertices strictly between the corners on the upper or lower arc of a closed loop."""
    if upper:
        return loop[1 : upper_count - 1]
    return loop[upper_count:]


def _lid_profile(loop: tuple[int, ...], upper: bool, amplitude_mm: float) -> dict[int, Vec]:
    """Vertical lid displacement, largest mid-lid and fading to zero at the eye corners."""
    arc = _arc(loop, topo.EYE_UPPER_COUNT, upper)
    n = len(arc)
    weights = np.sin(np.pi * (np.arange(n) + 1) / (n + 1))
    return {v: (0.0, float(amplitude_mm * w), 0.0) for v, w in zip(arc, weights, strict=True)}


_LEFT_UPPER_LID = _arc(topo.LEFT_EYE, topo.EYE_UPPER_COUNT, upper=True)
_LEFT_LOWER_LID = _arc(topo.LEFT_EYE, topo.EYE_UPPER_COUNT, upper=False)
_EYES = topo.LEFT_EYE + topo.RIGHT_EYE
_BROWS = topo.LEFT_BROW_UPPER + topo.LEFT_BROW_LOWER + topo.RIGHT_BROW_UPPER + topo.RIGHT_BROW_LOWER
_UPPER_LIP = _arc(topo.LIPS_OUTER, topo.LIPS_OUTER_UPPER_COUNT, True) + _arc(
    topo.LIPS_INNER, topo.LIPS_INNER_UPPER_COUNT, True
)
_LOWER_LIP = _arc(topo.LIPS_OUTER, topo.LIPS_OUTER_UPPER_COUNT, False) + _arc(
    topo.LIPS_INNER, topo.LIPS_INNER_UPPER_COUNT, False
)
_MOUTH_CORNERS = (61, 291, 78, 308)
_NOSE = (1, 4, 5, 195, 197, 6, 2, 94, 19)
_CHIN_OUTLINE = (152, 148, 377, 176, 400, 149, 378)
_CHIN_BOSS = (175, 199, 200)

AU_SPECS: tuple[AUSpec, ...] = (
    AUSpec(1, "inner brow raiser", "frontalis, pars medialis",
           {336: (0, 11, 0), 285: (0, 10, 0), 296: (0, 8.5, 0), 295: (0, 7, 0), 334: (0, 4, 0),
            282: (0, 3.5, 0)},
           radius_mm=40, pins=_EYES + _NOSE,
           notes="Inner ends of the brows rise; the central forehead bunches above them."),
    AUSpec(2, "outer brow raiser", "frontalis, pars lateralis",
           {300: (0, 11, 0), 276: (0, 10, 0), 293: (0, 10, 0), 283: (0, 8.5, 0), 334: (0, 5.5, 0),
            282: (0, 5, 0)},
           radius_mm=40, pins=_EYES + _NOSE + (336, 285, 107, 55),
           notes="Lateral brows rise in an arch; inner ends stay."),
    AUSpec(4, "brow lowerer", "corrugator supercilii, depressor supercilii, procerus",
           {336: (-5.5, -8, 1.3), 285: (-5.5, -8, 1.3), 296: (-4, -6.5, 0.7),
            295: (-4, -6.5, 0.7), 334: (-2, -4.5, 0), 282: (-2, -4.5, 0), 293: (0, -2.7, 0),
            283: (0, -2.7, 0), 300: (0, -1.4, 0), 276: (0, -1.4, 0), 9: (0, -3.4, 0.7)},
           radius_mm=35, pins=_EYES + _NOSE,
           notes="Brows lowered and drawn together, inner ends most; the glabella bunches."),
    AUSpec(5, "upper lid raiser", "levator palpebrae superioris",
           _lid_profile(topo.LEFT_EYE, upper=True, amplitude_mm=4.5),
           radius_mm=14, pins=_LEFT_LOWER_LID + _BROWS,
           notes="Upper lid raised, more of the iris and sclera above it show."),
    # The orbital part of orbicularis oculi is a sphincter round the eye: besides lifting the
    # cheek and pushing the lower lid up, it draws the skin above the eye down a little and
    # lowers the brow's tail, so the eye narrows from both sides (FACS Manual 2002, AU6's
    # appearance changes); the inner brows are left to AU1 and AU4.
    AUSpec(6, "cheek raiser", "orbicularis oculi, pars orbitalis",
           {**_lid_profile(topo.LEFT_EYE, upper=False, amplitude_mm=2.5),
            **_lid_profile(topo.LEFT_EYE, upper=True, amplitude_mm=-0.8),
            **{v: (0, 4.5, 1.3) for v in (329, 330, 346, 347, 348, 349, 448, 449, 450, 451, 280)},
            300: (0, -1.5, 0), 276: (0, -1.5, 0), 293: (0, -0.8, 0), 283: (0, -0.8, 0)},
           radius_mm=25, pins=(336, 285, 296, 295, *_UPPER_LIP, *_MOUTH_CORNERS, *_NOSE),
           notes="Cheeks lifted, skin below the eye bags, the lower lid pushed up; the skin "
                 "above the eye and the brow's tail drawn down a little: the eye narrows."),
    AUSpec(7, "lid tightener", "orbicularis oculi, pars palpebralis",
           {**_lid_profile(topo.LEFT_EYE, upper=False, amplitude_mm=2.5),
            **_lid_profile(topo.LEFT_EYE, upper=True, amplitude_mm=-0.8)},
           radius_mm=12, pins=_BROWS,
           notes="Lids tightened, the lower lid raised and straightened."),
    AUSpec(9, "nose wrinkler", "levator labii superioris alaeque nasi",
           {358: (-1, 3, 0), 279: (-1, 3, 0), 429: (-1, 3, 0), 420: (-0.5, 2.5, 0),
            437: (-0.5, 2, 0), 0: (0, 1.5, 0), 267: (0, 1.5, 0), 336: (-1, -2, 0),
            285: (-1, -2, 0), 168: (0, -1, 0)},
           radius_mm=30, pins=_EYES + _LOWER_LIP,
           notes="Nose sides pulled up, wrinkles on the bridge, upper lip and inner brows drawn."),
    AUSpec(10, "upper lip raiser", "levator labii superioris",
           {0: (0, 4, 0.5), 267: (0, 4, 0.5), 269: (0, 3.5, 0), 270: (0, 3, 0), 409: (0, 2, 0),
            13: (0, 3, 0), 312: (0, 3, 0), 311: (0, 2.5, 0), 310: (0, 2, 0), 415: (0, 1.2, 0)},
           radius_mm=30, pins=_LOWER_LIP + _NOSE,
           notes="Upper lip raised, centre most; the nasolabial furrow deepens."),
    # Calibrated on the shape of real broad smiles (scripts/smile_geometry.py: the 17 shared
    # photos with MediaPipe mouthSmile >= 0.85, against renders of the 16 near-neutral ones at
    # the happiness apex, both re-detected): their mouths are 1.02 inter-pupil distances wide
    # (0.81 at rest: +26 %, as in Tarantili et al. 2005, +27 %) and their corners rise 0.14
    # above the lips' middle. So the corners pull up more than out (the lateral handles are
    # 0.7 of the vertical ones), and the lips' middle rises only 2 mm with them: the mouth
    # curves up at the corners instead of moving up whole. Rendered at the apex and
    # re-detected, ours are 1.00 wide with their corners 0.10 above the middle (MediaPipe
    # follows a rendered corner about half way) and their lips 0.17 apart (real 0.16). The
    # fit reads those 17 real smiles at AU12 3.6-6.5, median 5.6 (scripts/au_amplitudes.py).
    # Published: the corners travel 6.5-12.1 mm, mean 9.3 mm, in maximal smiles (Jorge et al.
    # 2012, Braz J Otorhinolaryngol 78(2):41, 12 adults, Vicon); here 16 mm at E in the image
    # plane, which includes the 27 % widening that the mouth's outer landmarks carry.
    AUSpec(12, "lip corner puller", "zygomaticus major",
           {291: (8.8, 13.5, -6), 308: (8.3, 12.8, -6), 409: (5.9, 9.8, -3),
            375: (5.9, 7.5, -3), 415: (5.4, 9.0, -3), 324: (5.4, 6.8, -3),
            0: (0, 2, 0), 13: (0, 2, 0), 14: (0, 2, 0), 17: (0, 2, 0)},
           radius_mm=40, pins=(*_EYES, *_NOSE, *_CHIN_OUTLINE, *_CHIN_BOSS),
           notes="Lip corners pulled up and back toward the cheekbone: the smile."),
    AUSpec(14, "dimpler", "buccinator",
           {291: (-1, 0.5, -4), 308: (-1, 0.5, -4)},
           radius_mm=25, pins=_NOSE,
           notes="Lip corners tightened and drawn inward, dimpling the cheek."),
    AUSpec(15, "lip corner depressor", "depressor anguli oris (triangularis)",
           {291: (1, -5, 0), 308: (1, -5, 0), 375: (0.5, -2.5, 0), 321: (0.3, -1.5, 0),
            324: (0.5, -2.5, 0), 318: (0.3, -1.5, 0)},
           radius_mm=30, pins=_NOSE + _CHIN_OUTLINE,
           notes="Lip corners pulled down."),
    AUSpec(16, "lower lip depressor", "depressor labii inferioris",
           {17: (0, -3, 0.5), 314: (1, -3.5, 0.5), 405: (1, -3, 0.3), 321: (0.5, -2, 0),
            14: (0, -2.5, 0), 317: (0, -2.5, 0), 402: (0, -2, 0), 318: (0, -1.2, 0)},
           radius_mm=25, pins=_MOUTH_CORNERS + _CHIN_OUTLINE + _UPPER_LIP,
           notes="Lower lip pulled down and slightly out, showing the lower teeth."),
    AUSpec(17, "chin raiser", "mentalis",
           {200: (0, 3.5, 2), 199: (0, 3.5, 2), 175: (0, 2, 1.5), 421: (0, 3, 1.5),
            17: (0, 2.5, 2), 314: (0, 2.5, 2), 405: (0, 2, 1.5), 14: (0, 2, 1.5),
            317: (0, 2, 1.5), 402: (0, 1.5, 1), 13: (0, 0.8, 0.5), 0: (0, 0.8, 0.5)},
           radius_mm=35, pins=(*_NOSE, 152),
           notes="Chin boss pushed up, lower lip pushed up and out (pout)."),
    AUSpec(20, "lip stretcher", "risorius, platysma",
           {291: (6, -1.5, -1), 308: (6, -1.5, -1), 375: (3, -1.5, 0), 324: (3, -1.5, 0),
            409: (3, -0.5, 0), 415: (3, -0.5, 0)},
           radius_mm=40, pins=_EYES + _NOSE,
           notes="Lip corners pulled sideways, the mouth elongated and flattened."),
    AUSpec(23, "lip tightener", "orbicularis oris",
           {291: (-2.5, 0, 0.5), 308: (-2.5, 0, 0.5), 0: (0, -1.5, 1), 267: (0, -1.5, 1),
            269: (0, -1.2, 0.8), 17: (0, 1.5, 1), 314: (0, 1.5, 1), 405: (0, 1.2, 0.8)},
           radius_mm=20,
           notes="Lips tightened and narrowed, the red of the lips thinned."),
    AUSpec(24, "lip presser", "orbicularis oris",
           {13: (0, -1.5, 0), 312: (0, -1.5, 0), 311: (0, -1.2, 0), 14: (0, 1.5, 0),
            317: (0, 1.5, 0), 402: (0, 1.2, 0), 0: (0, -1, 0), 267: (0, -1, 0),
            17: (0, 1, 0.5), 314: (0, 1, 0.5)},
           radius_mm=20, pins=_MOUTH_CORNERS,
           notes="Lips pressed together."),
    AUSpec(25, "lips part", "depressor labii inferioris; relaxed mentalis and orbicularis oris",
           {14: (0, -4, 0), 317: (0, -4, 0), 402: (0, -3.5, 0), 318: (0, -2.5, 0),
            324: (0, -1.2, 0), 13: (0, 1.2, 0), 312: (0, 1.2, 0), 311: (0, 1, 0),
            310: (0, 0.7, 0), 17: (0, -2.5, 0.3), 314: (0, -2.5, 0.3), 405: (0, -2, 0),
            321: (0, -1.2, 0)},
           radius_mm=25, pins=_MOUTH_CORNERS + _CHIN_OUTLINE,
           notes="Lips parted without the jaw dropping."),
    # The mandible turns about the condyles (in front of the ears, at about the level of the
    # nose's base: pivot y = -5, z = -40 in this frame) and glides forward as it opens, so
    # the chin drops rather than swinging back. 15 degrees with a 10 mm glide lower the
    # lower lip by 21 mm at E: about half of a normal adult's maximal opening (40-60 mm
    # between the incisors), the far end being AU27's stretch.
    AUSpec(26, "jaw drop", "masseter, temporalis and internal pterygoid relaxed",
           {291: (-5.5, 0, 0), 308: (-5, 0, 0)}, radius_mm=20, free_outline=(
               152, 148, 176, 149, 150, 136, 172, 58, 377, 400, 378, 379, 365, 397, 288),
           pins=_UPPER_LIP + _NOSE,
           rotation=((0.0, -5.0, -40.0), 15.0), glide_mm=10.0,
           notes="The mandible rotates down about the jaw joint and glides forward; the lower "
                 "lip goes with it, the relaxed lip corners follow a third of the way and "
                 "draw in a little, so a wide drop rounds the opening."),
    AUSpec(43, "eyes closed", "levator palpebrae superioris relaxed; orbicularis oculi",
           {}, radius_mm=15, pins=_BROWS,
           notes="Upper lids drop to meet the lower lids (AU45, blink, has the same shape)."),
)  # fmt: skip

#: AU numbers accepted as targets that share another AU's displacement field.
AU_ALIASES = {45: 43}


def _inner_brow_lift_wins(
    raiser: np.ndarray, lowerer: np.ndarray, mesh: MeshTopology
) -> np.ndarray:
    """1+4: AU4's lowering, cancelled where AU1 lifts, in proportion to AU1's own reach."""
    reach = np.linalg.norm(raiser, axis=1)
    reach /= reach.max()  # 1 at the inner brow, fading to 0 where AU1 does not act
    correction = np.zeros_like(lowerer)
    correction[:, 1] = -np.minimum(lowerer[:, 1], 0.0) * reach
    return correction


#: 12+25 at E: how far (mm) the upper lip's centre rises further over the upper teeth, and the
#: share of AU12's lift of the lower lip's centre that the parted lower lip does not follow.
SMILE_UPPER_LIP_RAISE_MM = 2.0
SMILE_LOWER_LIP_STAYS = 1.2


def _smile_bares_upper_teeth(
    puller: np.ndarray, parter: np.ndarray, mesh: MeshTopology
) -> np.ndarray:
    """12+25: the parted lips open into a smile's crescent over the upper teeth.

    With the corners pulled up and back, the lower lip, once free of the upper, no longer
    follows the corners' lift in its middle: it hangs, stretched, over the lower teeth (a share
    :data:`SMILE_LOWER_LIP_STAYS` of AU12's lift taken back at the midline, none at the
    corners), so the opening is a crescent, widest in the middle; the upper lip rises a little
    further and bares the upper teeth (:data:`SMILE_UPPER_LIP_RAISE_MM` at the centre, fading
    toward the corners, which stay where AU12 puts them).
    """
    verts = mesh.verts_model_mm
    half_width = abs(verts[_MOUTH_CORNERS[0], 0])
    values: dict[int, np.ndarray] = {}
    for v in _mirror_set(_LOWER_LIP, mesh.mirror):
        lateral = min(abs(verts[v, 0]) / half_width, 1.0)
        stays = SMILE_LOWER_LIP_STAYS * (1.0 - lateral**2)
        values[v] = np.array([0.0, -stays * puller[v, 1], 0.0])
    for loop, count in ((topo.LIPS_INNER, topo.LIPS_INNER_UPPER_COUNT),
                        (topo.LIPS_OUTER, topo.LIPS_OUTER_UPPER_COUNT)):  # fmt: skip
        arc = _arc(loop, count, True)
        weights = np.sin(np.pi * (np.arange(len(arc)) + 1) / (len(arc) + 1))
        for v, w in zip(arc, weights, strict=True):
            values[v] = np.array([0.0, SMILE_UPPER_LIP_RAISE_MM * w, 0.0])
    for v in _mirror_set((*_MOUTH_CORNERS, *_NOSE, *_CHIN_OUTLINE), mesh.mirror) | set(
        topo.FACE_OVAL
    ):
        values[v] = np.zeros(3)
    return mesh.harmonic_field(values)


@dataclass(frozen=True)
class AUCombination:
    """Two AUs whose joint appearance FACS describes differently from the sum of their fields.

    ``correction(field_a, field_b, mesh)`` builds a (N, 3) field in mm from the two AUs' (N, 3)
    fields at intensity 5, in the order of ``aus``, on the mesh; the rig adds
    ``min(intensity_a, intensity_b) / 5`` times it to the linear sum: the correction grows with
    the weaker AU, which is how far one movement can override the other.
    """

    aus: tuple[int, int]
    notes: str
    correction: Callable[[np.ndarray, np.ndarray, MeshTopology], np.ndarray]


AU_COMBINATIONS: tuple[AUCombination, ...] = (
    AUCombination(
        (1, 4),
        "1+4 (sadness, and fear with 2): the inner corners of the brows are raised AND drawn "
        "together, the brows slant; AU1 wins the vertical movement where it acts, so AU4's "
        "lowering is cancelled there, in proportion to AU1's own reach, while AU4's pull "
        "toward the midline and its lowering of the lateral brow stay (FACS Manual, 2002, on "
        "the 1+4 combination).",
        _inner_brow_lift_wins,
    ),
    AUCombination(
        (12, 25),
        "12+25 (the broad smile): with the lip corners pulled up and back, parted lips open "
        "into a wide crescent that shows the upper teeth; the lower lip stays stretched over "
        "the lower teeth instead of rising with the corners, the upper lip rises further "
        "(FACS Manual, 2002, on 12+25; in spontaneous smiles the upper lip rises by 28 % "
        "relative to rest and the mouth widens by 27 %, the corners moving up and out at "
        "about 47 degrees: Tarantili et al. 2005, Am J Orthod Dentofacial Orthop 128:8).",
        _smile_bares_upper_teeth,
    ),
)


def _mirror_handles(spec_handles: Mapping[int, Vec], mirror: np.ndarray) -> dict[int, np.ndarray]:
    """Left-side handles plus their mirror images (x negated) on the right side."""
    out: dict[int, np.ndarray] = {}
    for v, d in spec_handles.items():
        d = np.asarray(d, dtype=float)
        out[v] = d
        m = int(mirror[v])
        if m != v:
            out[m] = d * np.array([-1.0, 1.0, 1.0])
    return out


def _mirror_set(vertices: tuple[int, ...], mirror: np.ndarray) -> set[int]:
    return set(vertices) | {int(mirror[v]) for v in vertices}


def _eyelid_closure(verts: np.ndarray) -> dict[int, Vec]:
    """Upper lid vertices move 85 % of the way to the lower lid, the lower lid 20 % up."""
    out: dict[int, Vec] = {}
    for loop in (topo.LEFT_EYE, topo.RIGHT_EYE):
        upper = list(_arc(loop, topo.EYE_UPPER_COUNT, True))
        lower = list(_arc(loop, topo.EYE_UPPER_COUNT, False))
        corners = [loop[0], loop[topo.EYE_UPPER_COUNT - 1]]
        lower_line = np.array(sorted(verts[lower + corners].tolist()))
        upper_line = np.array(sorted(verts[upper + corners].tolist()))
        for v in upper:
            target = np.array(
                [np.interp(verts[v, 0], lower_line[:, 0], lower_line[:, k]) for k in (1, 2)]
            )
            out[v] = (0.0, *(0.85 * (target - verts[v, 1:])))
        for v in lower:
            target = np.array(
                [np.interp(verts[v, 0], upper_line[:, 0], upper_line[:, k]) for k in (1, 2)]
            )
            out[v] = (0.0, *(0.20 * (target - verts[v, 1:])))
    return out


#: Share of the jaw's movement the relaxed lip corners follow in a jaw drop.
JAW_CORNER_SHARE = 0.35
#: Share of the jaw's movement the lower lip's centre follows.
JAW_LOWER_LIP_SHARE = 0.9


def _lower_lip_jaw_shares(mesh: MeshTopology) -> dict[int, float]:
    """The share of the jaw's movement each lower-lip vertex follows: the centre's share at the
    midline, falling along a quarter ellipse to the corners' share at the corners. A lip that
    followed the jaw evenly up to its corners opened a box with vertical sides at the corners;
    the lower lip hangs from the corners, so a drop opens an oval."""
    verts = mesh.verts_model_mm
    shares: dict[int, float] = {}
    for loop, upper_count in ((topo.LIPS_OUTER, topo.LIPS_OUTER_UPPER_COUNT),
                              (topo.LIPS_INNER, topo.LIPS_INNER_UPPER_COUNT)):  # fmt: skip
        half_width = abs(verts[loop[0], 0] - verts[loop[upper_count - 1], 0]) / 2
        middle = (verts[loop[0], 0] + verts[loop[upper_count - 1], 0]) / 2
        for v in _arc(loop, upper_count, upper=False):
            for u in {v, int(mesh.mirror[v])}:
                t = min(1.0, abs(verts[u, 0] - middle) / half_width)
                reach = np.sqrt(1.0 - t * t)
                shares[u] = JAW_CORNER_SHARE + (JAW_LOWER_LIP_SHARE - JAW_CORNER_SHARE) * reach
    return shares


def _jaw_field(spec: AUSpec, mesh: MeshTopology) -> np.ndarray:
    """Rotation of the lower face about the jaw joint, with its forward glide, weighted by a
    harmonic jaw mask (1 on the chin, 0.9 at the lower lip's centre falling to a third at the
    lip corners: :func:`_lower_lip_jaw_shares`)."""
    verts = mesh.verts_model_mm
    weights: dict[int, np.ndarray] = {}
    for v in np.flatnonzero(verts[:, 1] < -62.0):
        weights[int(v)] = np.ones(3)
    for u, share in _lower_lip_jaw_shares(mesh).items():
        weights[u] = np.full(3, share)
    for v in _mirror_set(_MOUTH_CORNERS[:2], mesh.mirror):
        weights[v] = np.full(3, JAW_CORNER_SHARE)
    still = _mirror_set((*_UPPER_LIP, *_NOSE), mesh.mirror)
    for v in still | set(np.flatnonzero(verts[:, 1] > -25.0).tolist()):
        weights.setdefault(int(v), np.zeros(3))
    for v in topo.FACE_OVAL:
        if v not in spec.free_outline:
            weights[v] = np.zeros(3)
    w = mesh.harmonic_field(weights)[:, 0]
    assert spec.rotation is not None
    pivot, angle_deg = np.asarray(spec.rotation[0]), np.radians(spec.rotation[1])
    c, s = np.cos(angle_deg), np.sin(angle_deg)
    # Opening the mouth turns the chin down (-y) and back (-z) about the joint's x axis; the
    # condyles' forward glide (+z) takes back much of the backward swing.
    rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    moved = (verts - pivot) @ rot.T + pivot + np.array([0.0, 0.0, spec.glide_mm])
    return w[:, None] * (moved - verts)


def _handle_field(spec: AUSpec, handles: Mapping[int, Vec], mesh: MeshTopology) -> np.ndarray:
    """Harmonic field through the mirrored handles, pinned beyond the radius, at the pins and
    on the face outline."""
    verts = mesh.verts_model_mm
    values = _mirror_handles(handles, mesh.mirror)
    handle_ids = np.fromiter(values.keys(), dtype=np.int64)
    dist = np.linalg.norm(verts[:, None, :] - verts[None, handle_ids, :], axis=2).min(axis=1)
    pinned = set(np.flatnonzero(dist > spec.radius_mm).tolist())
    pinned |= _mirror_set(spec.pins, mesh.mirror) | set(topo.FACE_OVAL)
    for v in pinned - set(values):
        values[v] = np.zeros(3)
    return mesh.harmonic_field(values)


def build_au_field(spec: AUSpec, mesh: MeshTopology) -> np.ndarray:
    """(N, 3) displacement field of one AU at intensity 5, in mm, model frame."""
    handles = _eyelid_closure(mesh.verts_model_mm) if spec.number == 43 else spec.handles
    field = np.zeros_like(mesh.verts_model_mm)
    if handles:
        field += _handle_field(spec, handles, mesh)
    if spec.rotation is not None:
        field += _jaw_field(spec, mesh)
    return field


@dataclass(frozen=True)
class AURig:
    """FACS rig: one displacement field per AU at intensity 5, plus combination corrections.

    Attributes
    ----------
    au_numbers : tuple of int
        The AUs, in the order of ``fields_model_mm``.
    fields_model_mm : (K, N, 3) float64
        Displacement of every vertex at intensity 5, model frame, millimetres.
    combination_fields_model_mm : (C, N, 3) float64
        Correction of each of :data:`AU_COMBINATIONS` when both its AUs are at 5, mm.
    """

    au_numbers: tuple[int, ...]
    fields_model_mm: np.ndarray
    combination_fields_model_mm: np.ndarray

    @property
    def au_names(self) -> tuple[str, ...]:
        return tuple(f"AU{n}" for n in self.au_numbers)

    def _checked(self, intensities: np.ndarray) -> np.ndarray:
        intensities = np.asarray(intensities, dtype=float)
        if intensities.shape != (len(self.au_numbers),):
            raise UsageError(
                f"expected {len(self.au_numbers)} intensities ({', '.join(self.au_names)}), "
                f"got shape {intensities.shape}"
            )
        return intensities

    def linear_offsets(self, intensities: np.ndarray) -> np.ndarray:
        """(N, 3) sum of the AU fields in mm for (K,) intensities (signed values allowed).

        The fit's model of a face: it explains landmarks with the fields and removes what it
        explained, so it must not add the combination corrections it did not fit.
        """
        intensities = self._checked(intensities)
        return np.tensordot(intensities / INTENSITY_MAX, self.fields_model_mm, axes=1)

    def offsets(self, intensities: np.ndarray) -> np.ndarray:
        """(N, 3) expression offsets in mm for (K,) intensities on the 0–5 scale: the linear
        sum plus each combination's correction, scaled by the weaker of its two AUs."""
        intensities = self._checked(intensities)
        return self.linear_offsets(intensities) + self.combination_offsets(intensities)

    def combination_offsets(self, intensities: np.ndarray) -> np.ndarray:
        """(..., N, 3) the combination corrections, mm, for (..., K) intensities: each of
        :data:`AU_COMBINATIONS` scaled by the weaker of its two AUs (0 when either is 0)."""
        intensities = np.asarray(intensities, dtype=float)
        out = np.zeros((*intensities.shape[:-1], *self.fields_model_mm.shape[1:]))
        for combination, correction in zip(
            AU_COMBINATIONS, self.combination_fields_model_mm, strict=True
        ):
            a, b = (intensities[..., self.au_numbers.index(au)] for au in combination.aus)
            weaker = np.clip(np.minimum(a, b), 0.0, None) / INTENSITY_MAX
            out += weaker[..., None, None] * correction
        return out

    def vector(self, targets: Mapping[int, float]) -> np.ndarray:
        """(K,) intensity vector from ``{au_number: intensity}`` (aliases resolved)."""
        out = np.zeros(len(self.au_numbers))
        for au, value in targets.items():
            au = AU_ALIASES.get(au, au)
            out[self.au_numbers.index(au)] += value
        return out


@cache
def _build_rig_cached(key: bytes, shape: tuple[int, ...], tri_key: bytes, tri_shape) -> AURig:
    verts = np.frombuffer(key, dtype=np.float64).reshape(shape)
    tris = np.frombuffer(tri_key, dtype=np.int32).reshape(tri_shape)
    mesh = MeshTopology(verts, tris)
    fields = np.stack([build_au_field(spec, mesh) for spec in AU_SPECS])
    numbers = tuple(s.number for s in AU_SPECS)
    corrections = np.stack(
        [
            c.correction(*(fields[numbers.index(au)] for au in c.aus), mesh)
            for c in AU_COMBINATIONS
        ]
    )
    return AURig(numbers, fields, corrections)


def build_au_rig(verts_model_mm: np.ndarray, triangles: np.ndarray) -> AURig:
    """Build (once per mesh, cached) the rig on the canonical mesh."""
    verts = np.ascontiguousarray(verts_model_mm, dtype=np.float64)
    tris = np.ascontiguousarray(triangles, dtype=np.int32)
    return _build_rig_cached(verts.tobytes(), verts.shape, tris.tobytes(), tris.shape)


def spec_for(au: int) -> AUSpec:
    """The spec of one AU number (aliases resolved); unknown numbers list the allowed ones."""
    au = AU_ALIASES.get(au, au)
    for spec in AU_SPECS:
        if spec.number == au:
            return spec
    allowed = sorted([s.number for s in AU_SPECS] + list(AU_ALIASES))
    raise UsageError(f"unknown AU{au}; allowed: {', '.join(f'AU{a}' for a in allowed)}")
