"""Learned AU models (CGAN, CAAE): training, checkpoints, sampling, evaluation, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from augmentface.expression.au_evaluation import (
    AUEvaluationConfig,
    evaluate_au_model,
    icc_3_1,
    mean_pairwise_rms_mm,
    mmd2_rbf,
)
from augmentface.expression.learned.checkpoint import CheckpointError
from augmentface.expression.learned.config import TrainConfig, TrainConfigError
from augmentface.expression.learned.data import TrainingDataError
from augmentface.expression.learned.labels import DISFA_AUS, AULabelError, label_column
from augmentface.expression.learned.source import LearnedAUSource, UnsupportedTargetError
from augmentface.expression.learned.train import soft_labels, train_au_model
from augmentface.expression.learned.trained import load_au_model
from augmentface.expression.space import FaceModelMismatchError
from augmentface.expression.targets import RigSource, au_target, sample_rng
from augmentface.simulate.disfa_like import disfa_like_fits

LABELS = [label_column(au) for au in DISFA_AUS]
#: AUs on in more than 7 % of the held-out frames; the rarer ones (AU2, 5, 9, 15, 17, 20: 3–6 %)
#: give the probe too few examples for a stable comparison on this small set.
STRONG_AUS = ("AU1", "AU4", "AU6", "AU12", "AU25", "AU26")
#: Small but enough to learn from: 10 subjects × 300 frames (8 train, 2 validate), ~1000 steps.
FAST = {"epochs": 100, "batch_size": 256, "hidden": 128}


@pytest.fixture(scope="module")
def train_fits(model):
    return disfa_like_fits(model, n_subjects=10, frames_per_subject=300, seed=0)


@pytest.fixture(scope="module")
def heldout_fits(model):
    return disfa_like_fits(model, n_subjects=4, frames_per_subject=300, seed=99)


@pytest.fixture(scope="module")
def shuffled_fits(train_fits):
    shuffled = train_fits.copy()
    order = np.random.default_rng(1).permutation(len(shuffled))
    shuffled[LABELS] = shuffled[LABELS].to_numpy()[order]
    return shuffled


def _evaluate(trained, model, heldout):
    config = AUEvaluationConfig(n_targets=1000, diversity_labels=4, samples_per_label=4)
    table = evaluate_au_model(LearnedAUSource(trained, model.rig), heldout, model, config)
    return table.set_index("au")


@pytest.fixture(scope="module")
def trained(model, train_fits, shuffled_fits):
    """``trained(kind, shuffled=False)``: a model of the FAST config, trained once per module."""
    cache = {}

    def get(kind: str, shuffled: bool = False):
        if (kind, shuffled) not in cache:
            fits = shuffled_fits if shuffled else train_fits
            cache[kind, shuffled] = train_au_model(fits, model, TrainConfig(model=kind, **FAST))
        return cache[kind, shuffled]

    return get


@pytest.fixture(scope="module")
def trained_caae(trained):
    return trained("caae")


@pytest.mark.parametrize("kind", ["cgan", "caae"])
def test_model_beats_trivial_baselines(kind, model, trained, heldout_fits):
    table = _evaluate(trained(kind), model, heldout_fits)
    shuffled = _evaluate(trained(kind, shuffled=True), model, heldout_fits)
    strong = table.loc[list(STRONG_AUS)]
    # Labels drive what is generated: ICC far above a model trained on shuffled labels …
    assert (strong["icc"] > shuffled.loc[list(STRONG_AUS), "icc"] + 0.5).all(), table
    assert (strong["icc"] > 0.6).all(), table
    # … and the AUs read from the samples are closer to the targets than the targets' mean.
    assert (strong["mae"] < strong["mae_mean"]).all(), table
    assert table.loc["all", "diversity_rms_mm"] > 0.05  # samples of one label differ


def test_checkpoint_round_trip(trained_caae, model, tmp_path):
    path = trained_caae.save_checkpoint(tmp_path / "caae.pt")
    raw = torch.load(path, weights_only=True)  # tensors and plain values only
    assert raw["face_model_id"] == model.model_id and raw["aus"] == list(DISFA_AUS)
    loaded = load_au_model(path, model.model_id)
    assert loaded.config == trained_caae.config
    assert loaded.summary == trained_caae.summary
    assert len(loaded.history) == FAST["epochs"]
    # Any face will do: here one 1 % larger than the mean.
    identity = (model.mean_verts_model_mm * 0.01).astype(np.float32)
    labels = np.array([[0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 1, 0]], dtype=np.float32)
    before = trained_caae.generate_offsets(
        labels, np.random.default_rng(5), trained_caae.identity_codes(identity)
    )
    after = loaded.generate_offsets(
        labels, np.random.default_rng(5), loaded.identity_codes(identity)
    )
    np.testing.assert_array_equal(before, after)
    assert not list(tmp_path.glob(".*.tmp*"))  # the atomic write left no temporary file


def test_checkpoint_errors(trained_caae, model, tmp_path):
    path = trained_caae.save_checkpoint(tmp_path / "caae.pt")
    with pytest.raises(FaceModelMismatchError, match="built for"):
        load_au_model(path, "mediapipe468-facs0@000000000000")
    (tmp_path / "notes.pt").write_text("hello, not a checkpoint\n")
    with pytest.raises(CheckpointError, match="not a learned AU checkpoint"):
        load_au_model(tmp_path / "notes.pt", model.model_id)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an augmentface learned AU model"):
        load_au_model(tmp_path / "other.pt", model.model_id)
    state = torch.load(path, weights_only=True)
    del state["generator"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="missing"):
        load_au_model(tmp_path / "partial.pt", model.model_id)
    with pytest.raises(CheckpointError, match="no such"):
        load_au_model(tmp_path / "absent.pt", model.model_id)


def test_learned_source_realize(trained_caae, model, heldout_fits):
    source = LearnedAUSource(trained_caae, model.rig)
    assert source.name == "learned-caae"
    target = au_target({6: 2.0, 12: 3.0})
    intensities, offsets = source.realize(target, 0, sample_rng(7, "img", 0, target.target_id, 0))
    np.testing.assert_array_equal(intensities, model.rig.vector({6: 2.0, 12: 3.0}))
    assert offsets.shape == (468, 3)
    again = source.realize(target, 0, sample_rng(7, "img", 0, target.target_id, 0))[1]
    np.testing.assert_array_equal(offsets, again)  # seeded per row
    other = source.realize(target, 1, sample_rng(7, "img", 0, target.target_id, 1))[1]
    assert not np.array_equal(offsets, other)  # another sample, another draw
    face = heldout_fits["identity_offsets_model_mm"].iloc[0]
    for_face = source.for_identity(face).realize(target, 0, np.random.default_rng(3))[1]
    assert not np.allclose(for_face, source.realize(target, 0, np.random.default_rng(3))[1])
    with pytest.raises(UnsupportedTargetError, match="AU10"):
        source.realize(au_target({10: 2.0}), 0, np.random.default_rng(0))


def test_direct_mode_is_evaluated_the_same_way(model, heldout_fits):
    config = AUEvaluationConfig(n_targets=300, diversity_labels=3, samples_per_label=3)
    table = evaluate_au_model(RigSource(model.rig), heldout_fits, model, config)
    assert table["au"].tolist() == [f"AU{au}" for au in DISFA_AUS] + ["all"]
    table = table.set_index("au")
    assert (table["source"] == "facs-rig").all()
    # The simulated frames are the rig's fields with per-subject gains: direct mode fits them.
    assert (table.loc[list(STRONG_AUS), "icc"] > 0.9).all()


def test_soft_labels_stay_on_the_scale():
    labels = torch.tensor([[0.0, 5.0, 2.0, 3.0]]).repeat(500, 1)
    torch.manual_seed(0)
    for width in (0.5, 2.0):
        soft = soft_labels(labels, width)
        assert soft.min() >= 0.0 and soft.max() <= 5.0
        assert (soft - labels).abs().max() <= width
        assert (soft[:, 2] != 2.0).any()
    assert torch.equal(soft_labels(labels, 0.0), labels)


@pytest.mark.parametrize("kind", ["cgan", "caae"])
def test_seeds_reproduce(kind, model, train_fits):
    config = TrainConfig(model=kind, epochs=2, batch_size=512, hidden=32, seed=3)
    first = train_au_model(train_fits, model, config)
    second = train_au_model(train_fits, model, config)
    for (name, a), b in zip(
        first.generator.state_dict().items(), second.generator.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    labels = np.zeros((4, len(DISFA_AUS)), dtype=np.float32)
    np.testing.assert_array_equal(
        first.generate_offsets(labels, np.random.default_rng(1)),
        second.generate_offsets(labels, np.random.default_rng(1)),
    )
    other = train_au_model(train_fits, model, TrainConfig(model=kind, epochs=2, seed=4, hidden=32))
    assert not torch.equal(
        other.generator.state_dict()["net.0.weight"], first.generator.state_dict()["net.0.weight"]
    )


def test_bad_manifests(model, train_fits):
    small = TrainConfig(epochs=1, hidden=16)
    with pytest.raises(AULabelError, match="label_AU1"):
        train_au_model(train_fits.drop(columns=LABELS), model, small)
    out_of_range = train_fits.copy()
    out_of_range.loc[3, "label_AU12"] = 7.0
    with pytest.raises(AULabelError, match="0–5"):
        train_au_model(out_of_range, model, small)
    all_nan = train_fits.copy()
    all_nan["label_AU4"] = np.nan
    with pytest.raises(AULabelError, match="NaN"):
        train_au_model(all_nan, model, small)
    some_nan = train_fits.copy()
    some_nan.loc[[0, 5, 9], "label_AU25"] = np.nan
    trained = train_au_model(some_nan, model, small)
    assert trained.summary.n_dropped_nan_labels == 3
    assert trained.summary.n_frames == len(train_fits) - 3
    two_subjects = train_fits[train_fits["subject_id"].isin(["SN001", "SN002"])]
    with pytest.raises(TrainingDataError, match="at least 3 subjects"):
        train_au_model(two_subjects, model, small)
    with pytest.raises(TrainConfigError, match="model"):
        TrainConfig(model="vae")
    with pytest.raises(TrainConfigError, match="soft_label_width"):
        TrainConfig(soft_label_width=-1)


def test_split_is_by_subject(trained_caae, train_fits):
    summary = trained_caae.summary
    assert not set(summary.train_subjects) & set(summary.validation_subjects)
    assert len(summary.validation_subjects) == 2  # 20 % of 10 subjects
    counts = train_fits["subject_id"].value_counts()
    assert summary.n_validation_frames == counts[list(summary.validation_subjects)].sum()


def test_metrics_from_their_definitions():
    # Hand-computed: n = 3, k = 2; BMS = 21 / 2, EMS = 1 / 2, ICC = (10.5 − 0.5) / 11 = 10/11.
    assert icc_3_1(np.array([[1, 2], [3, 3], [5, 7]])) == pytest.approx(10 / 11)
    # Shrout & Fleiss (1979), Table 2: six targets, four judges; they report ICC(3,1) = .71.
    table2 = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9],
                       [6, 2, 4, 7]])  # fmt: skip
    assert icc_3_1(table2) == pytest.approx(0.71, abs=0.005)
    rng = np.random.default_rng(0)
    same = mmd2_rbf(rng.normal(size=(300, 3)), rng.normal(size=(300, 3)))
    shifted = mmd2_rbf(rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) + 1.0)
    assert abs(same) < 0.02 and shifted > 0.1
    assert mean_pairwise_rms_mm(np.array([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(
        5.0 / np.sqrt(468)
    )


def test_evaluation_refuses_unlabelled_heldout(model, heldout_fits):
    with pytest.raises(AULabelError):
        evaluate_au_model(RigSource(model.rig), heldout_fits.drop(columns=LABELS), model)


def test_disfa_like_statistics(model):
    fits = disfa_like_fits(model, n_subjects=6, frames_per_subject=400, seed=2)
    labels = fits[LABELS].to_numpy()
    assert set(np.unique(labels)) <= {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}
    assert 0.45 < np.mean(labels.sum(axis=1) == 0) < 0.65  # most frames show no AU
    on = pd.DataFrame(labels > 0, columns=DISFA_AUS)
    for a, b in ((6, 12), (1, 2), (25, 26)):
        assert on[a].corr(on[b]) > 0.3, (a, b)
    assert fits["subject_id"].iloc[0] == "SN001" and fits["subject_id"].nunique() == 6
    shape = fits["identity_offsets_model_mm"].iloc[0] + fits["expression_offsets_model_mm"].iloc[0]
    assert shape.shape == (468, 3)
    again = disfa_like_fits(model, n_subjects=6, frames_per_subject=400, seed=2)
    np.testing.assert_array_equal(labels, again[LABELS].to_numpy())


@pytest.mark.parametrize("kind", ["cgan", "caae"])
def test_generated_expressions_have_their_real_size(kind, model, trained, heldout_fits):
    """A generated smile is as large as the real smiles with its labels (ICC alone misses a
    model that draws every expression at a third of its size)."""
    from augmentface.expression.space import expression_deformations_model_mm

    deformations = expression_deformations_model_mm(heldout_fits, model)
    frames = heldout_fits.loc[deformations.index]
    smiling = np.flatnonzero(frames["label_AU12"].to_numpy() >= 3)
    assert len(smiling) >= 10
    source = LearnedAUSource(trained(kind), model.rig)
    labels = frames[LABELS].fillna(0).to_numpy()[smiling]
    targets = [
        au_target({au: v for au, v in zip(DISFA_AUS, row, strict=True) if v > 0}) for row in labels
    ]
    generated = [source.realize(t, 0, np.random.default_rng(i))[1] for i, t in enumerate(targets)]

    def rms(offsets):
        return float(np.sqrt((np.asarray(offsets) ** 2).sum(axis=-1).mean()))

    ratio = rms(generated) / rms(deformations.offsets_model_mm[smiling])
    assert 0.7 < ratio < 1.3, ratio
