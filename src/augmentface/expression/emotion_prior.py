"""Categorical emotions -> AU intensities (0–5), from the EMFACS prototypes.

Prototypes (Friesen & Ekman 1983, EMFACS-7; tabulated in Ekman & Rosenberg (eds.), *What the
Face Reveals*, 2nd ed., 2005, and in Matsumoto & Ekman's FACS-coded prototypes):

==========  ===============================  ==================================================
emotion     EMFACS prototype                 here
==========  ===============================  ==================================================
neutral     —                                no AU
happiness   6 + 12                           :data:`va_prior.ANCHORS` "happiness" (adds 25)
sadness     1 + 4 + 15                       va_prior anchor "sadness" (adds 17, 43)
surprise    1 + 2 + 5B + 26                  va_prior anchor "surprise" (adds 25)
fear        1 + 2 + 4 + 5 + 20 + 26          va_prior anchor "fear" (adds 25)
anger       4 + 5 + 7 + 23                   va_prior anchor "anger" (adds 10 + 25 + 26)
disgust     9 + 15 + 16                      va_prior anchor "disgust" (adds 10, 25)
contempt    R12A + R14A (unilateral)         bilateral 14 at 2.5 + weak 12 at 1.0 (see below)
==========  ===============================  ==================================================

The six basic emotions reuse the anchors of the VA prior, so one set of numbers defines each
prototype in the project. Contempt has no VA anchor. Its prototype is *unilateral* (one lip
corner tightened and raised), which the rig cannot show: every AU field is mirrored onto both
sides. We use the bilateral dimpler (AU14, the tightened corners that carry most of the
expression) at a moderate intensity and a weak bilateral lip corner puller (AU12) for the slight
raise, i.e. a tight, faint smile; it is the closest bilateral approximation, not the prototype.
"""

from __future__ import annotations

import math

from augmentface.errors import UsageError
from augmentface.expression import va_prior

#: The categories, in the order of AffectNet's first eight (and Aff-Wild2 without "other").
EMOTIONS: tuple[str, ...] = (
    "neutral", "happiness", "sadness", "surprise", "fear", "anger", "disgust", "contempt",
)  # fmt: skip

#: Dataset spellings accepted for each category (AffectNet, Aff-Wild2, FER-2013, RAF-DB).
EMOTION_ALIASES: dict[str, str] = {
    "happy": "happiness", "sad": "sadness", "surprised": "surprise", "fearful": "fear",
    "afraid": "fear", "angry": "anger", "disgusted": "disgust",
}  # fmt: skip

#: Contempt at full strength: bilateral stand-in for the unilateral R12A + R14A (module notes).
CONTEMPT_AUS: dict[int, float] = {14: 2.5, 12: 1.0}

_ANCHORS = {anchor.name: anchor for anchor in va_prior.ANCHORS}


class UnknownEmotionError(UsageError):
    """An emotion label outside :data:`EMOTIONS` (and their aliases)."""


def canonical_emotion(label: str) -> str:
    """The category a label names: case and surrounding blanks ignored, aliases resolved.

    Raises
    ------
    UnknownEmotionError
        For any other label; the message lists the allowed ones.
    """
    name = str(label).strip().lower()
    name = EMOTION_ALIASES.get(name, name)
    if name not in EMOTIONS:
        raise UnknownEmotionError(f"unknown emotion {label!r}; allowed: {', '.join(EMOTIONS)}")
    return name


def emotion_aus(emotion: str, intensity: float = 1.0, *, all_aus: bool = False) -> dict[int, float]:
    """AU intensities (0–5) of an emotion's prototype, scaled by ``intensity``.

    Parameters
    ----------
    emotion : str
        One of :data:`EMOTIONS` or an alias (``"happy"``, ``"angry"``, …).
    intensity : float
        0 (neutral face) to 1 (the full prototype); AU intensities scale linearly, except
        those that join the prototype only as it grows (``va_prior.EmotionAnchor.onsets``).
    all_aus : bool
        Keep the prototype's AUs that are at 0 at this intensity (for blending).

    Returns
    -------
    dict[int, float]
        AU number -> intensity on the FACS 0–5 scale; empty for neutral (and, without
        ``all_aus``, for intensity 0).

    Raises
    ------
    UsageError
        Unknown emotion (:class:`UnknownEmotionError`), or intensity outside [0, 1].
    """
    name = canonical_emotion(emotion)
    if not math.isfinite(intensity) or not 0.0 <= intensity <= 1.0:
        raise UsageError(f"emotion intensity must be in [0, 1], got {intensity}")
    if name == "neutral":
        return {}
    if name == "contempt":
        scaled = {au: v * intensity for au, v in CONTEMPT_AUS.items()}
        return {au: v for au, v in scaled.items() if v > 0 or all_aus}
    return _ANCHORS[name].aus_at(intensity, all_aus=all_aus)
