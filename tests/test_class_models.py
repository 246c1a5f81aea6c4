"""VA and emotion class models on generated AFEW-VA/Aff-Wild-like data: build, fall back,
realise, save/load, evaluate (CCC against a shuffled baseline) and the inspection figure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from augmentface.errors import UsageError
from augmentface.expression import va_prior
from augmentface.expression.class_models import (
    ClassModelConfig,
    ClassModelError,
    ClassModelSource,
)
from augmentface.expression.class_models_build import build_emotion_model, build_va_model
from augmentface.expression.class_models_io import (
    ClassModelMismatchError,
    load_class_models,
    read_header,
    save_class_models,
)
from augmentface.expression.emotion_prior import EMOTIONS, emotion_aus
from augmentface.expression.mesh_plot import class_means_figure
from augmentface.expression.splocs import SplocsConfig, graph_distances_mm
from augmentface.expression.targets import au_target, va_target
from augmentface.expression.va_evaluation import (
    ccc,
    evaluate_va_model,
    fit_va_regressor,
    flatten_offsets,
    mse,
    split_subjects,
)
from augmentface.imageio import read_image
from augmentface.simulate.va_like import VALikeConfig, fits_frame, generate_va_like

CONFIG = ClassModelConfig(
    splocs=SplocsConfig(n_components=3, n_iterations=8), min_frames=30, max_frames_per_class=200
)


@pytest.fixture(scope="module")
def distances(model):
    return graph_distances_mm(model.mean_verts_model_mm, model.triangles)


@pytest.fixture(scope="module")
def prior(model):
    return lambda v, a: model.rig.offsets(model.rig.vector(va_prior.prior_aus(v, a)))


@pytest.fixture(scope="module")
def data(model):
    return generate_va_like(
        model, VALikeConfig(style="aff-wild", n_subjects=16, frames_per_subject=300)
    )


@pytest.fixture(scope="module")
def split(data):
    return split_subjects(data.subject_id, 0.25, seed=0)


@pytest.fixture(scope="module")
def va_models(model, data, split, distances, prior):
    train, _ = split
    return build_va_model(
        data.offsets_model_mm[train],
        data.valence[train],
        data.arousal[train],
        CONFIG,
        model.model_id,
        distances_mm=distances,
        prior=prior,
    )


def _projection(model, offsets: np.ndarray, au: int) -> float:
    """Signed projection (mm) of offsets on the unit direction of one AU's field."""
    field = model.rig.fields_model_mm[model.rig.au_numbers.index(au)].ravel()
    return float(offsets.ravel() @ field / np.linalg.norm(field))


def test_class_means_follow_the_circumplex(model, va_models):
    happy = va_models.mean_offsets(0.7, 0.3)
    sad = va_models.mean_offsets(-0.5, -0.3)
    centre = va_models.mean_offsets(0.05, 0.05)
    excited = va_models.mean_offsets(0.1, 0.7)
    # High valence raises the mouth corners (AU12), low valence does not.
    assert _projection(model, happy, 12) > 3.0
    assert _projection(model, happy, 12) > _projection(model, sad, 12) + 3.0
    # High arousal opens the mouth (AU26) and raises the lids (AU5); the centre is near rest.
    assert _projection(model, excited, 26) > _projection(model, centre, 26) + 3.0
    assert _projection(model, excited, 5) > _projection(model, centre, 5)
    assert np.abs(centre).max() < np.abs(happy).max()


def test_sparse_and_empty_classes_fall_back_as_recorded(model, data, distances, prior, va_models):
    counts, sources = va_models.counts, va_models.sources
    assert counts.sum() > 0 and len(sources) == 100
    for index, source in enumerate(sources):
        assert (source == "own") == (counts[index] >= CONFIG.min_frames)
        if source.startswith("nearest:"):
            donor = int(source.split(":")[1])
            assert sources[donor] == "own"
            dv, da = np.subtract(va_prior.va_class_center(index), va_prior.va_class_center(donor))
            assert np.hypot(dv, da) <= CONFIG.fallback_max_distance + 1e-9
            assert np.array_equal(va_models.means_model_mm[index], va_models.means_model_mm[donor])
            assert va_models.class_median(*va_prior.va_class_center(index)) == pytest.approx(
                va_prior.va_class_center(index)
            )
    # The generated data never reach the (-1, -1) corner: it borrows or uses the prior.
    assert sources[0] != "own"
    # With no borrowing allowed every sparse class takes the prior, which then is required.
    strict = ClassModelConfig(
        splocs=CONFIG.splocs, fallback_max_distance=0.0, max_frames_per_class=100
    )
    subset = slice(0, 2000)
    args = (
        data.offsets_model_mm[subset],
        data.valence[subset],
        data.arousal[subset],
        strict,
        model.model_id,
    )
    built = build_va_model(*args, distances_mm=distances, prior=prior)
    assert {s for s in built.sources} <= {"own", "prior"} and "prior" in built.sources
    corner = built.means_model_mm[0]
    assert np.allclose(corner, prior(-0.9, -0.9), atol=1e-4)
    with pytest.raises(ClassModelError, match="pass prior="):
        build_va_model(*args, distances_mm=distances)


def test_rows_with_bad_labels_are_dropped_and_counted(model, data, distances, prior):
    n = 600
    v, a = data.valence[:n].copy(), data.arousal[:n].copy()
    offsets = data.offsets_model_mm[:n].copy()
    v[:7] = np.nan
    a[10:13] = 1.5
    offsets[20, 0, 0] = np.inf
    built = build_va_model(
        offsets, v, a, CONFIG, model.model_id, distances_mm=distances, prior=prior
    )
    assert built.dropped == {"missing_label": 7, "out_of_range": 3, "non_finite_offsets": 1}
    assert built.counts.sum() == n - 11
    with pytest.raises(ClassModelError, match="labels"):
        build_va_model(offsets[:5], v, a, CONFIG, model.model_id, distances_mm=distances)


def test_realisation_modes(model, va_models, prior):
    # The best-populated class of positive valence (not on the left edge of the grid).
    positive = [i for i in range(100) if va_prior.va_class_center(i)[0] > 0.3]
    index = max(positive, key=lambda i: va_models.counts[i])
    v, a = va_prior.va_class_center(index)
    assert va_models.sources[index] == "own"
    assert np.allclose(va_models.mean_offsets(v, a), va_models.means_model_mm[index])
    one = va_models.sample_offsets(v, a, np.random.default_rng(5))
    again = va_models.sample_offsets(v, a, np.random.default_rng(5))
    other = va_models.sample_offsets(v, a, np.random.default_rng(6))
    assert np.array_equal(one, again) and not np.allclose(one, other)
    assert np.abs(one - va_models.mean_offsets(v, a)).max() < 15.0  # a plausible member
    mv, ma = va_models.class_median(v, a)
    assert va_prior.va_class(mv, ma) == index  # the median lies in its class
    # Blending equals the class mean at a centre and lies between neighbours on an edge.
    assert np.allclose(va_models.blended_offsets(v, a), va_models.means_model_mm[index], atol=1e-5)
    edge = va_models.blended_offsets(v - 0.1, a)
    left, right = va_models.means_model_mm[index - 1], va_models.means_model_mm[index]
    assert np.allclose(edge, (left + right) / 2, atol=1e-5)
    # A prior passed when realising replaces the stored prior at the exact target.
    prior_index = va_models.sources.index("prior") if "prior" in va_models.sources else None
    if prior_index is not None:
        pv, pa = va_prior.va_class_center(prior_index)
        assert np.allclose(va_models.mean_offsets(pv + 0.05, pa, prior=prior), prior(pv + 0.05, pa))
    with pytest.raises(UsageError, match="valence"):
        va_models.mean_offsets(1.5, 0)


def test_expression_source_adapter(model, va_models, prior):
    source = ClassModelSource(va_models, model.rig, mode="sample", prior=prior)
    target = va_target(0.7, 0.3)
    aus, offsets = source.realize(target, 0, np.random.default_rng(0))
    assert aus.shape == (len(model.rig.au_numbers),) and np.isfinite(aus).all()
    assert ((aus >= 0) & (aus <= 5)).all()
    assert aus[model.rig.au_numbers.index(12)] > 1.0  # a smile reads as AU12
    assert np.allclose(offsets, va_models.mean_offsets(0.7, 0.3))  # sample 0 = the mean
    _, drawn = source.realize(target, 1, np.random.default_rng(0))
    assert not np.allclose(drawn, offsets)
    with pytest.raises(ClassModelError, match="VA targets"):
        source.realize(au_target({12: 3}), 0, np.random.default_rng(0))
    with pytest.raises(ClassModelError, match="mode"):
        ClassModelSource(va_models, model.rig, mode="median")


def test_save_and_load(tmp_path, model, va_models):
    path = save_class_models(va_models, tmp_path / "va.npz")
    loaded = load_class_models(path, model.model_id)
    assert loaded.sources == va_models.sources and loaded.config == va_models.config
    assert loaded.dropped == va_models.dropped and loaded.class_names == va_models.class_names
    for name in ("counts", "means_model_mm", "components_model_mm", "coef_std", "median_va"):
        assert np.array_equal(getattr(loaded, name), getattr(va_models, name))
    header = read_header(path)
    assert header["face_model_id"] == model.model_id and len(header["classes"]) == 100
    assert json.loads(json.dumps(header)) == header
    with pytest.raises(ClassModelMismatchError, match="rebuild"):
        load_class_models(path, "another-model@000")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ClassModelError, match="not a class-model file"):
        load_class_models(tmp_path / "bad.npz", model.model_id)


def test_emotion_model(tmp_path, model, data, distances):
    def emotion_prior(name: str) -> np.ndarray:
        return model.rig.offsets(model.rig.vector(emotion_aus(name)))

    labels = data.emotion.astype(object)
    labels[:5] = None
    built = build_emotion_model(
        data.offsets_model_mm,
        labels,
        CONFIG,
        model.model_id,
        distances_mm=distances,
        prior=emotion_prior,
    )
    assert built.class_names == EMOTIONS
    assert built.dropped["missing_label"] == 5
    assert built.dropped["ignored_label"] == int((data.emotion[5:] == "other").sum())
    # The generator never labels contempt: it comes from the prior.
    assert built.sources[EMOTIONS.index("contempt")] == "prior"
    assert built.sources[EMOTIONS.index("happiness")] == "own"
    smile = built.emotion_offsets("happy")
    assert _projection(model, smile, 12) > _projection(model, built.emotion_offsets("sad"), 12)
    assert np.isnan(built.median_va).all()
    loaded = load_class_models(save_class_models(built, tmp_path / "e.npz"), model.model_id)
    assert loaded.kind == "emotion" and np.array_equal(loaded.counts, built.counts)
    with pytest.raises(ClassModelError, match="'emotion' class model"):
        built.mean_offsets(0.1, 0.1)
    with pytest.raises(UsageError, match="allowed"):
        build_emotion_model(
            data.offsets_model_mm[:3],
            np.array(["joy", "sad", "sad"]),
            CONFIG,
            model.model_id,
            distances_mm=distances,
        )


def test_ccc_and_mse_reference_values():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert ccc(x, x) == pytest.approx(1.0)
    # Hand computation: y = x + 1 → cov = var = 1.25, mean gap 1: 2·1.25 / (1.25 + 1.25 + 1).
    assert ccc(x, x + 1) == pytest.approx(2.5 / 3.5)
    centred = x - x.mean()
    assert ccc(centred, -centred) == pytest.approx(-1.0)
    assert ccc(np.r_[x, np.nan], np.r_[x, 0.0]) == pytest.approx(1.0)
    assert mse(x, x + 1) == pytest.approx(1.0)
    assert np.isnan(ccc([1.0], [1.0]))


def test_synthesized_parameters_carry_the_labels(model, data, split, va_models):
    train, test = split
    regressor = fit_va_regressor(
        flatten_offsets(data.offsets_model_mm[train]), data.valence[train], data.arousal[train]
    )
    v, a = data.valence[test], data.arousal[test]
    synthesized = np.stack([va_models.mean_offsets(x, y) for x, y in zip(v, a, strict=True)])
    table = evaluate_va_model(regressor, flatten_offsets(synthesized), v, a)
    overall = table[table.va_class == -1].iloc[0]
    shuffled = np.random.default_rng(0).permutation(len(v))
    baseline = evaluate_va_model(
        regressor, flatten_offsets(synthesized), v[shuffled], a[shuffled]
    ).iloc[-1]
    print(
        f"\nCCC valence {overall.ccc_valence:.2f}, arousal {overall.ccc_arousal:.2f}; label-"
        f"shuffled {baseline.ccc_valence:.2f}, {baseline.ccc_arousal:.2f}"
    )
    assert overall.ccc_valence > 0.7 and overall.ccc_arousal > 0.7
    assert overall.ccc_valence > baseline.ccc_valence + 0.5
    assert overall.ccc_arousal > baseline.ccc_arousal + 0.5
    assert overall.mse_valence < baseline.mse_valence
    assert table.n.iloc[:-1].sum() == overall.n
    assert set(table.columns) == {
        "va_class",
        "n",
        "ccc_valence",
        "ccc_arousal",
        "mse_valence",
        "mse_arousal",
    }


def test_fits_frame_and_afew_style(model):
    data = generate_va_like(
        model,
        VALikeConfig(
            style="afew-va",
            n_subjects=2,
            frames_per_subject=60,
            neutral_frames=10,
            missing_label_fraction=0.1,
        ),
    )
    table = fits_frame(data)
    assert len(table) == 120 and (table.status == "ok").all()
    assert table.expression_offsets_model_mm.iloc[0].shape == (468, 3)
    assert table.identity_offsets_model_mm.iloc[0].dtype == np.float32
    labelled = table.label_valence.dropna()
    assert np.allclose(labelled * 10, np.round(labelled * 10))  # the -10…10 integer scale
    assert table.label_valence.isna().any()
    neutral = data.offsets_model_mm[:10]
    assert np.abs(neutral).mean() < np.abs(data.offsets_model_mm[10:60]).mean()
    with pytest.raises(UsageError, match="style"):
        VALikeConfig(style="affectnet")


def test_class_means_figure(tmp_path, model, va_models):
    path = class_means_figure(
        va_models, model.mean_verts_model_mm, model.triangles, tmp_path / "classes.png"
    )
    image = read_image(path)
    assert image.shape[0] > 1000 and image.shape[1] > 1500
    # Fallback frames are drawn in orange (nearest) or red (prior).
    orange = (
        (image[..., 0] > 200) & (image[..., 1] > 110) & (image[..., 1] < 170) & (image[..., 2] < 60)
    )
    assert orange.sum() > 100
