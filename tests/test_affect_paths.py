"""Affect paths: parsing, constant-speed eased sampling, and continuity across VA classes."""

from __future__ import annotations

import numpy as np
import pytest

from augmentface.errors import UsageError
from augmentface.expression import va_prior
from augmentface.expression.affect_paths import (
    PathConfig,
    PathError,
    eased_progress,
    frame_aus,
    interpolate_path,
    parse_path,
    path_offsets,
    path_targets,
)
from augmentface.expression.class_models import ClassModelConfig
from augmentface.expression.class_models_build import build_va_model
from augmentface.expression.emotion_prior import emotion_aus
from augmentface.expression.splocs import SplocsConfig


def test_parse_the_three_kinds():
    va = parse_path("0,0 -> 0.6,0.4 → -0.3, 0.7")
    assert va.kind == "va" and va.dims == ("valence", "arousal")
    assert va.waypoints.tolist() == [[0, 0], [0.6, 0.4], [-0.3, 0.7]]
    au = parse_path("AU12=0 -> AU12=4,AU6=2")
    assert au.kind == "au" and au.dims == ("AU6", "AU12")
    assert au.waypoints.tolist() == [[0, 0], [2, 4]]
    emo = parse_path("neutral -> Happy:0.8 -> surprise")
    assert emo.kind == "emotion" and emo.waypoints.shape == (3, 7)
    assert emo.waypoints[0].sum() == 0
    assert emo.waypoints[1][emo.dims.index("happiness")] == 0.8
    assert emo.waypoints[2][emo.dims.index("surprise")] == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "waypoints joined by ->"),
        ("0,0 -> ", "waypoints joined by ->"),
        ("0,0 -> 0.5;0.2", "valence,arousal"),
        ("0,0 -> 1.4,0", "valence must be in"),
        ("0,0 -> AU12=3", "one kind per path"),
        ("AU12=0 -> AU3=2", "allowed"),
        ("AU12=0 -> AU12=7", "0–5"),
        ("neutral -> joy", "allowed: neutral"),
        ("neutral -> anger:1.5", r"\[0, 1\]"),
        ("neutral -> anger:x", "emotion:intensity"),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(UsageError, match=message):
        parse_path(text)


def test_ease_is_c1_and_ends_at_rest():
    p = eased_progress(1001, 0.2)
    assert p[0] == 0 and p[-1] == pytest.approx(1.0) and np.all(np.diff(p) >= 0)
    speed = np.diff(p)
    assert speed[0] < 0.01 * speed.max() and speed[-1] < 0.01 * speed.max()
    assert np.abs(np.diff(speed)).max() < 1e-5  # no jump in speed (C1)
    middle = speed[300:700]
    assert np.ptp(middle) < 1e-9  # constant speed between the ramps
    assert np.allclose(eased_progress(5, 0.0), np.linspace(0, 1, 5))
    with pytest.raises(PathError, match="ease_fraction"):
        PathConfig(10, ease_fraction=0.7)
    with pytest.raises(PathError, match="2 frames"):
        PathConfig(1)


def test_interpolation_count_endpoints_and_no_jumps():
    path = parse_path("0,0 -> 0.6,0.4 -> -0.3,0.7 -> -0.3,0.7 -> 0.9,-0.9")
    frames = interpolate_path(path, PathConfig(120))
    assert frames.shape == (120, 2)
    assert np.array_equal(frames[0], path.waypoints[0])
    assert np.array_equal(frames[-1], path.waypoints[-1])
    steps = np.linalg.norm(np.diff(frames, axis=0), axis=1)
    total = np.linalg.norm(np.diff(path.waypoints, axis=0), axis=1).sum()
    # Peak speed of the trapezoid is 1 / (1 - ease) = 1.25 times the mean speed.
    assert steps.max() <= 1.25 * total / 119 + 1e-9
    assert steps.sum() <= total + 1e-9  # along the polyline, never across a corner's chord…
    assert steps.sum() > 0.97 * total  # …except within one frame of a corner
    # Every frame lies on the polyline: on one of its segments.
    for f in frames:
        on = [
            np.isclose(np.linalg.norm(f - p) + np.linalg.norm(q - f), np.linalg.norm(q - p))
            for p, q in zip(path.waypoints[:-1], path.waypoints[1:], strict=True)
        ]
        assert any(on)
    still = interpolate_path(parse_path("0.2,0.2 -> 0.2,0.2"), PathConfig(4))
    assert np.array_equal(still, np.full((4, 2), 0.2))


def test_targets_and_rig_offsets(model):
    au_path = parse_path("AU12=0 -> AU12=4,AU6=2")
    frames = interpolate_path(au_path, PathConfig(10))
    targets = path_targets(au_path, frames, "clip")
    assert [t.target_id for t in targets][:2] == ["clip-00000", "clip-00001"]
    assert [(t.sequence, t.frame) for t in targets][-1] == ("clip", 9)
    assert targets[0].aus == {} and targets[-1].aus == {6: 2.0, 12: 4.0}
    rig = model.rig
    offsets = path_offsets(frames, lambda x: rig.offsets(rig.vector(frame_aus(au_path, x))))
    assert offsets.shape == (10, 468, 3) and not offsets[0].any()
    va_path = parse_path("0,0 -> 0.8,0.4")
    va_targets = path_targets(va_path, interpolate_path(va_path, PathConfig(5)), "va")
    last = va_targets[-1]
    assert (last.kind, last.valence, last.label_arousal) == ("va", 0.8, 0.4)
    assert last.aus == va_prior.prior_aus(0.8, 0.4)
    emo = parse_path("neutral -> happiness:0.8")
    emo_frames = interpolate_path(emo, PathConfig(3))
    assert frame_aus(emo, emo_frames[-1]) == pytest.approx(emotion_aus("happiness", 0.8))
    emo_targets = path_targets(emo, emo_frames, "emo")
    assert (emo_targets[0].emotion, emo_targets[0].emotion_intensity) == ("neutral", 0.0)
    assert (emo_targets[-1].emotion, emo_targets[-1].emotion_intensity) == ("happiness", 0.8)


def test_class_crossing_is_continuous_with_blending(model):
    def prior(v: float, a: float) -> np.ndarray:
        return model.rig.offsets(model.rig.vector(va_prior.prior_aus(v, a)))

    # No data: every class holds the prior at its centre, so class means differ step-wise.
    models = build_va_model(
        np.zeros((0, 468, 3)),
        np.zeros(0),
        np.zeros(0),
        ClassModelConfig(splocs=SplocsConfig(n_components=2)),
        model.model_id,
        distances_mm=np.zeros((468, 468)),
        prior=prior,
    )
    assert set(models.sources) == {"prior"}
    path = parse_path("-0.8,-0.6 -> 0.8,0.5")  # crosses 8 valence and 6 arousal class edges
    frames = interpolate_path(path, PathConfig(200))
    blended = path_offsets(frames, lambda va: models.blended_offsets(*va))
    popping = path_offsets(frames, lambda va: models.mean_offsets(*va))

    def max_step(offsets: np.ndarray) -> float:
        return float(np.linalg.norm(np.diff(offsets, axis=0), axis=2).max())

    span = float(np.linalg.norm(blended[-1] - blended[0], axis=1).max())
    # Measured: 0.21 mm per frame when blended, 3.5 mm when a class edge pops the mean
    # (the whole change along the path peaks at 12.5 mm).
    assert max_step(blended) < 0.05 * span
    assert max_step(popping) > 4 * max_step(blended)
