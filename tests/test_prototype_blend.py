"""Blending prototypes never sums antagonist AUs; the VA prior shows the nearest emotion."""

from __future__ import annotations

import numpy as np
import pytest

from augmentface.expression import va_prior
from augmentface.expression.affect_paths import frame_aus, parse_path
from augmentface.expression.prototype_blend import CROSSOVER, FEATURES, blend_prototypes


def _neighbours(valence: float, arousal: float):
    """The two anchors around a direction and the nearer one."""
    angle = np.arctan2(arousal, valence)
    ordered = sorted(va_prior.ANCHORS, key=lambda a: a.angle)
    upper = int(np.searchsorted([a.angle for a in ordered], angle)) % len(ordered)
    lo, hi = ordered[upper - 1], ordered[upper]
    nearer = min((lo, hi), key=lambda a: abs(np.angle(np.exp(1j * (a.angle - angle)))))
    return lo, hi, nearer


def _direction(aus, raised_group, lowered_group) -> int:
    return 1 if set(aus) & raised_group else (-1 if set(aus) & lowered_group else 0)


def _disc(n: int = 90):
    for radius in (0.3, 0.6, 0.9):
        for angle in np.linspace(-np.pi, np.pi, n, endpoint=False):
            yield radius * np.cos(angle), radius * np.sin(angle)


def test_no_point_of_the_disc_sums_antagonists():
    """Both groups of a feature appear only where one prototype holds both (fear: 1 + 2 + 4,
    drawn by the rig's 1+4 rule as raised brows drawn together), and every contested feature
    shows the nearer prototype's AUs only."""
    for v, a in _disc():
        aus = va_prior.prior_aus(v, a)
        lo, hi, nearer = _neighbours(v, a)
        for raised_group, lowered_group in FEATURES:
            if set(aus) & raised_group and set(aus) & lowered_group:
                assert any(
                    set(x.aus) & raised_group and set(x.aus) & lowered_group for x in (lo, hi)
                ), (v, a, aus)
            farther = hi if nearer is lo else lo
            contested = (
                _direction(nearer.aus, raised_group, lowered_group)
                * _direction(farther.aus, raised_group, lowered_group)
                == -1
            )
            if contested:  # the feature's AUs are the nearer prototype's own
                feature = set(aus) & (raised_group | lowered_group)
                assert feature <= set(nearer.aus), (v, a, nearer.name, aus)


def test_away_from_the_crossover_the_nearer_prototype_keeps_each_contested_feature():
    ordered = sorted(va_prior.ANCHORS, key=lambda a: a.angle)
    for lo, hi in zip(ordered, ordered[1:] + ordered[:1], strict=True):
        span = (hi.angle - lo.angle) % (2 * np.pi)
        for t in (0.0, 0.2, 0.5 - CROSSOVER - 0.01):
            angle = lo.angle + t * span
            aus = va_prior.prior_aus(0.95 * np.cos(angle), 0.95 * np.sin(angle))
            for raised_group, lowered_group in FEATURES:
                mine = _direction(lo.aus, raised_group, lowered_group)
                theirs = _direction(hi.aus, raised_group, lowered_group)
                if mine and theirs == -mine:  # contested: the far side's AUs are gone
                    far = raised_group if theirs == 1 else lowered_group
                    assert not (set(aus) - set(lo.aus)) & far, (lo.name, hi.name, t, aus)
                    assert set(aus) & (raised_group | lowered_group), (lo.name, t, aus)


def test_fear_and_anger_do_not_cancel_into_flat_brows():
    between = va_prior.prior_aus(-0.6, 0.7)  # nearer fear (-0.55, 0.8) than anger
    fear = next(a for a in va_prior.ANCHORS if a.name == "fear")
    assert between[1] > 1.5 and between[2] > 1.5  # fear's raised brows
    assert between[4] < fear.aus[4]  # its own 1+4 gathering; anger adds no lowering
    anger_side = va_prior.prior_aus(-0.68, 0.57)
    assert 1 not in anger_side and 2 not in anger_side and anger_side[4] > 3


def test_the_prior_is_continuous_around_the_circle():
    """A smooth path never jumps: the largest change between neighbouring directions shrinks
    in proportion to their spacing (a jump would not)."""

    def largest_step(n: int) -> float:
        vectors = []
        for angle in np.linspace(-np.pi, np.pi, n, endpoint=False):
            aus = va_prior.prior_aus(0.9 * np.cos(angle), 0.9 * np.sin(angle))
            vectors.append([aus.get(au, 0.0) for au in range(1, 44)])
        return float(np.abs(np.diff(np.array(vectors), axis=0)).max())

    coarse, fine = largest_step(2000), largest_step(8000)
    assert fine < 0.35 * coarse and fine < 0.1


def test_blend_rule_on_two_parts():
    brows_up, brows_down = {1: 4.0, 2: 4.0}, {4: 4.0}
    assert blend_prototypes([(brows_up, 0.8), (brows_down, 0.2)]) == {1: 4.0, 2: 4.0}
    assert blend_prototypes([(brows_up, 0.5), (brows_down, 0.5)]) == {}
    # compatible AUs add; a part that leaves the feature alone does not compete
    assert blend_prototypes([({5: 2.0}, 0.5), ({5: 1.0, 7: 3.0}, 0.5)]) == {5: 3.0, 7: 3.0}
    assert blend_prototypes([(brows_up, 0.1), ({12: 3.0}, 0.9)]) == {1: 4.0, 2: 4.0, 12: 3.0}
    with pytest.raises(ValueError, match="weights"):
        blend_prototypes([(brows_up, -1.0)])


def test_emotion_paths_use_the_same_rule():
    path = parse_path("happiness -> sadness")
    frame = frame_aus(path, np.array([0.7 if d == "happiness" else 0.3 for d in path.dims]))
    assert 12 in frame and 15 not in frame
