"""Emotion prototypes: EMFACS AUs, the VA prior's anchors reused, clear refusals."""

from __future__ import annotations

import pytest

from augmentface.errors import UsageError
from augmentface.expression import va_prior
from augmentface.expression.emotion_prior import (
    CONTEMPT_AUS,
    EMOTIONS,
    UnknownEmotionError,
    canonical_emotion,
    emotion_aus,
)

# The core EMFACS AUs of each prototype (Friesen & Ekman 1983).
EMFACS_CORE = {
    "happiness": {6, 12},
    "sadness": {1, 4, 15},
    "surprise": {1, 2, 5, 26},
    "fear": {1, 2, 4, 5, 20, 26},
    "anger": {4, 5, 7, 23},
    "disgust": {9, 15, 16},
    "contempt": {12, 14},
}


def test_prototypes_hold_the_emfacs_aus():
    assert emotion_aus("neutral") == {}
    for name, core in EMFACS_CORE.items():
        aus = emotion_aus(name)
        assert core <= set(aus), name
        assert all(0 < v <= 5 for v in aus.values())


def test_an_emotion_and_its_place_on_the_circumplex_give_one_face():
    """synth-emotion E and synth-va at E's place on the circumplex ask for the same AUs."""
    for anchor in va_prior.ANCHORS:
        if anchor.name in EMOTIONS:
            via_va = va_prior.prior_aus(anchor.valence, anchor.arousal)
            assert via_va == pytest.approx(emotion_aus(anchor.name)), anchor.name
    assert emotion_aus("contempt") == CONTEMPT_AUS
    assert CONTEMPT_AUS[14] > CONTEMPT_AUS[12]  # the tightened corner dominates


def test_intensity_scales_and_aliases():
    full = emotion_aus("sadness")
    half = emotion_aus("Sad", 0.5)
    assert half == {au: v / 2 for au, v in full.items()}
    # The lips of a smile part over the teeth only as it grows (onset 0.3 for AU25).
    assert 25 not in emotion_aus("happiness", 0.25) and 25 in emotion_aus("happiness", 0.5)
    assert emotion_aus("happiness", 0.5)[12] == emotion_aus("happiness")[12] / 2
    assert emotion_aus("anger", 0.0) == {}
    # Anger bares its teeth only at full strength; blending still sees its parted lips.
    assert 25 not in emotion_aus("anger", 0.4) and emotion_aus("anger", 0.4, all_aus=True)[25] == 0
    assert canonical_emotion("  SAD ") == "sadness" and canonical_emotion("Fear") == "fear"
    assert set(EMOTIONS) == {"neutral", "happiness", "sadness", "surprise", "fear", "anger",
                             "disgust", "contempt"}  # fmt: skip


def test_refusals():
    with pytest.raises(UnknownEmotionError, match="allowed: neutral, happiness"):
        emotion_aus("joy")
    with pytest.raises(UsageError, match=r"\[0, 1\]"):
        emotion_aus("fear", 1.5)
    with pytest.raises(UsageError, match=r"\[0, 1\]"):
        emotion_aus("fear", float("nan"))
