"""A dataset in its own layout goes through every stage and comes out in the same layout:
import -> fit3dmm -> synth-au train -> synth-au --model -> render -> blend --layout, from the CLI,
with each output keeping its subject and its target labels."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from augmentface.cli import app
from augmentface.datasets import import_dataset, read_frame
from augmentface.manifest import read_manifest
from augmentface.stages.schemas import FITS
from tests.dataset_trees import build_afew_va, build_disfa, build_folder, disfa_intensities

runner = CliRunner()
N_FRAMES = 6


def _cli(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def _face_frames(photo: np.ndarray, n: int) -> list[np.ndarray]:
    """``n`` frames of a face: a 256 px crop, moved by a few pixels from frame to frame."""
    face = cv2.resize(photo[0:320, 110:430], (256, 256), interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(np.roll(face, 3 * i, axis=1)) for i in range(n)]


@pytest.fixture
def disfa_root(tmp_path, astronaut):
    root = tmp_path / "DISFA"
    people = {"SN001": astronaut, "SN002": astronaut[:, ::-1], "SN003": astronaut[::1, ::-1]}
    for k, (subject, photo) in enumerate(people.items()):
        build_disfa(root, _face_frames(photo, N_FRAMES), subject=subject,
                    intensities=disfa_intensities(N_FRAMES, seed=k))  # fmt: skip
    return root


def test_disfa_import_to_disfa_layout(tmp_path, disfa_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _cli("import", "disfa", disfa_root, "-q")
    _cli("fit3dmm", "-q")
    fits = read_manifest(tmp_path / "augment/fits.parquet", FITS, run_first="").df
    assert (fits["status"] == "ok").all(), fits[["image_path", "error"]]
    assert sorted(fits["subject_id"].unique()) == ["SN001", "SN002", "SN003"]
    labels_in = import_dataset("disfa", disfa_root)
    merged = fits.merge(labels_in, on="image_path", suffixes=("", "_src"))
    assert np.array_equal(merged["label_AU12"], merged["label_AU12_src"])  # labels carried

    _cli("synth-au", "train", "--out", "model.pt", "--model", "caae", "--epochs", "2",
         "--min-steps", "5",
         "--validation-share", "0.34", "-q")  # fmt: skip
    # Labelled frames: by default only the neutral ones are sources (Kollias et al.); these
    # random labels leave none, and the refusal says how to take every frame instead.
    refused = runner.invoke(app, ["synth-au", "--model", "model.pt", "--au", "12=3", "-q"])
    assert refused.exit_code == 2 and "--any-source" in refused.output
    _cli("synth-au", "--model", "model.pt", "--au", "12=3", "--au", "6=2", "--any-source", "-q")
    _cli("render", "-q")
    # The frames are the smiling astronaut's: her smile would be rejected under these labels
    # (test_pipeline); the layout is the subject here, so every output is kept.
    _cli("blend", "--layout", "disfa", "--max-source-residual", "6", "-q")

    out = import_dataset("disfa", tmp_path / "augment/output/disfa")
    assert sorted(out["subject_id"].unique()) == ["SN001", "SN002", "SN003"]
    assert (out.groupby("subject_id").size() == N_FRAMES).all()
    assert (out["label_AU12"] == 3).all() and (out["label_AU6"] == 2).all()
    assert (out["label_AU1"] == 0).all()
    frame = read_frame(out["image_path"].iloc[0])
    assert frame.shape == (256, 256, 3)
    labels = pd.read_csv(tmp_path / "augment/output/labels.csv")
    assert labels["layout_path"].notna().all()
    assert set(labels["subject_id"]) == {"SN001", "SN002", "SN003"}


def test_afew_va_import_to_afew_va_layout(tmp_path, astronaut, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "AFEW-VA"
    build_afew_va(root, _face_frames(astronaut, 3), clip="001")
    build_afew_va(root, _face_frames(astronaut[:, ::-1], 3), clip="002")
    _cli("import", "afew-va", root, "-q")
    _cli("fit3dmm", "-q")
    _cli("synth-va", "--valence", "0.6", "--arousal", "0.3", "--any-source", "-q")
    _cli("render", "-q")
    _cli("blend", "--layout", "afew-va", "-q")
    out = import_dataset("afew-va", tmp_path / "augment/output/afew-va")
    assert sorted(out["subject_id"].unique()) == ["001", "002"]
    assert (out["raw_valence"] == 6).all() and (out["raw_arousal"] == 3).all()


def test_training_refuses_bad_input(tmp_path, astronaut, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cv2.imwrite(str(tmp_path / "astronaut.png"), astronaut[..., ::-1])
    _cli("fit3dmm", "astronaut.png", "-q")  # plain photos: no AU labels
    result = runner.invoke(app, ["synth-au", "train", "--out", "m.pt", "-q"])
    assert result.exit_code == 2 and "label" in result.output
    assert not (tmp_path / "m.pt").exists()  # nothing half-written
    (tmp_path / "fake.pt").write_bytes(b"not a checkpoint")
    result = runner.invoke(app, ["synth-au", "--model", "fake.pt", "--au", "12=3", "-q"])
    assert result.exit_code == 2 and "fake.pt" in result.output
    result = runner.invoke(app, ["import", "disfa", str(tmp_path), "-q"])
    assert result.exit_code == 2 and "ActionUnit_Labels" in result.output


def test_reimport_with_other_labels_refits(tmp_path, astronaut, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "photos"
    face = _face_frames(astronaut, 1)[0]
    for valence in (0.5, -0.5):
        build_folder(root, {"a/001.png": face},
                     pd.DataFrame({"path": ["a/001.png"], "valence": [valence], "arousal": [0.1]}))
        _cli("import", "folder", root, "--labels-csv", "labels.csv", "-q")
        _cli("fit3dmm", "-q")
        fits = read_manifest(tmp_path / "augment/fits.parquet", FITS, run_first="").df
        assert fits["label_valence"].tolist() == [valence]  # not the first import's label
