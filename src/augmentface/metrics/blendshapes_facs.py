"""Read FACS Action Units off MediaPipe's blendshape scores, to measure expression response.

MediaPipe's face landmarker scores 52 blendshape categories per face: ``"_neutral"`` plus the 51
blendshapes of Apple's ARKit face tracking, under ARKit's names. No blendshape is an Action Unit,
but Apple defines each one by the movement it describes, in terms close to FACS's own, so most
AUs have one blendshape (or a left/right pair) that responds to them. :data:`AU_BLENDSHAPES`
writes that correspondence down; the weights of one AU have absolute values summing to 1, so a
score is a weighted mean of blendshape scores (in [0, 1] when all weights are positive).

Sources: the blendshape definitions quoted below are Apple's, from the ARKit documentation of
``ARFaceAnchor.BlendShapeLocation``
(https://developer.apple.com/documentation/arkit/arfaceanchor/blendshapelocation); the AUs follow
Ekman, Friesen & Hager, *Facial Action Coding System: The Manual* (2002). The correspondence is
this project's reading of those two texts, not a published or validated mapping.

The debatable rows:

AU6 (cheek raiser)
    ``cheekSquint*``, "upward movement of the cheek around and below the eye" (1/4 each side),
    and ``eyeSquint*``, "contraction of the face around the eye" (1/4 each side): AU6 is the
    orbital part of orbicularis oculi, the muscle around the eye, so both describe it. MediaPipe's
    blendshape model never scores ``cheekSquint`` (measured: 0.000 on 16 near-neutral faces with
    the rig's AU6 at three times intensity 4), so ``eyeSquint`` carries what can be measured; it
    also responds to AU7, the lid tightener (the palpebral part of the same muscle).
AU9 (nose wrinkler)
    ``noseSneer*``, "raising of the side of the nose around the nostril". MediaPipe's model does
    not score it either (0.000 as for AU6) and no other blendshape follows AU9, so AU9's response
    reads 0 on any image: it cannot be measured this way.
AU4 (brow lowerer)
    ``browDown*``, although Apple describes it as "downward movement of the outer portion" of the
    brow while AU4 lowers the inner brow most: it is ARKit's only brow-lowering blendshape.
AU17 (chin raiser)
    ``mouthShrugLower``, "outward movement of the lower lip": mentalis pushes the chin boss and
    lower lip up and out (the pout). ``mouthShrugUpper`` is left out; it follows only when the
    pushed lower lip carries the upper one.
AU23 (lip tightener)
    ARKit has no lip tightener. AU23 narrows the mouth (corners drawn in) and tightens and thins
    the red of the lips. The narrowing is ``mouthPucker``, "contraction and compression of both
    closed lips" (weight 1/2); the tightening is the compression that ``mouthPress*`` also
    measures for AU24 (1/4 each side: both AUs are orbicularis oris, and they often occur
    together). ``mouthFunnel``, "contraction of both lips into an open shape", is left out: that
    is AU22 (lip funneler), lips apart and everted, the opposite of AU23's closed, thinned lips;
    ``mouthRoll*`` (lips turned inward) is AU28, lip suck.
AU25 (lips part)
    ``jawOpen`` (+1/2) minus ``mouthClose`` (-1/2). In ARKit's rig the jaw carries the lips apart
    and ``mouthClose``, "closure of the lips independent of jaw position", brings them back
    together, so the lips' separation is ``jawOpen`` less ``mouthClose``: a dropped jaw with
    sealed lips (AU26 without AU25) scores about 0, not as high as an open mouth. The absolute
    score can therefore be negative (down to -1/2). Limitation: lips parted with the jaw still
    show mostly as ``mouthUpperUp*`` and ``mouthLowerDown*``, which belong to AU10 and AU16 and
    are not counted here, so AU25 alone reads weakly.
AU26 (jaw drop)
    ``jawOpen`` alone: "an opening of the lower jaw", whether or not the lips part.
AU43, AU45 (eyes closed, blink)
    ``eyeBlink*``, "closure of the eyelids". A still image cannot tell a blink from closed eyes,
    and the rig gives both the same shape, so they share the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import NamedTuple

import numpy as np

__all__ = [
    "AU_BLENDSHAPES",
    "ResponseSummary",
    "au_response",
    "au_scores",
    "response_summary",
]


def _pair(stem: str, weight: float = 0.5) -> tuple[tuple[str, float], ...]:
    """The subject's left and right blendshapes of ``stem``, equally weighted."""
    return ((f"{stem}Left", weight), (f"{stem}Right", weight))


#: AU number -> ``(blendshape name, weight)`` pairs; the absolute weights of an AU sum to 1.
#: Every AU the rig synthesizes has a row (45 shares 43's). Apple's definition follows each row.
AU_BLENDSHAPES: dict[int, tuple[tuple[str, float], ...]] = {
    # "upward movement of the inner portion of both eyebrows"
    1: (("browInnerUp", 1.0),),
    # "upward movement of the outer portion of the [left/right] eyebrow"
    2: _pair("browOuterUp"),
    # "downward movement of the outer portion of the eyebrow" (see AU4 above)
    4: _pair("browDown"),
    # "a widening of the eyelids around the eye"
    5: _pair("eyeWide"),
    # cheek "upward movement … around and below the eye" + eye "contraction of the face around
    # the eye" (see AU6 above)
    6: (*_pair("cheekSquint", 0.25), *_pair("eyeSquint", 0.25)),
    # "contraction of the face around the eye"
    7: _pair("eyeSquint"),
    # "raising of the side of the nose around the nostril"
    9: _pair("noseSneer"),
    # "upward movement of the upper lip"
    10: _pair("mouthUpperUp"),
    # "upward movement of the corner of the mouth"
    12: _pair("mouthSmile"),
    # "backward movement of the corner of the mouth"
    14: _pair("mouthDimple"),
    # "downward movement of the corner of the mouth"
    15: _pair("mouthFrown"),
    # "downward movement of the lower lip"
    16: _pair("mouthLowerDown"),
    # "outward movement of the lower lip" (see AU17 above)
    17: (("mouthShrugLower", 1.0),),
    # "leftward/rightward movement of the corner of the mouth", i.e. a lateral pull
    20: _pair("mouthStretch"),
    # pucker "contraction and compression of both closed lips" + press (see AU23 above)
    23: (("mouthPucker", 0.5), *_pair("mouthPress", 0.25)),
    # "upward compression of the lower lip"
    24: _pair("mouthPress"),
    # lips' separation: jaw opening less lip closure (see AU25 above)
    25: (("jawOpen", 0.5), ("mouthClose", -0.5)),
    # "an opening of the lower jaw"
    26: (("jawOpen", 1.0),),
    # "closure of the eyelids over the eye"
    43: _pair("eyeBlink"),
    45: _pair("eyeBlink"),
}


@cache
def _weight_matrix(names: tuple[str, ...]) -> tuple[tuple[int, ...], np.ndarray]:
    """AU numbers and the (K, len(names)) weights that turn blendshape scores into AU scores.

    Cached per name order: a dataset's detections all share one order.
    """
    index = {name: i for i, name in enumerate(names)}
    needed = {name for row in AU_BLENDSHAPES.values() for name, _ in row}
    missing = sorted(needed - index.keys())
    if missing:
        raise ValueError(f"blendshape names lack {', '.join(missing)}")
    aus = tuple(AU_BLENDSHAPES)
    weights = np.zeros((len(aus), len(names)))
    for k, au in enumerate(aus):
        for name, weight in AU_BLENDSHAPES[au]:
            weights[k, index[name]] = weight
    weights.setflags(write=False)  # shared by every caller through the cache
    return aus, weights


def _checked(scores: np.ndarray, names: Sequence[str], what: str) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != (len(names),):
        raise ValueError(f"{what} must have shape ({len(names)},) like names, got {values.shape}")
    return values


def au_scores(scores: np.ndarray, names: Sequence[str]) -> dict[int, float]:
    """AU scores of one face: the weighted blendshape scores of :data:`AU_BLENDSHAPES`.

    Parameters
    ----------
    scores : np.ndarray
        (52,) blendshape scores in [0, 1] (``FaceDetection.blendshape_scores``).
    names : sequence of str
        The 52 names in the order of ``scores`` (``FaceDetection.blendshape_names``).

    Returns
    -------
    dict of int to float
        AU number -> score, unitless, in [0, 1] (AU25's in [-0.5, 1], see the module notes). Not
        an intensity on the FACS 0–5 scale: blendshape scores are not calibrated to it.

    Raises
    ------
    ValueError
        When a blendshape of the table is missing from ``names`` (the message names it), or
        ``scores`` does not match ``names`` in length.
    """
    aus, weights = _weight_matrix(tuple(names))
    return dict(zip(aus, (weights @ _checked(scores, names, "scores")).tolist(), strict=True))


def au_response(
    before_scores: np.ndarray, after_scores: np.ndarray, names: Sequence[str]
) -> dict[int, float]:
    """How much each AU's blendshapes moved from one image of a face to another.

    Parameters
    ----------
    before_scores, after_scores : np.ndarray
        (52,) blendshape scores of the source photo and of the synthesized image.
    names : sequence of str
        The 52 names, in the order of both score vectors.

    Returns
    -------
    dict of int to float
        AU number -> weighted mean change of its blendshapes' scores, unitless, in [-1, 1];
        positive when the face moved the way the AU moves it.

    Raises
    ------
    ValueError
        As :func:`au_scores`.
    """
    aus, weights = _weight_matrix(tuple(names))
    change = _checked(after_scores, names, "after_scores") - _checked(
        before_scores, names, "before_scores"
    )
    return dict(zip(aus, (weights @ change).tolist(), strict=True))


class ResponseSummary(NamedTuple):
    """How one AU's measured response follows the requested intensity over N images.

    Attributes
    ----------
    pearson_r : float
        Pearson correlation of response with requested intensity, in [-1, 1]; NaN when it is
        undefined (see ``reason``).
    sign : float
        +1, -1 or 0: the sign of the intensity-weighted mean response
        ``Σ requested·response / Σ requested``, i.e. whether the face moved the requested way
        where the AU was asked for; NaN when nothing was requested.
    reason : str
        Why a field is NaN; empty when both are defined.
    """

    pearson_r: float
    sign: float
    reason: str


def response_summary(requested: np.ndarray, response: np.ndarray) -> ResponseSummary:
    """Correlation and direction of one AU's response over a set of synthesized images.

    Parameters
    ----------
    requested : np.ndarray
        (N,) requested intensities of the AU, on the FACS 0–5 scale (>= 0).
    response : np.ndarray
        (N,) measured responses, e.g. ``au_response(...)[au]`` of each image.

    Returns
    -------
    ResponseSummary
        ``(pearson_r, sign, reason)``. Pairs with a non-finite value (a face not found again)
        are left out. Undefined statistics are NaN with the reason given, never an exception:
        fewer than two pairs or a constant ``requested`` or ``response`` leave ``pearson_r``
        undefined; a zero total request leaves ``sign`` undefined.

    Raises
    ------
    ValueError
        When the shapes differ or are not 1-D, or a requested intensity is negative.
    """
    x = np.asarray(requested, dtype=np.float64)
    y = np.asarray(response, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"requested and response must be (N,) alike, got {x.shape}, {y.shape}")
    if (x < 0).any():
        raise ValueError("requested intensities must be >= 0 (FACS 0–5 scale)")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    reasons = []
    if x.size < 2:
        reasons.append(f"pearson_r: {x.size} finite pair(s), need 2")
        r = float("nan")
    elif np.ptp(x) == 0 or np.ptp(y) == 0:
        reasons.append(f"pearson_r: {'requested' if np.ptp(x) == 0 else 'response'} is constant")
        r = float("nan")
    else:
        dx, dy = x - x.mean(), y - y.mean()
        # Clipped: rounding can push a perfect correlation a hair past 1.
        r = float(np.clip(dx @ dy / np.sqrt((dx @ dx) * (dy @ dy)), -1.0, 1.0))
    total = x.sum()
    if total > 0:
        sign = float(np.sign(x @ y / total))
    else:
        reasons.append("sign: no intensity requested")
        sign = float("nan")
    return ResponseSummary(r, sign, "; ".join(reasons))
