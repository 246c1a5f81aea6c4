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

Channels and the AUs they measure. Each follows an appearance change that the FACS Manual
(Ekman, Friesen & Hager, 2002) gives for the AU; *shared* marks a channel that another AU moves
too, by anatomy or by construction.

``inner_brow_height`` — AU1 (frontalis, pars medialis)
    Mean height of the inner ends of the brows: AU1 raises the inner corners of the brows.
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
    AU1 leaves alone. AU1 alone reads negative too. Shared: AU9 lowers the inner brows a little.
``upper_lid_height`` — AU5 (levator palpebrae superioris)
    Mean height of the upper lid's middle above the eye: above the eye line for iBUG-68, above
    the iris centres for MediaPipe. AU5 raises the upper lid and bares sclera above the iris.
    The iris is the steadier reference: the render holds the eyeballs still under the lids,
    whereas the eye corners, and with them the eye line, move a little with every lid AU.
``lower_lid_height`` — AU6 (orbicularis oculi, pars orbitalis) and AU7 (pars palpebralis)
    Mean height of the lower lid's middle, from the same reference. AU6 pushes the skin below
    the eye up and narrows the eye from below; AU7 raises and straightens the lower lid.
    Shared by AU6 and AU7: the cheek, which only AU6 lifts, has no iBUG point, and MediaPipe's
    cheek vertices follow a smile (AU12) more than AU6.
``eye_aperture`` — AU43 (eyes closed), sign −1
    Upper minus lower lid height: with AU43 the upper lid drops until the eye is closed.
    Shared: AU5 widens the aperture (the opposite sign); AU6 and AU7 narrow it from below.
``nose_base_height`` — AU9 (levator labii superioris alaeque nasi)
    Mean height of the base of the nose (iBUG 31–35: the nostril wings' lower ends and the
    subnasale). AU9 pulls the nose wings up; the nose shortens toward the eyes. Its other
    hallmark, wrinkles along the nose, is texture, not geometry.
``upper_lip_to_nose`` — AU10 (levator labii superioris), sign −1
    Height of the subnasale above the top of the upper lip: AU10 raises the upper lip, its
    centre most, so the philtrum shortens. AU9 lifts the nose base with the lip and leaves
    this distance nearly unchanged.
``lip_corner_height`` — AU12 (zygomaticus major); AU15 (depressor anguli oris), sign −1
    Mean height of the two lip corners: AU12 pulls the corners up and out obliquely, AU15
    pulls them down. Shared by AU12 and AU15, with opposite signs.
``lip_corner_stretch`` — AU20 (risorius, platysma)
    The corners' position along the outward-and-down diagonal,
    ``(mouth_half_width - lip_corner_height) / sqrt(2)``, where ``mouth_half_width`` is half
    the distance between the corners. AU20 pulls the corners sideways and elongates and
    flattens the mouth. Mouth width alone would read a smile as much as AU20 (AU12 pulls the
    corners out about as far as up); the diagonal is perpendicular to that oblique pull, so a
    smile reads about 0 on it. Shared: AU15's lowering of the corners reads positive, and so
    does a jaw drop, which lowers the corners with the lower lip.
``lower_lip_height`` — AU17 (mentalis)
    Mean height of the lower lip's outer edge: AU17 pushes the chin boss and the lower lip up.
    iBUG has no point on the chin boss, and MediaPipe places its chin-boss vertices by the
    lower lip, so both sets read AU17 off the lip. Shared: lips parted by AU25 or by a jaw
    drop lower it, and the rig's smile lifts the whole lower lip with the corners.
``lip_gap`` — AU25 (lips part)
    Height of the inner upper lip above the inner lower lip: AU25 parts the lips. Shared with
    AU26: a jaw drop that parts the lips is coded 25+26, and the rig's AU26 carries the lower
    lip down with the jaw.
``chin_height`` — AU26 (jaw drop), sign −1
    Mean height of the chin's lowest points (iBUG 7–9): AU26 lowers the mandible. No other AU
    moves the chin outline, while the nose, the other end of a chin-to-nose distance, rises
    with AU9.

Not measured: AU14, AU16, AU23, AU24 (sparse landmarks do not separate them from the lip
channels above). Where MediaPipe has points that iBUG lacks it uses them (the lower edge of the
inner and outer brows, the lids' middle vertices, the iris centres); every other point is the
mesh vertex of :data:`augmentface.face.topology.IBUG68` for the same iBUG point, so the two
sets measure the same anatomy.

How the channels respond on real photos, per AU and landmark set (Pearson r of requested
intensity with the response, and the mean response per single-AU target):
``pytest tests/test_au_geometry.py -s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "AU_CHANNELS",
    "GEOMETRY_AUS",
    "KINDS",
    "au_channels",
    "au_geometric_response",
    "head_frame",
]

# Either component of a unit vector at 45 degrees: projects a point onto a diagonal.
_DIAGONAL = 1.0 / np.sqrt(2.0)


@dataclass(frozen=True)
class _LandmarkSet:
    """Indices of one landmark set's points by feature. Pairs are (subject's right, left)."""

    n_points: int
    eye_corners_right: tuple[int, int]  # outer, inner
    eye_corners_left: tuple[int, int]  # inner, outer
    eye_reference: tuple[int, ...]  # lids are measured from these; () = the eye line
    inner_brows: tuple[tuple[int, ...], tuple[int, ...]]
    outer_brows: tuple[int, ...]
    upper_lids: tuple[int, ...]
    lower_lids: tuple[int, ...]
    nose_base: tuple[int, ...]
    subnasale: int
    upper_lip_top: tuple[int, ...]
    lip_corners: tuple[int, int]
    lower_lip: tuple[int, ...]
    inner_upper_lip: tuple[int, ...]
    inner_lower_lip: tuple[int, ...]
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
    nose_base=(31, 32, 33, 34, 35),
    subnasale=33,
    upper_lip_top=(50, 51, 52),
    lip_corners=(48, 54),
    lower_lip=(56, 57, 58),
    inner_upper_lip=(61, 62, 63),
    inner_lower_lip=(65, 66, 67),
    chin=(7, 8, 9),
)

# The iBUG points' mesh vertices (topology.IBUG68), plus 55/285 and 46/53/283/276 (the brows'
# lower edge), 159/386 and 145/374 (mid-lid) and the iris centres 468/473.
_MEDIAPIPE = _LandmarkSet(
    n_points=478,
    eye_corners_right=(33, 133),
    eye_corners_left=(362, 263),
    eye_reference=(468, 473),
    inner_brows=((107, 55), (336, 285)),
    outer_brows=(70, 46, 63, 53, 293, 283, 300, 276),
    upper_lids=(160, 159, 158, 385, 386, 387),
    lower_lids=(153, 145, 144, 373, 374, 380),
    nose_base=(75, 97, 2, 326, 305),
    subnasale=2,
    upper_lip_top=(37, 0, 267),
    lip_corners=(61, 291),
    lower_lip=(314, 17, 84),
    inner_upper_lip=(82, 13, 312),
    inner_lower_lip=(317, 14, 87),
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
    6: ("lower_lid_height", 1),
    7: ("lower_lid_height", 1),
    9: ("nose_base_height", 1),
    10: ("upper_lip_to_nose", -1),
    12: ("lip_corner_height", 1),
    15: ("lip_corner_height", -1),
    17: ("lower_lip_height", 1),
    20: ("lip_corner_stretch", 1),
    25: ("lip_gap", 1),
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
        Channel name -> value in inter-ocular units (heights up from the eye line, the lids'
        from the iris centres for MediaPipe; lateral positions from the midline): every
        channel of :data:`AU_CHANNELS`, and the parts of the composite ones
        (``inner_brow_half_gap``, ``mouth_half_width``).

    Raises
    ------
    ValueError
        As :func:`head_frame`.
    """
    points = _landmark_set(kind)
    frame = head_frame(landmarks_px, kind)
    eye_height = _height(frame, points.eye_reference) if points.eye_reference else 0.0
    upper_lid = _height(frame, points.upper_lids) - eye_height
    lower_lid = _height(frame, points.lower_lids) - eye_height
    inner_brow = _height(frame, points.inner_brows[0] + points.inner_brows[1])
    brow_half_gap = _half_gap(frame, *points.inner_brows)
    corner_height = _height(frame, points.lip_corners)
    mouth_half_width = _half_gap(frame, (points.lip_corners[0],), (points.lip_corners[1],))
    return {
        "inner_brow_height": inner_brow,
        "inner_brow_half_gap": brow_half_gap,
        "brow_lowering": -(inner_brow + brow_half_gap) * _DIAGONAL,
        "outer_brow_height": _height(frame, points.outer_brows),
        "upper_lid_height": upper_lid,
        "lower_lid_height": lower_lid,
        "eye_aperture": upper_lid - lower_lid,
        "nose_base_height": _height(frame, points.nose_base),
        "upper_lip_to_nose": _height(frame, (points.subnasale,))
        - _height(frame, points.upper_lip_top),
        "lip_corner_height": corner_height,
        "mouth_half_width": mouth_half_width,
        "lip_corner_stretch": (mouth_half_width - corner_height) * _DIAGONAL,
        "lower_lip_height": _height(frame, points.lower_lip),
        "lip_gap": _height(frame, points.inner_upper_lip) - _height(frame, points.inner_lower_lip),
        "chin_height": _height(frame, points.chin),
    }


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
