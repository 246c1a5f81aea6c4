"""The source residual and the labels it contradicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from augmentface.expression.source_residual import (
    RESIDUAL_LIMIT,
    SURVIVING_AUS,
    label_conflict,
    shown_intensities,
    source_residual,
)
from augmentface.render.detail_maps import BUILTIN_AUS

AUS = (1, 2, 4, 6, 12, 15, 25, 26)


def _vector(values: dict[int, float]) -> np.ndarray:
    return np.array([values.get(au, 0.0) for au in AUS])


def test_residual_is_what_the_source_shows_beyond_identity_and_the_target():
    shown = shown_intensities(_vector({12: 4.5, 6: 1.0}), _vector({12: 0.5, 6: 2.9}))
    np.testing.assert_allclose(shown, _vector({12: 3.5}))  # beyond two identity noises
    beyond = shown_intensities(_vector({6: 12.9}), _vector({6: 2.8}))  # no more than E
    np.testing.assert_allclose(beyond, _vector({6: 5.0}))
    np.testing.assert_allclose(
        source_residual(shown, _vector({12: 2.0}), AUS), _vector({12: 1.5})
    )
    np.testing.assert_allclose(source_residual(shown, _vector({12: 5.0}), AUS), 0.0)
    with pytest.raises(ValueError, match="must match"):
        source_residual(shown, np.zeros(3), AUS)


def test_only_folds_and_closed_eyes_survive():
    """The warp replaces what is geometry alone: a parted mouth closes over its teeth."""
    laugh = _vector({12: 4.0, 25: 4.0, 26: 3.0})
    np.testing.assert_allclose(source_residual(laugh, _vector({}), AUS), _vector({12: 4.0}))
    stretch = np.array([3.0, 2.5])  # AU20 and AU43 shown
    np.testing.assert_allclose(source_residual(stretch, np.zeros(2), (20, 43)), [0.0, 2.5])


def test_a_surviving_smile_contradicts_negative_labels_only():
    smile = _vector({12: 3.0})
    for kwargs in ({"emotion": "sadness"}, {"emotion": "anger"}, {"valence": -0.6}):
        reason = label_conflict(smile, _vector({4: 4.0}), AUS, **kwargs)
        assert reason is not None and "AU12 3.0" in reason
    assert label_conflict(smile, _vector({1: 4.0, 2: 4.0}), AUS, emotion="surprise") is None
    assert label_conflict(smile, _vector({6: 4.0}), AUS, valence=0.8) is None
    assert label_conflict(smile, _vector({}), AUS, valence=math.nan) is None
    weak = _vector({12: RESIDUAL_LIMIT - 0.1})
    assert label_conflict(weak, _vector({}), AUS, emotion="sadness") is None


def test_an_antagonist_of_the_target_contradicts_any_label():
    raised_brows = _vector({1: 2.5, 2: 2.5})
    reason = label_conflict(raised_brows, _vector({4: 4.0}), AUS)
    assert reason is not None and "AU1 survives at 2.5 against the target's AU4" in reason
    # A target that asks for both sides (fear's 1+2+4) is not contradicted by either.
    assert label_conflict(raised_brows, _vector({1: 3.0, 2: 3.0, 4: 3.0}), AUS) is None
    assert "AU12" in label_conflict(_vector({12: 2.0}), _vector({15: 3.0}), AUS)
    lips = (23, 25)  # pressed vs parted
    assert "AU25" in label_conflict(np.array([0.0, 3.0]), np.array([3.0, 0.0]), lips)


def test_an_au_label_is_contradicted_by_any_strong_survivor():
    """AU labels (DISFA's) name every AU: a smile left under AU12 = 0 makes the label wrong."""
    smile = _vector({12: 3.0})
    reason = label_conflict(smile, _vector({43: 5.0}), AUS, au_labelled=True)
    assert reason is not None and "AU12 survives at 3.0 beyond its label 0" in reason
    assert label_conflict(smile, _vector({43: 5.0}), AUS) is None  # a VA label says nothing
    assert label_conflict(_vector({12: 1.0}), _vector({}), AUS, au_labelled=True) is None


def test_the_surviving_aus_are_those_with_folds():
    """The AUs whose texture survives are those the detail layer draws folds for."""
    assert set(BUILTIN_AUS) | {43} == SURVIVING_AUS
