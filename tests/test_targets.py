"""Target parsing, the VA prior and seeded sampling."""

from __future__ import annotations

import numpy as np
import pytest

from augmentface.errors import UsageError
from augmentface.expression import va_prior
from augmentface.expression.targets import (
    RigSource,
    au_target,
    parse_au_items,
    read_targets_csv,
    sample_rng,
    va_grid,
    va_target,
)


def test_parse_au_items_forms():
    assert parse_au_items(["12=3", "AU6=2", "AU1=1,AU2=1.5"]) == {12: 3, 6: 2, 1: 1, 2: 1.5}
    with pytest.raises(UsageError, match="allowed"):
        parse_au_items(["AU3=1"])
    with pytest.raises(UsageError, match="0–5"):
        parse_au_items(["AU12=5.5"])
    with pytest.raises(UsageError, match="AU12=3"):
        parse_au_items(["twelve"])
    # an AU given twice, or under its alias, is refused instead of keeping one value
    with pytest.raises(UsageError, match=r"AU12 is given twice \(AU12=3 and AU12=4\)"):
        parse_au_items(["AU12=3,AU12=4"])
    with pytest.raises(UsageError, match=r"AU43 is given twice \(45=3 and 43=1\)"):
        parse_au_items(["45=3", "43=1"])
    assert parse_au_items(["45=3"]) == {45: 3}


def test_va_classes_and_prior_directions():
    assert va_prior.va_class(-1, -1) == 0 and va_prior.va_class(1, 1) == 99
    assert va_prior.va_class(0.4, 0.2) == 10 * 6 + 7
    assert va_prior.va_class_center(va_prior.va_class(0.4, 0.2)) == (0.5, 0.3)
    assert va_prior.prior_aus(0, 0) == {}
    happy = va_prior.prior_aus(0.8, 0.4)
    anchor = next(a for a in va_prior.ANCHORS if a.name == "happiness")
    assert happy == pytest.approx(anchor.aus_at(1.0)) and {6, 12} <= set(happy)
    sad = va_prior.prior_aus(-0.7, -0.4)
    assert {1, 4, 15} <= set(sad) and 12 not in sad
    surprise = va_prior.prior_aus(0.15, 0.85)
    assert surprise[26] > 3 and surprise[1] > 3
    # intensity grows with distance from the centre
    assert va_prior.prior_aus(0.4, 0.2)[12] < happy[12]
    with pytest.raises(UsageError, match="valence"):
        va_prior.prior_aus(1.2, 0)


def test_targets_labels_and_grid(tmp_path):
    t = va_target(0.43, 0.21, label="class-median")
    assert (t.label_valence, t.label_arousal) == (0.5, 0.3)
    assert va_target(0.43, 0.21).label_valence == 0.43
    assert len(va_grid()) == 100 and len({g.target_id for g in va_grid()}) == 100
    assert au_target({12: 3, 6: 2}).target_id == "AU6=2_AU12=3"
    csv = tmp_path / "t.csv"
    csv.write_text("AU12,AU6\n3,2\n0,4\n")
    assert [x.target_id for x in read_targets_csv(csv)] == ["AU6=2_AU12=3", "AU6=4"]
    csv.write_text("valence,arousal\n0.1,0.2\n")
    assert read_targets_csv(csv)[0].kind == "va"
    csv.write_text("foo\n1\n")
    with pytest.raises(UsageError, match="valence,arousal"):
        read_targets_csv(csv)


def test_rig_source_sampling_is_seeded_and_bounded(model):
    source = RigSource(model.rig)
    target = au_target({12: 4.9, 6: 2})
    a0, off0 = source.realize(target, 0, sample_rng(0, "x", 0))
    assert a0[model.rig.au_numbers.index(12)] == 4.9
    np.testing.assert_allclose(off0, model.rig.offsets(a0))
    a1, _ = source.realize(target, 1, sample_rng(0, "x", 1))
    a1b, _ = source.realize(target, 1, sample_rng(0, "x", 1))
    np.testing.assert_array_equal(a1, a1b)
    assert not np.array_equal(a0, a1) and a1.max() <= 5 and (a1[a0 == 0] == 0).all()
