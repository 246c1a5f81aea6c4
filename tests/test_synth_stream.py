"""synth streams its fits: the rows, order and parameters of a run that read them whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from augmentface.expression.targets import au_target
from augmentface.face.detect import BLENDSHAPE_NAMES
from augmentface.manifest import ManifestWriter, read_manifest
from augmentface.manifest_stream import ManifestStream
from augmentface.stages import synth
from augmentface.stages.common import manifest_digest
from augmentface.stages.fitted import read_fitted
from augmentface.stages.schemas import FITS, N_AUS, TARGETS

SMILING = BLENDSHAPE_NAMES.index("mouthSmileLeft")


def _face(model, i: int, rng: np.random.Generator, *, ok: bool, labelled: bool) -> dict:
    """One fitted face with the columns synth reads; every third one smiles."""
    row = {
        "image_path": f"/data/img{i:03d}.png",
        "face_index": i % 2,
        "dataset": "images",
        "subject_id": f"S{i % 3}",
        "clip_id": None if i % 4 else f"clip{i % 5}",
        "status": "ok" if ok else "no_face",
        "error": None if ok else "no face",
    }
    if ok:
        scores = rng.uniform(0.0, 0.05, size=52).astype(np.float32)
        scores[SMILING] = 0.6 if i % 3 == 0 else 0.01
        row |= {
            "au_signed": rng.normal(0.0, 0.5, N_AUS).astype(np.float32),
            "identity_offsets_model_mm": rng.normal(0, 1, (468, 3)).astype(np.float32),
            "blendshape_scores": scores,
        }
    if labelled:
        row |= {"label_AU12": float(3 * (i % 3 == 0)), "label_AU6": float(i % 2)}
    return row


def write_fits(path: Path, model, n: int = 23, *, labelled: bool = False) -> None:
    """A fits manifest in parts of 4 rows with failures, then a resumed run that redoes some
    faces (a failure made ok, an ok one failed): keys in several parts."""
    rng = np.random.default_rng(5)
    provenance = {"params": {}, "seed": None, "face_model_id": model.model_id}
    with ManifestWriter(path, FITS, every_n=4, **provenance) as writer:
        for i in range(n):
            writer.add(_face(model, i, rng, ok=i not in (4, 11), labelled=labelled))
    with ManifestWriter(path, FITS, resume=True, every_n=2, **provenance) as writer:
        for i, ok in ((11, True), (7, False), (2, True)):
            writer.add(_face(model, i, rng, ok=ok, labelled=labelled))


def _targets() -> list:
    return [au_target({12: 3.0}), au_target({4: 2.0, 1: 1.0})]


def _run(workdir: Path, fits: Path, **config) -> synth.StageReport:
    settings = synth.SynthConfig(workdir=workdir, fits=fits, quiet=True, **config)
    return synth.run_synth(_targets(), settings)


@pytest.mark.parametrize("labelled", [False, True])
def test_synth_writes_the_rows_of_the_whole_fits_in_their_order(tmp_path, model, labelled):
    fits = tmp_path / "fits.parquet"
    write_fits(fits, model, labelled=labelled)
    report = _run(tmp_path, fits, samples=2)
    targets = read_manifest(tmp_path / "targets.parquet", TARGETS, run_first="synth")
    # What the stage read whole: ok faces in read_manifest's order (last row of a key).
    whole = read_fitted(fits, model)
    faces = whole.to_dict("records")
    if labelled:  # labelled frames: neutral sources only, by default
        faces = [f for f in faces if synth.is_neutral_face(f)]
    expected = [
        (f["image_path"], f["face_index"], t.target_id, s)
        for f in faces
        for t in _targets()
        for s in range(2)
    ]
    got = list(targets.df[list(TARGETS.key)].itertuples(index=False, name=None))
    assert got == expected and report.done == len(expected) > 0
    assert targets.meta["params"]["neutral_only"] is labelled
    assert targets.meta["params"]["fits_digest"] == manifest_digest(whole, synth.FIT_COLUMNS_USED)
    assert len(whole) == 21  # 23 faces, img004 failed, img007 failed on its retry
    # A rerun of the same job finds every row done.
    again = _run(tmp_path, fits, samples=2)
    assert (again.done, again.skipped) == (0, len(expected))


def test_faces_are_decoded_a_batch_at_a_time_with_the_same_rows(tmp_path, model, monkeypatch):
    fits = tmp_path / "fits.parquet"
    write_fits(fits, model)
    _run(tmp_path / "whole", fits)
    seen: list[int] = []
    batches = ManifestStream.batches

    def spy(self, *args, **kwargs):
        for batch in batches(self, *args, **kwargs):
            seen.append(len(batch))
            yield batch

    monkeypatch.setattr(synth, "FACE_BATCH", 3)
    monkeypatch.setattr(ManifestStream, "batches", spy)
    _run(tmp_path / "batched", fits)
    assert seen and max(seen) <= 3
    a, b = (
        read_manifest(tmp_path / run / "targets.parquet", TARGETS, run_first="synth").df
        for run in ("whole", "batched")
    )
    assert len(a) == len(b) == 21 * 2
    for name in TARGETS.names:
        if TARGETS.column(name).dtype == "array":
            assert all(np.array_equal(x, y) for x, y in zip(a[name], b[name], strict=True))
        else:
            pd.testing.assert_series_equal(a[name], b[name])


def test_a_changed_fit_starts_synth_afresh(tmp_path, model):
    fits = tmp_path / "fits.parquet"
    write_fits(fits, model)
    _run(tmp_path, fits)
    digest = read_manifest(tmp_path / "targets.parquet", TARGETS, run_first="").meta
    rng = np.random.default_rng(9)
    provenance = {"params": {}, "seed": None, "face_model_id": model.model_id}
    with ManifestWriter(fits, FITS, resume=True, **provenance) as writer:
        writer.add(_face(model, 3, rng, ok=True, labelled=False))  # a refit of img003
    report = _run(tmp_path, fits)
    changed = read_manifest(tmp_path / "targets.parquet", TARGETS, run_first="").meta
    assert changed["params"]["fits_digest"] != digest["params"]["fits_digest"]
    assert (report.done, report.skipped) == (21 * 2, 0)


def _sorted_rows(path: Path) -> pd.DataFrame:
    df = read_manifest(path, TARGETS, run_first="synth").df
    df = df.sort_values(list(TARGETS.key)).reset_index(drop=True)
    df["expression_offsets_model_mm"] = df["expression_offsets_model_mm"].map(np.ndarray.tobytes)
    df["au_intensities"] = df["au_intensities"].map(np.ndarray.tobytes)
    df["source_residual"] = df["source_residual"].map(np.ndarray.tobytes)
    return df


def test_synth_runs_on_the_stage_runner_shards_and_dask_give_the_same_rows(tmp_path, model):
    """synth is a stage of the runner: ``--shard 0/2`` plus ``1/2``, and a local Dask cluster
    of 2 workers, each give the rows of the in-process run."""
    from augmentface.stages.execution import Execution, Shard

    fits = tmp_path / "fits.parquet"
    write_fits(fits, model)
    _run(tmp_path / "whole", fits, samples=2)
    for i in range(2):
        report = _run(tmp_path / "sharded", fits, samples=2, execution=Execution(shard=Shard(i, 2)))
        assert report.done > 0  # both shards had faces
    _run(tmp_path / "dask", fits, samples=2, execution=Execution(workers=2, rows_per_task=8))
    whole = _sorted_rows(tmp_path / "whole" / "targets.parquet")
    for other in ("sharded", "dask"):
        pd.testing.assert_frame_equal(_sorted_rows(tmp_path / other / "targets.parquet"), whole)
