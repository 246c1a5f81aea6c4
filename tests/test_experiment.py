"""``augmentface experiment`` (issue 14): planted-label recovery on held-out subjects, the
shuffled-label and poisoned-augmentation controls, subject independence of every fold, resume
after kill -9, the results files' schema."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from augmentface.cli import app
from augmentface.errors import UsageError
from augmentface.experiment.folds import make_folds
from augmentface.experiment.report import RESULT_COLUMNS
from augmentface.experiment.run import ExperimentConfig, run_experiment
from tests.experiment_trees import PEOPLE, planted_subjects, planted_va_workdir, planted_workdir

SIZE = 112  # crop side (px) of the hog-ridge runs


@pytest.fixture(scope="module")
def subjects(shared_faces, landmarker, model):
    """6 people x 30 frames rendered at planted AU intensities (frame 0 neutral)."""
    return planted_subjects(shared_faces, landmarker, model)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, subjects):
    """A DISFA tree of the frames through import, fit3dmm, synth-au, render and blend: 30
    augmented frames per subject, rendered on its neutral frame."""
    return planted_workdir(tmp_path_factory.mktemp("planted"), subjects)


@pytest.fixture(scope="module")
def va_workdir(tmp_path_factory, subjects):
    """The same frames as AFEW-VA clips (planted valence and arousal), imported and fitted."""
    return planted_va_workdir(tmp_path_factory.mktemp("planted-va"), subjects)


def _run(workdir, **settings):
    return run_experiment(ExperimentConfig(workdir, crop_size=SIZE, quiet=True, **settings))


def _means(result, condition: str, metric: str = "icc") -> pd.Series:
    r = result.results
    return r[(r["fold"] == "mean") & (r["condition"] == condition)].set_index("target")[metric]


def test_planted_labels_recovered_on_held_out_subjects_and_shuffled_control(workdir):
    clean = _means(_run(workdir), "real")
    assert clean["AU12"] >= 0.6 and clean["AU26"] >= 0.6, clean
    # AU25 is planted as FACS codes it (>= AU26: a dropped jaw parts the lips); with the jaw
    # closed the rig's lips part by a few pixels here, so it is recovered less well (0.50).
    assert clean["AU25"] >= 0.4, clean
    shuffled = _run(workdir, control="shuffled-labels")
    for condition in ("real", "real+augmented"):
        icc = _means(shuffled, condition)
        # No skill: the mean over AUs at most 0.1; each AU within chance (60 test frames a
        # fold: one AU's fold-mean ICC has a chance SD near 0.08).
        assert icc["mean"] <= 0.1 and (icc.drop("mean") <= 0.25).all(), icc


def test_poisoned_augmentation_hurts(workdir):
    clean = _means(_run(workdir), "real+augmented")
    poisoned = _run(workdir, control="poisoned-augmentation")
    real = _means(poisoned, "real")
    hurt = _means(poisoned, "real+augmented")
    assert hurt["mean"] < clean["mean"] - 0.1 and hurt["mean"] < real["mean"] - 0.1
    assert hurt["AU12"] < clean["AU12"]


def test_every_fold_is_subject_independent(workdir):
    result = _run(workdir, ratio=2.0, balance=True)
    folds = result.protocol["folds"]
    subjects = {f"SN{p[3:-4]:0>3}" for p in PEOPLE}
    assert len(folds) == 3  # DISFA: 3 folds by subject
    assert set().union(*(f["test_subjects"] for f in folds)) == subjects
    for fold in folds:
        train, test = set(fold["train_subjects"]), set(fold["test_subjects"])
        assert train and test and not train & test and train | test == subjects
        assert set(fold["augmented_subjects"]) <= train
        assert fold["n_train_augmented"] == 2 * fold["n_train_real"]


def test_make_folds_follow_each_protocol():
    subjects = [f"S{i:02d}" for i in range(10)]
    for dataset, k in (("disfa", 3), ("afew_va", 5), ("images", 3)):
        folds = make_folds(subjects, dataset=dataset, k=None, seed=0)
        assert len(folds) == k
        assert sorted(s for f in folds for s in f.test_subjects) == subjects
    assert len(make_folds(subjects, dataset="disfa", k=4, seed=0)) == 4
    splits = {s: ("Train" if i < 7 else "Validation") for i, s in enumerate(subjects)}
    (fold,) = make_folds(subjects, dataset="affwild2", k=None, seed=0, splits=splits)
    assert fold.train_subjects == tuple(subjects[:7]) and fold.test_subjects == tuple(subjects[7:])
    # a video in different splits for different challenges follows the experiment's challenge
    splits[subjects[0]] = "VA=Validation;AU=Train"
    (va,) = make_folds(subjects, dataset="affwild2", k=None, seed=0, splits=splits, challenge="VA")
    assert subjects[0] in va.test_subjects
    (au,) = make_folds(subjects, dataset="affwild2", k=None, seed=0, splits=splits, challenge="AU")
    assert subjects[0] in au.train_subjects
    with pytest.raises(UsageError):
        make_folds(subjects[:2], dataset="afew_va", k=None, seed=0)


def test_va_experiment_recovers_planted_valence(va_workdir):
    result = _run(va_workdir, kind="va")
    ccc = _means(result, "real", "ccc")
    assert ccc["valence"] >= 0.5, ccc
    assert result.results[["icc"]].isna().all().all()


def test_results_files_schema(workdir):
    _run(workdir, seed=3)
    out = workdir / "experiment"
    table = pd.read_csv(out / "results.csv")
    assert tuple(table.columns) == RESULT_COLUMNS
    assert set(table["condition"]) == {"real", "real+augmented"}
    assert set(table["fold"].astype(str)) == {"0", "1", "2", "mean"}
    assert {"AU12", "AU25", "AU26", "mean"} <= set(table["target"])
    assert table["icc"].notna().all() and table["ccc"].isna().all()
    protocol = json.loads((out / "protocol.json").read_text())
    assert {"folds", "seeds", "sizes", "versions", "settings", "targets"} <= set(protocol)
    assert protocol["versions"]["torch"] and protocol["settings"]["seed"] == 3
    image = cv2.imread(str(out / "results.png"))
    assert image is not None and image.shape[0] > 200


def _cli_command(workdir, *extra: str) -> list[str]:
    return [sys.executable, "-m", "augmentface.cli", "experiment", "au", "-w", str(workdir),
            "--crop-size", str(SIZE), "--seed", "5", "--ratio", "3", *extra]  # fmt: skip


def test_resume_after_kill_keeps_completed_folds(workdir):
    marker = workdir / "experiment" / "folds" / "fold-0.json"
    marker.unlink(missing_ok=True)
    env = os.environ | {"GLOG_minloglevel": "2"}
    process = subprocess.Popen(_cli_command(workdir, "-q"), env=env)
    deadline = time.monotonic() + 240
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert marker.exists(), "fold 0 never finished"
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = (marker.stat().st_mtime_ns, marker.read_bytes())
    rerun = subprocess.run(_cli_command(workdir), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "fold 0: done earlier, kept" in rerun.stderr
    assert "fold 2: trained and tested" in rerun.stderr  # the killed run never finished it
    assert (marker.stat().st_mtime_ns, marker.read_bytes()) == before
    results = pd.read_csv(workdir / "experiment" / "results.csv")
    assert set(results["fold"].astype(str)) == {"0", "1", "2", "mean"}
    assert np.isfinite(results["mse"]).all()


def test_cnn_trains_and_predicts_in_both_conditions(workdir):
    result = run_experiment(
        ExperimentConfig(workdir, estimator="cnn", steps=4, crop_size=64, seed=11, quiet=True)
    )
    table = result.results
    assert set(table["condition"]) == {"real", "real+augmented"}
    assert np.isfinite(table["mse"]).all() and table["icc"].notna().all()
    timing = result.protocol["folds"][0]["timing"]
    assert timing["real+augmented"]["train_frames"] == 2 * timing["real"]["train_frames"]


def test_cli_usage_errors_are_one_line_exit_2(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["experiment", "xx", "-w", str(tmp_path)])
    assert result.exit_code == 2
    result = runner.invoke(app, ["experiment", "au", "-w", str(tmp_path), "-q"])
    assert result.exit_code == 2
    assert "fits.parquet" in result.output and result.output.count("\n") <= 2
