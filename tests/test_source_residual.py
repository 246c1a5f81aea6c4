"""The source residual and the labels it contradicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from augmentface.expression.source_residual import (
    RESIDUAL_LIMIT,
    label_conflict,
    shown_intensities,
    source_residual,
)

AUS = (1, 2, 4, 6, 12, 15, 25, 26)


def _vector(values: dict[int, float]) -> np.ndarray:
    return np.array([values.get(au, 0.0) for au in AUS])


def test_residual_is_what_the_source_shows_beyond_identity_and_the_target():
    shown = shown_intensities(_vector({12: 4.5, 6: 1.0}), _vector({12: 1.0, 6: 2.9}))
    np.testing.assert_allclose(shown, _vector({12: 3.5}))
    np.testing.assert_allclose(
        source_residual(shown, _vector({12: 2.0}), AUS), _vector({12: 1.5})
    )
    np.testing.assert_allclose(source_residual(shown, _vector({12: 5.0}), AUS), 0.0)
    with pytest.raises(ValueError, match="must match"):
        source_residual(shown, np.zeros(3), AUS)


def test_nothing_of_a_parted_mouth_survives():
    """The render closes the lips over the teeth or paints the interior anew."""
    laugh = _vector({12: 4.0, 25: 4.0, 26: 3.0})
    np.testing.assert_allclose(source_residual(laugh, _vector({}), AUS), _vector({12: 4.0}))


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
