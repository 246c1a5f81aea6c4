"""A geometric response per Action Unit, from landmarks detected before and after an edit.

MediaPipe's blendshapes (:mod:`augmentface.metrics.blendshapes_facs`) have no channel for some
of what AUs do: the brows drawn together (AU4), lips parted without a jaw drop (AU25), the nose
wrinkled (AU9). This instrument reads AUs off landmark geometry instead: per AU, one signed
*channel* measured on the landmarks of the source and of the output, the response being the
change (after − before), signed so that the AU's action makes it positive. It works on two
landmark sets: dlib's 68-point iBUG-300W shape (a model independent of MediaPipe), and
MediaPipe's 478 landmarks (468 mesh vertices + 10 iris points).

Head frame. Channels are measured in a frame built from the landmarks themselves: origin at
the midpoint of the two eye centres (each eye's centre is the midpoint of its two corners,
which the canthal tendons tie to the skull), x along the eye line toward the subject's left,
y perpendicular to it and up, lengths divided by the outer inter-ocular distance (the 300-W
normaliser: outer eye corners). Roll, scale and translation therefore cancel; yaw and pitch
do not, which is harmless for a response because the source and its output share the head's
pose. Heights below are y in this frame, lateral positions x, in inter-ocular units (IOD).
The eye corners are steady but not still: with the eyes closed (AU43=4) the re-detected corners
sink, and every height below the eyes reads about 1-2 % IOD higher on the shared photos.

Specificity. A channel measures the structure its AU moves *relative to the structure that AU
moves it against*, so that what other AUs do to the whole region cancels: a jaw drop lowers
the lower lip, the lip corners and the chin together, a smile lifts both lips with the corners.
Where another AU still moves the measured structure, the channel takes out what that AU's own
hallmark predicts, with these constants (ratios of the jaw's and the lips' kinematics; the
figures in brackets are the FACS rig's, :mod:`augmentface.expression.au_rig`, at intensity E):

:data:`CORNER_SHARE_OF_GAP` = 1/3
    Relaxed lip corners hang between the lips, the upper one fixed to the maxilla: when the
    mouth opens they sink a third of the lips' gap below the upper lip [jaw drop: 0.34].
:data:`CORNER_DRAW_IN_PER_GAP` = 1/4
    A wide opening rounds the mouth: the corners draw in by a quarter of the gap [0.27].
:data:`JAW_LEVER` = 1.2
    The mandible turns about the jaw joints, so its front (the lower lip, the chin boss) drops
    further than the chin's lowest points [lower lip 1.19, chin boss 1.20 times the chin].
:data:`NOSE_SHARE_OF_UPPER_LIP` = 1/8
    The nose wings, joined to the upper lip, follow an upper lip raised by AU10 or AU12 an
    eighth of the way [AU10: 0.12, AU12: 0.14].
:data:`LOWER_LID_SHARE_OF_CLOSURE` = 1/3
    As the eye closes, the lower lid rises a little toward the falling upper lid [from the eye
    line, which sinks with the lids: 0.41-0.43 of the upper lid's fall; from the iris: 0.24].
    A third leaves a closing eye (AU43) and a rising upper lid (AU5) alike small.
:data:`LOWER_LIP_SHARE_OF_SMILE` = 0.15
    A smile lifts the lower lip 0.15 times as far as the lip corners [0.15]: its corners curve
    up, the lips' middle rises 2 mm (expression/au_rig.py, AU12).
:data:`SMILE_PULL_DEG` = 57
    A smile pulls the lip corners up and out at 57 degrees above the horizontal [56.9]; the
    real broad smiles of the shared photos widen the mouth by about a fifth of an inter-pupil
    distance and lift the corners by about a seventh (scripts/smile_geometry.py).

On the rig's own fields every channel of a DISFA AU (and AU43) responds to its AU at least twice
as much as to any other of those AUs, and more than to any other AU of the rig
(``tests/test_au_geometry.py``), except for the pairs named under the channels: *antagonists*,
muscles that move the same structure the opposite way (1-4, 5-43, 12-15; and on iBUG-68, which
has no chin-boss point, 17-25 and 17-16), which read negative on each other's channels, and
*shared* channels, where two AUs move the same structure the same way.

Channels and the AUs they measure. Each follows an appearance change that the FACS Manual
(Ekman, Friesen & Hager, 2002) gives for the AU. ``G`` is ``lip_gap``, the height of the inner
upper lip above the inner lower lip.

``inner_brow_height`` — AU1 (frontalis, pars medialis)
    Mean height of the inner ends of the brows: AU1 raises the inner corners of the brows.
    Antagonist: AU4 lowers them.
``outer_brow_height`` — AU2 (frontalis, pars lateralis)
    Mean height of the lateral half of the brows: AU2 raises the lateral brow.
``brow_lowering`` — AU4 (corrugator, depressor supercilii, procerus)
    AU4 lowers the brows and draws them together, the inner ends most. The channel is the inner
    brow heads' position along the down-and-toward-the-midline diagonal,
    ``-(inner_brow_height + inner_brow_half_gap) / sqrt(2)``, where ``inner_brow_half_gap`` is
    half the lateral distance between the two inner brow heads: lowering and gathering count
    equally. The detectors follow the gathering much less than the lowering (on the shared
    photos at AU4=4, where the rig moves the inner brow heads 7 % IOD down and 5 % toward the
    midline, dlib's re-detected points drop 5.3 % and gather 1.3 %, MediaPipe's 3.5 % and
    0.3 %), so the lowering carries the channel. In 1+4 (sadness, fear), where AU1's lift
    wins the vertical, AU4 therefore reads negative; ``inner_brow_half_gap`` is the part that
    AU1 leaves alone. Antagonist: AU1, whose lift is the lowering's opposite. Only the
    gathering would set the two apart, and the detectors hardly see it.
``upper_lid_height`` — AU5 (levator palpebrae superioris)
    Mean height of the upper lid's middle above the eye: above the eye line for iBUG-68, above
    the iris centres for MediaPipe. AU5 raises the upper lid and bares sclera above the iris.
    The iris is the steadier reference: the render holds the eyeballs still under the lids,
    whereas the eye corners, and with them the eye line, move a little with every lid AU.
    Antagonist: AU43 lowers the lid.
``lower_lid_height`` — AU7 (orbicularis oculi, pars palpebralis)
    Mean height of the lower lid's middle, from the same reference: AU7 raises and straightens
    the lower lid. Shared with AU6, which pushes the lower lid up from below, and AU43.
``cheek_raise`` — AU6 (orbicularis oculi, pars orbitalis)
    AU6 lifts the cheek (the infraorbital skin) toward the eye, bagging the skin below it and
    narrowing the eye from below. MediaPipe: mean height of the malar cheek below the eye's
    middle (vertices 118, 119, 347, 348) above the iris centres; AU7 raises the lid, not the
    cheek, and closing the eyes leaves it. iBUG-68 has no cheek point: the lower lid's height
    plus :data:`LOWER_LID_SHARE_OF_CLOSURE` of the upper lid's, which takes out the lower lid's
    rise in a closing eye (AU43) and leaves AU6's push. Shared on iBUG-68 with AU7.
``eye_aperture`` — AU43 (eyes closed), sign −1
    Upper minus lower lid height: with AU43 the upper lid drops until the eye is closed.
    Antagonist: AU5 widens the aperture. AU6 and AU7 narrow it from below, less.
``nose_base_lift`` — AU9 (levator labii superioris alaeque nasi)
    Mean height of the base of the nose (iBUG 31–35: the nostril wings' lower ends and the
    subnasale) less :data:`NOSE_SHARE_OF_UPPER_LIP` of the height of the upper lip's top.
    AU9 pulls the nose wings up; the nose shortens toward the eyes. The lip's share takes out
    the wings' drag by an upper lip raised by AU10 or a smile. Its other hallmark, wrinkles
    along the nose, is texture, not geometry.
``upper_lip_to_nose`` — AU10 (levator labii superioris), sign −1
    Height of the subnasale above the top of the upper lip: AU10 raises the upper lip, its
    centre most, so the philtrum shortens. AU9 lifts the nose base with the lip and leaves
    this distance nearly unchanged.
``lip_corner_pull`` — AU12 (zygomaticus major)
    AU12 pulls the lip corners up and out, obliquely toward the cheekbone. The channel is the
    corners' position along that pull, :data:`SMILE_PULL_DEG` above the outward horizontal,
    ``width · cos + height · sin``: height
    the corners' mean height plus ``G`` × :data:`CORNER_SHARE_OF_GAP`, width
    ``mouth_half_width`` (half the distance between the corners) plus ``G`` ×
    :data:`CORNER_DRAW_IN_PER_GAP`, both as they would be with the lips closed, so that a jaw
    drop or parted lips do not read. Antagonist: AU15 lowers the corners.
``lip_corner_stretch`` — AU20 (risorius, platysma)
    The same corners along the perpendicular, outward-and-down direction,
    ``width · sin − height · cos``: AU20 pulls the corners sideways and elongates and flattens
    the mouth, while a smile's oblique pull reads about 0 on it. Shared: AU15 pulls the
    corners down and a little out, which reads positive too; corner positions alone cannot
    tell the three corner AUs (12, 15, 20) apart, and this leaves the smile out.
``lip_corner_to_mouth_line`` — AU15 (depressor anguli oris), sign −1
    Mean height of the lip corners above the *mouth line*, the line ``G`` ×
    :data:`CORNER_SHARE_OF_GAP` below the inner upper lip (where relaxed corners sit; the
    lips' meeting line when they are closed): AU15 pulls the corners down and angles the lips
    down at the corners. The lips are the reference, so a jaw drop, parted lips and a lip
    lifted by AU10 or AU17 do not read. Antagonist: AU12 lifts the corners above the lips.
``chin_raise`` — AU17 (mentalis)
    AU17 pushes the chin boss and the lower lip up. MediaPipe: mean height of the chin boss
    (vertices 199, 175) less :data:`JAW_LEVER` times the chin's (``chin_height``), which takes
    out a jaw drop; no other AU moves the boss. iBUG-68 has no point on the boss: the outer
    lower lip's height (iBUG 56–58) less :data:`JAW_LEVER` times the chin's, less
    :data:`LOWER_LIP_SHARE_OF_SMILE` times the corners' height as in ``lip_corner_pull``,
    which takes out a smile's lift of the lower lip. Antagonists on
    iBUG-68: AU25 (with its relaxed mentalis) and AU16 lower the lower lip.
``lip_parting`` — AU25 (lips part)
    ``G`` less what a jaw drop explains, :data:`JAW_LEVER` times the chin's drop: AU25 parts the
    lips, AU26 carries the lower lip down with the jaw. The upper lip raised by AU10, and the
    lower lip lowered by AU16, part the lips too, as in FACS, where they come coded with 25.
``chin_height`` — AU26 (jaw drop), sign −1
    Mean height of the chin's lowest points (iBUG 7–9): AU26 lowers the mandible. No other AU
    moves the chin outline, while the nose, the other end of a chin-to-nose distance, rises
    with AU9.

Not measured: AU14, AU16, AU23, AU24 (sparse landmarks do not separate them from the lip
channels above). Where MediaPipe has points that iBUG lacks it uses them (the lower edge of the
inner and outer brows, the lids' middle vertices, the iris centres, the cheek and the chin
boss); every other point is the mesh vertex of :data:`augmentface.face.topology.IBUG68` for the
same iBUG point, so the two sets measure the same anatomy.

On real photos the re-detected landmarks follow the rendered movements only in part. On the 16
near-neutral shared photos (single-AU targets at 4, each measured against its face's neutral
render), MediaPipe's cheek and chin-boss vertices do not follow at all (0.0 and 0.1 % IOD,
where the rendered mesh moves them 4.0 and 2.5): they lie in smooth skin, where a warp leaves
no evidence in the image, and the detector places them from the face's overall shape. Neither
set follows AU6's push of the lower lid. MediaPipe's chin outline follows a jaw drop by 0.7 of
the rendered movement and its lip corners do not draw in, so a jaw drop reads on
``lip_parting``, ``lip_corner_pull`` and ``lip_corner_stretch`` there (3-6 % IOD at AU26=4).
How the channels respond, per AU and landmark set (Pearson r of requested intensity with the
response, and the mean response per single-AU target): ``pytest tests/test_au_geometry.py -s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "AU_CHANNELS",
    "CORNER_DRAW_IN_PER_GAP",
    "CORNER_SHARE_OF_GAP",
    "GEOMETRY_AUS",
    "JAW_LEVER",
    "KINDS",
    "LOWER_LID_SHARE_OF_CLOSURE",
    "LOWER_LIP_SHARE_OF_SMILE",
    "NOSE_SHARE_OF_UPPER_LIP",
    "au_channels",
    "au_geometric_response",
    "head_frame",
]

# Either component of a unit vector at 45 degrees: projects a point onto a diagonal.
_DIAGONAL = 1.0 / np.sqrt(2.0)

#: How far below the inner upper lip relaxed lip corners sit, per unit of the lips' gap.
CORNER_SHARE_OF_GAP = 1.0 / 3.0
#: How far relaxed lip corners draw in toward the midline, per unit of the lips' gap.
CORNER_DRAW_IN_PER_GAP = 0.25
#: How far a jaw drop carries the lower lip and the chin boss, per unit of the chin's drop.
JAW_LEVER = 1.2
#: How far the nose base follows the top of the upper lip, per unit of the lip's rise.
NOSE_SHARE_OF_UPPER_LIP = 1.0 / 8.0
#: How far the lower lid rises from the eye line as the eye closes, per unit of the upper
#: lid's fall (iBUG-68's ``cheek_raise``).
LOWER_LID_SHARE_OF_CLOSURE = 1.0 / 3.0
#: How far a smile lifts the lower lip, per unit of the lip corners' lift (iBUG-68's
#: ``chin_raise``).
LOWER_LIP_SHARE_OF_SMILE = 0.15
#: The direction of a smile's pull on the lip corners, degrees above the outward horizontal.
SMILE_PULL_DEG = 57.0
_SMILE_PULL = np.array([np.cos(np.radians(SMILE_PULL_DEG)), np.sin(np.radians(SMILE_PULL_DEG))])


@dataclass(frozen=True)
class _LandmarkSet:
    """Indices of one landmark set's points by feature. Pairs are (subject's right, left);
    an empty ``eye_reference`` means the eye line, an empty ``cheeks`` or ``chin_boss`` that
    the set has no such point."""

    n_points: int
    eye_corners_right: tuple[int, int]  # outer, inner
    eye_corners_left: tuple[int, int]  # inner, outer
    eye_reference: tuple[int, ...]  # lids and cheeks are measured from these
    inner_brows: tuple[tuple[int, ...], tuple[int, ...]]
    outer_brows: tuple[int, ...]
    upper_lids: tuple[int, ...]
    lower_lids: tuple[int, ...]
    cheeks: tuple[int, ...]
    nose_base: tuple[int, ...]
    subnasale: int
    upper_lip_top: tuple[int, ...]
    lip_corners: tuple[int, int]
    lower_lip: tuple[int, ...]
    inner_upper_lip: tuple[int, ...]
    inner_lower_lip: tuple[int, ...]
    chin_boss: tuple[int, ...]
    chin: tuple[int, ...]


_IBUG68 = _LandmarkSet(
    n_points=68,
    eye_corners_right=(36, 39),
    eye_corners_left=(42, 45),
    eye_reference=(),
    inner_brows=((21,), (22,)),
    outer_brows=(17, 18, 25, 26),
    upper_lids=(37, 38, 43, 44),
    lower_lids=(40, 41, 46, 47),
    cheeks=(),
    nose_base=(31, 32, 33, 34, 35),
    subnasale=33,
    upper_lip_top=(50, 51, 52),
    lip_corners=(48, 54),
    lower_lip=(56, 57, 58),
    inner_upper_lip=(61, 62, 63),
    inner_lower_lip=(65, 66, 67),
    chin_boss=(),
    chin=(7, 8, 9),
)

# The iBUG points' mesh vertices (topology.IBUG68), plus 55/285 and 46/53/283/276 (the brows'
# lower edge), 159/386 and 145/374 (mid-lid), the iris centres 468/473, the malar cheek below
# the eyes' middle 118/119/347/348, and the chin boss 199/175 (on the midline, between the
# lower lip's fold and the chin's lowest point).
_MEDIAPIPE = _LandmarkSet(
    n_points=478,
    eye_corners_right=(33, 133),
    eye_corners_left=(362, 263),
    eye_reference=(468, 473),
    inner_brows=((107, 55), (336, 285)),
    outer_brows=(70, 46, 63, 53, 293, 283, 300, 276),
    upper_lids=(160, 159, 158, 385, 386, 387),
    lower_lids=(153, 145, 144, 373, 374, 380),
    cheeks=(118, 119, 347, 348),
    nose_base=(75, 97, 2, 326, 305),
    subnasale=2,
    upper_lip_top=(37, 0, 267),
    lip_corners=(61, 291),
    lower_lip=(314, 17, 84),
    inner_upper_lip=(82, 13, 312),
    inner_lower_lip=(317, 14, 87),
    chin_boss=(199, 175),
    chin=(176, 152, 400),
)

_SETS = {"ibug68": _IBUG68, "mediapipe": _MEDIAPIPE}

#: Landmark sets understood: ``"ibug68"`` (68, k) and ``"mediapipe"`` (478, k), k >= 2.
KINDS: tuple[str, ...] = tuple(_SETS)

#: AU number -> (channel, sign): the AU's response is ``sign * (after - before)`` of the channel.
AU_CHANNELS: dict[int, tuple[str, int]] = {
    1: ("inner_brow_height", 1),
    2: ("outer_brow_height", 1),
    4: ("brow_lowering", 1),
    5: ("upper_lid_height", 1),
    6: ("cheek_raise", 1),
    7: ("lower_lid_height", 1),
    9: ("nose_base_lift", 1),
    10: ("upper_lip_to_nose", -1),
    12: ("lip_corner_pull", 1),
    15: ("lip_corner_to_mouth_line", -1),
    17: ("chin_raise", 1),
    20: ("lip_corner_stretch", 1),
    25: ("lip_parting", 1),
    26: ("chin_height", -1),
    43: ("eye_aperture", -1),
}

#: The AUs this instrument measures, in AU order.
GEOMETRY_AUS: tuple[int, ...] = tuple(sorted(AU_CHANNELS))


def _landmark_set(kind: str) -> _LandmarkSet:
    if kind not in _SETS:
        raise ValueError(f"unknown landmark kind {kind!r}; allowed: {', '.join(KINDS)}")
    return _SETS[kind]


def _checked_xy(landmarks_px: np.ndarray, points: _LandmarkSet, kind: str) -> np.ndarray:
    """The (N, 2) float64 ``x, y`` of valid landmarks, or ValueError."""
    landmarks = np.asarray(landmarks_px, dtype=np.float64)
    if landmarks.ndim != 2 or landmarks.shape[0] != points.n_points or landmarks.shape[1] < 2:
        raise ValueError(
            f"{kind} landmarks must be ({points.n_points}, >=2), got shape {landmarks.shape}"
        )
    xy = landmarks[:, :2]
    if not np.isfinite(xy).all():
        raise ValueError(f"{kind} landmarks contain non-finite coordinates")
    return xy


def head_frame(landmarks_px: np.ndarray, kind: str) -> np.ndarray:
    """Landmarks in the head frame: eye-centre origin, de-rolled, y up, in inter-ocular units.

    Parameters
    ----------
    landmarks_px : np.ndarray
        (68, k) for ``kind="ibug68"`` (e.g. :func:`augmentface.metrics.geometry.dlib_landmarks68`)
        or (478, k) for ``kind="mediapipe"`` (``FaceDetection.landmarks_px``), k >= 2: ``x, y``
        in image pixels (y down) first; further columns (depth) are ignored.
    kind : str
        One of :data:`KINDS`.

    Returns
    -------
    np.ndarray
        (N, 2) float64 ``x, y``: x along the eye line toward the subject's left eye, y up, both
        divided by the outer inter-ocular distance; the origin is the midpoint of the two eye
        centres (each the midpoint of its eye's corners).

    Raises
    ------
    ValueError
        For an unknown ``kind`` (the message lists the allowed ones), a wrong shape, non-finite
        coordinates, or coinciding eyes.
    """
    points = _landmark_set(kind)
    xy = _checked_xy(landmarks_px, points, kind)
    right_eye = xy[list(points.eye_corners_right)].mean(axis=0)
    left_eye = xy[list(points.eye_corners_left)].mean(axis=0)
    interocular_px = np.linalg.norm(
        xy[points.eye_corners_left[1]] - xy[points.eye_corners_right[0]]
    )
    eye_line = left_eye - right_eye
    eye_distance_px = np.linalg.norm(eye_line)
    if not (interocular_px > 0 and eye_distance_px > 0):
        raise ValueError(f"{kind} landmarks: the eyes coincide, no head frame")
    x_axis = eye_line / eye_distance_px
    # Image y points down: the upward perpendicular of x = (c, s) is (s, -c).
    y_axis = np.array([x_axis[1], -x_axis[0]])
    centred = xy - (right_eye + left_eye) / 2
    return np.stack([centred @ x_axis, centred @ y_axis], axis=1) / interocular_px


def _height(frame: np.ndarray, ids: tuple[int, ...]) -> float:
    return float(frame[list(ids), 1].mean())


def _half_gap(frame: np.ndarray, right: tuple[int, ...], left: tuple[int, ...]) -> float:
    """Half the lateral distance from the right points' mean to the left points' mean."""
    return float(frame[list(left), 0].mean() - frame[list(right), 0].mean()) / 2


def _eye_channels(frame: np.ndarray, points: _LandmarkSet) -> dict[str, float]:
    """Brows, lids and cheek (module notes), in inter-ocular units."""
    eye_height = _height(frame, points.eye_reference) if points.eye_reference else 0.0
    upper_lid = _height(frame, points.upper_lids) - eye_height
    lower_lid = _height(frame, points.lower_lids) - eye_height
    inner_brow = _height(frame, points.inner_brows[0] + points.inner_brows[1])
    brow_half_gap = _half_gap(frame, *points.inner_brows)
    cheek = (
        _height(frame, points.cheeks) - eye_height
        if points.cheeks
        else lower_lid + LOWER_LID_SHARE_OF_CLOSURE * upper_lid
    )
    return {
        "inner_brow_height": inner_brow,
        "inner_brow_half_gap": brow_half_gap,
        "brow_lowering": -(inner_brow + brow_half_gap) * _DIAGONAL,
        "outer_brow_height": _height(frame, points.outer_brows),
        "upper_lid_height": upper_lid,
        "lower_lid_height": lower_lid,
        "cheek_raise": cheek,
        "eye_aperture": upper_lid - lower_lid,
    }


def _mouth_channels(frame: np.ndarray, points: _LandmarkSet) -> dict[str, float]:
    """Nose, lips and chin (module notes), in inter-ocular units."""
    upper_lip_top = _height(frame, points.upper_lip_top)
    inner_upper_lip = _height(frame, points.inner_upper_lip)
    lip_gap = inner_upper_lip - _height(frame, points.inner_lower_lip)
    chin = _height(frame, points.chin)
    corner_height = _height(frame, points.lip_corners)
    mouth_half_width = _half_gap(frame, (points.lip_corners[0],), (points.lip_corners[1],))
    # The corners as they would be with the lips closed: opening the mouth lowers them and
    # draws them in.
    closed_height = corner_height + CORNER_SHARE_OF_GAP * lip_gap
    closed_width = mouth_half_width + CORNER_DRAW_IN_PER_GAP * lip_gap
    corner_pull = closed_width * _SMILE_PULL[0] + closed_height * _SMILE_PULL[1]
    lower_lip_on_jaw = _height(frame, points.lower_lip) - JAW_LEVER * chin
    chin_raise = (
        _height(frame, points.chin_boss) - JAW_LEVER * chin
        if points.chin_boss
        else lower_lip_on_jaw - LOWER_LIP_SHARE_OF_SMILE * closed_height
    )
    return {
        "nose_base_lift": _height(frame, points.nose_base)
        - NOSE_SHARE_OF_UPPER_LIP * upper_lip_top,
        "upper_lip_to_nose": _height(frame, (points.subnasale,)) - upper_lip_top,
        "lip_corner_height": corner_height,
        "mouth_half_width": mouth_half_width,
        "lip_corner_pull": corner_pull,
        "lip_corner_stretch": closed_width * _SMILE_PULL[1] - closed_height * _SMILE_PULL[0],
        "lip_corner_to_mouth_line": corner_height
        - (inner_upper_lip - CORNER_SHARE_OF_GAP * lip_gap),
        "chin_raise": chin_raise,
        "lip_gap": lip_gap,
        "lip_parting": lip_gap + JAW_LEVER * chin,
        "chin_height": chin,
    }


def au_channels(landmarks_px: np.ndarray, kind: str) -> dict[str, float]:
    """The named geometric channels of one face (see the module notes for each one).

    Parameters
    ----------
    landmarks_px : np.ndarray
        As :func:`head_frame`: (68, k) iBUG-68 or (478, k) MediaPipe landmarks in pixels.
    kind : str
        One of :data:`KINDS`.

    Returns
    -------
    dict of str to float
        Channel name -> value in inter-ocular units (heights up from the eye line, the lids' and
        the cheek's from the iris centres for MediaPipe; lateral positions from the midline):
        every channel of :data:`AU_CHANNELS`, and the parts of the composite ones
        (``inner_brow_half_gap``, ``lip_corner_height``, ``mouth_half_width``, ``lip_gap``).
        Only changes of a channel are meaningful: the jaw-corrected ones (``chin_raise``,
        ``lip_parting``) have an arbitrary offset.

    Raises
    ------
    ValueError
        As :func:`head_frame`.
    """
    points = _landmark_set(kind)
    frame = head_frame(landmarks_px, kind)
    return _eye_channels(frame, points) | _mouth_channels(frame, points)


def au_geometric_response(
    before_px: np.ndarray, after_px: np.ndarray, kind: str
) -> dict[int, float]:
    """Per AU, the signed change of its geometric channel from one image of a face to another.

    Parameters
    ----------
    before_px, after_px : np.ndarray
        Landmarks of the same face in the source and in the edited image, as
        :func:`head_frame` takes them ((68, k) or (478, k) pixels).
    kind : str
        One of :data:`KINDS`.

    Returns
    -------
    dict of int to float
        AU number -> ``sign * (channel(after) - channel(before))`` in inter-ocular units, for
        every AU of :data:`GEOMETRY_AUS`; positive when the face moved the way the AU moves it.

    Raises
    ------
    ValueError
        As :func:`head_frame`, for either landmark set.
    """
    before = au_channels(before_px, kind)
    after = au_channels(after_px, kind)
    return {
        au: sign * (after[channel] - before[channel])
        for au, (channel, sign) in sorted(AU_CHANNELS.items())
    }
