"""The affect commands from the CLI on generated, fitted manifests: synth-va build / inspect /
evaluate, synthesis (mean, sampling, grid, path) rendered and blended on a real photo,
synth-emotion (prior and learned) and transfer."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from augmentface.cli import app
from augmentface.expression.space import expression_deformations_model_mm
from augmentface.manifest import read_manifest, write_manifest
from augmentface.simulate.va_like import VALikeConfig, fits_frame, generate_va_like
from augmentface.stages.schemas import FITS, LABELS, TARGETS

runner = CliRunner()


def _cli(*args, code: int = 0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(scope="module")
def photo_workdir(tmp_path_factory, astronaut):
    """A work directory with the astronaut fitted (the face every synthesis lands on)."""
    root = tmp_path_factory.mktemp("photo")
    cv2.imwrite(str(root / "astronaut.png"), astronaut[..., ::-1])
    _cli("fit3dmm", root / "astronaut.png", "-w", root / "work", "-q")
    return root / "work"


@pytest.fixture(scope="module")
def generated(tmp_path_factory, model, photo_workdir):
    """Fitted, labelled manifests of generated Aff-Wild-like subjects: train and held out."""
    template = read_manifest(photo_workdir / "fits.parquet", FITS, run_first="").df.iloc[0]
    data = generate_va_like(model, VALikeConfig(n_subjects=10, frames_per_subject=160, seed=3))
    frame = fits_frame(data)
    rows = pd.DataFrame([template] * len(frame)).reset_index(drop=True)
    for column in frame.columns:
        rows[column] = frame[column].to_numpy()
    rows["dataset"] = "affwild"
    rows["image_path"] = "/generated/" + frame["image_path"]
    root = tmp_path_factory.mktemp("generated")
    held_out = rows["subject_id"].isin(sorted(rows["subject_id"].unique())[-3:])
    paths = {}
    for name, part in (("train", rows[~held_out]), ("heldout", rows[held_out])):
        paths[name] = root / f"{name}.parquet"
        write_manifest(paths[name], part.reset_index(drop=True), FITS, params={}, seed=None,
                       face_model_id=model.model_id)  # fmt: skip
    return paths


def test_build_inspect_evaluate(generated, tmp_path):
    model_file = tmp_path / "va.npz"
    _cli("synth-va", "build", "--fits", generated["train"], "--out", model_file,
         "--min-frames", "20", "-q")  # fmt: skip
    _cli("synth-va", "inspect", model_file, "--out", tmp_path / "va.png", "-q")
    figure = cv2.imread(str(tmp_path / "va.png"))
    assert figure is not None and figure.shape[0] > 500
    _cli("synth-va", "evaluate", "--model", model_file, "--fits", generated["heldout"],
         "--out", tmp_path / "eval.csv", "-q")  # fmt: skip
    table = pd.read_csv(tmp_path / "eval.csv")
    overall = table[table["va_class"] == -1].set_index("source")
    assert overall.loc["class-models", "ccc_valence"] > 0.5
    assert overall.loc["class-models", "ccc_arousal"] > 0.5


def test_synthesize_modes_render_and_blend(generated, photo_workdir, tmp_path):
    model_file = tmp_path / "va.npz"
    _cli("synth-va", "build", "--fits", generated["train"], "--out", model_file,
         "--min-frames", "20", "-q")  # fmt: skip
    work = ["-w", photo_workdir]
    _cli("synth-va", "--model", model_file, "--valence", "0.7", "--arousal", "0.3",
         "--mode", "sample", "--samples", "3", "--label", "class-median", *work, "-q")  # fmt: skip
    targets = read_manifest(photo_workdir / "targets.parquet", TARGETS, run_first="").df
    assert (targets["source"] == "va-classes").all() and len(targets) == 3
    offsets = np.stack(targets["expression_offsets_model_mm"])
    assert np.abs(offsets[1] - offsets[2]).max() > 0.01  # samples differ
    assert targets["valence"].nunique() == 1  # the class median, not the request
    assert targets["valence"].iloc[0] != 0.7

    _cli("synth-va", "--model", model_file, "--grid", *work, "-q")
    grid = read_manifest(photo_workdir / "targets.parquet", TARGETS, run_first="").df
    assert 5 <= len(grid) <= 100

    # Positive valence throughout: the astronaut smiles, and blend rejects frames where her
    # smile would survive under a negative label (test_pipeline checks that gate).
    _cli("synth-va", "--model", model_file, "--path", "0,0 -> 0.6,0.4 -> 0.1,0.7",
         "--frames", "12", *work, "-q")  # fmt: skip
    _cli("render", *work, "-q")
    _cli("blend", *work, "--fps", "10", "-q")
    labels = read_manifest(photo_workdir / "output/labels.parquet", LABELS, run_first="").df
    assert sorted(labels["frame"]) == list(range(12))
    assert labels["sequence"].nunique() == 1
    videos = list((photo_workdir / "output/sequences").glob("*.mp4"))
    assert len(videos) == 1
    capture = cv2.VideoCapture(str(videos[0]))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 12


def test_emotion_prior_learned_and_transfer(generated, photo_workdir, tmp_path, model):
    work = ["-w", photo_workdir]
    _cli("synth-emotion", "--emotion", "happiness", "--emotion", "sad", "--intensity", "0.7",
         *work, "-q")  # fmt: skip
    targets = read_manifest(photo_workdir / "targets.parquet", TARGETS, run_first="").df
    assert set(targets["emotion"]) == {"happiness", "sadness"}
    assert (targets["emotion_intensity"] == 0.7).all()
    assert (targets["source"] == "emotion-prior").all()
    happy = targets.set_index("emotion").loc["happiness"]
    assert happy["AU12"] > 2 and happy["AU6"] > 1

    emotion_file = tmp_path / "emotion.npz"
    _cli("synth-emotion", "build", "--fits", generated["train"], "--out", emotion_file,
         "--min-frames", "20", "-q")  # fmt: skip
    _cli("synth-emotion", "--model", emotion_file, "--emotion", "happiness", *work, "-q")
    learned = read_manifest(photo_workdir / "targets.parquet", TARGETS, run_first="").df
    assert (learned["source"] == "emotion-classes").all()

    _cli("transfer", "--from", generated["train"], "--row", "100", *work, "-q")
    moved = read_manifest(photo_workdir / "targets.parquet", TARGETS, run_first="").df
    train = read_manifest(generated["train"], FITS, run_first="").df
    donor = train.iloc[100]
    assert moved["kind"].iloc[0] == "transfer"
    assert moved["valence"].iloc[0] == pytest.approx(donor["label_valence"])
    # the donor's deformation from its subject's neutral frames is what moves
    subject = train[train["subject_id"] == donor["subject_id"]]
    deformations = expression_deformations_model_mm(subject, model)
    expected = deformations.offsets_model_mm[list(deformations.index).index(100)]
    assert np.allclose(moved["expression_offsets_model_mm"].iloc[0], expected, atol=1e-5)


def test_bad_affect_input(generated, photo_workdir, tmp_path):
    work = ["-w", photo_workdir]
    assert "valence" in _cli("synth-va", "--valence", "1.5", "--arousal", "0", *work,
                             code=2).output  # fmt: skip
    # a manifest without VA labels (the photo's own fits) cannot build VA models
    out = _cli("synth-va", "build", "--fits", photo_workdir / "fits.parquet",
               "--out", tmp_path / "x.npz", code=2).output  # fmt: skip
    assert "label" in out and not (tmp_path / "x.npz").exists()
    np.savez(tmp_path / "alien.npz", header_json=np.array('{"face_model_id": "other"}'))
    _cli("synth-va", "--model", tmp_path / "alien.npz", "--valence", "0", "--arousal", "0",
         *work, code=2)  # fmt: skip
    assert "emotion" in _cli("synth-emotion", "--emotion", "bored", *work, code=2).output


def test_neutral_only_paths_and_photo_donor(generated, photo_workdir, astronaut, tmp_path):
    out = ["-w", tmp_path / "work", "-q"]
    _cli("synth-va", "--valence", "0.5", "--arousal", "0.5", "--fits", generated["heldout"],
         "--neutral-only", *out)  # fmt: skip
    targets = read_manifest(tmp_path / "work/targets.parquet", TARGETS, run_first="").df
    heldout = read_manifest(generated["heldout"], FITS, run_first="").df
    picked = heldout[heldout["image_path"].isin(targets["image_path"])]
    assert 0 < len(picked) < len(heldout)
    assert (np.hypot(picked["label_valence"], picked["label_arousal"]) <= 0.2).all()

    work = ["-w", photo_workdir, "-q"]
    _cli("synth-au", "--path", "AU12=0 -> AU12=4,AU6=2", "--frames", "5", *work)
    au_path = read_manifest(photo_workdir / "targets.parquet", TARGETS, run_first="").df
    au12 = au_path.sort_values("frame")["AU12"].to_numpy()
    assert au12[0] == 0 and au12[-1] == 4 and (np.diff(au12) > 0).all()
    _cli("synth-emotion", "--path", "neutral -> happiness:0.8 -> surprise", "--frames", "9",
         *work)  # fmt: skip
    emotion_path = read_manifest(photo_workdir / "targets.parquet", TARGETS, run_first="").df
    ordered = emotion_path.sort_values("frame")
    assert ordered["emotion"].iloc[0] == "neutral" and ordered["emotion"].iloc[-1] == "surprise"

    donor = tmp_path / "donor.png"
    cv2.imwrite(str(donor), astronaut[:, ::-1, ::-1])
    _cli("transfer", "--from", donor, *work)
    moved = read_manifest(photo_workdir / "targets.parquet", TARGETS, run_first="").df
    assert moved["target_id"].iloc[0] == "transfer-donor" and moved["AU12"].iloc[0] > 0
