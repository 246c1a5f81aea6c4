"""export-layout and evaluate stream their manifests (issue 12): the outputs of a whole read,
byte for byte, and memory that does not grow with the rows."""

from __future__ import annotations

import gc
import hashlib
import logging
import shutil
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from augmentface import manifest_groups
from augmentface.atomic import atomic_write_text
from augmentface.datasets.layouts import write_layout
from augmentface.errors import ImageReadError, UsageError
from augmentface.imageio import read_image, write_image_atomic
from augmentface.manifest import ManifestWriter, read_manifest, write_manifest
from augmentface.manifest_groups import RowGroups, TypedRows
from augmentface.manifest_index import ManifestIndex
from augmentface.manifest_stream import ManifestStream
from augmentface.stages import evaluate
from augmentface.stages.common import LABELS_FILE, OUTPUT_DIR, sample_name
from augmentface.stages.evaluate import EvaluateConfig, is_neutral, run_evaluate, summarise
from augmentface.stages.export_outputs import (
    AU_LABELLED_KINDS,
    FACE_KEY,
    ExportOutputsConfig,
    refuse_overwriting_sources,
    run_export_outputs,
)
from augmentface.stages.lineage import upstream_path
from augmentface.stages.schemas import (
    AU_NAMES,
    EVALUATION,
    FITS,
    GEOMETRY_AU_NAMES,
    LABELS,
    RENDERS,
)
from augmentface.video import write_video

Target = tuple[str, str, dict[str, float], tuple[float, float] | None, str | None]

#: Targets by kind: (target_id, kind, AUs, (valence, arousal), emotion).
TARGETS: dict[str, list[Target]] = {
    "au": [
        ("neutral", "au", {}, None, None),
        ("AU12=3", "au", {"AU12": 3.0}, None, None),
        ("AU4=2_AU1=1", "au", {"AU4": 2.0, "AU1": 1.0}, None, None),
    ],
    "va": [
        ("V+0.40_A+0.20", "va", {"AU12": 1.5}, (0.4, 0.2), None),
        ("V-0.50_A+0.60", "va", {"AU4": 2.5}, (-0.5, 0.6), None),
    ],
    "emotion": [("happiness", "emotion", {"AU6": 2.0}, None, "happiness")],
    "transfer": [("transfer-img7", "transfer", {"AU25": 1.0, "AU26": 2.0}, None, None)],
}
EVERY_KIND = ("au", "va", "emotion", "transfer")
PATH_FRAMES = 4


def _hash(*parts: Any) -> int:
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")


def _faces(n_images: int, shuffled: bool) -> list[tuple[str, int]]:
    """(image_path, face_index): every seventh image has two faces; sorted or not."""
    faces = [
        (f"/data/src/img{i:05d}.png", face)
        for i in range(n_images)
        for face in range(1 + (i % 7 == 3))
    ]
    if shuffled:
        faces.sort(key=lambda f: _hash(*f))
    return faces


def _label_row(
    out: Path, face: tuple[str, int], target: Target, sample: int, frame: int | None
) -> dict[str, Any]:
    """An ``ok`` labels row of blend (a frame of a smooth path when ``frame`` is given)."""
    image_path, face_index = face
    target_id, kind, aus, va, emotion = target
    if frame is not None:
        target_id = f"path-{frame:03d}"
    number = int(image_path[-9:-4])
    labelled = kind in ("au", "transfer")
    stem = sample_name(image_path, face_index, target_id, sample)
    return {
        "image_path": image_path,
        "face_index": face_index,
        "target_id": target_id,
        "sample": sample,
        "subject_id": f"S{number % 4}",
        "clip_id": None if number % 3 else f"clip{number % 2}",
        "sequence": None if frame is None else f"path{sample}",
        "frame": -1 if frame is None else frame,
        "kind": kind,
        **{n: float(aus.get(n, 0.0)) if labelled else aus.get(n) for n in AU_NAMES},
        "valence": None if va is None else va[0] + 0.01 * sample,
        "arousal": None if va is None else va[1],
        "va_class": -1 if va is None else 55,
        "emotion": emotion,
        "emotion_intensity": None if emotion is None else 0.5 + 0.1 * sample,
        "output_path": str(out / "images" / f"{stem}.png"),
        "method": "alpha",
        "seed": 7,
        "status": "ok",
        "error": None,
    }


#: What a failure row of blend holds (no output, method or seed: null integers).
FAILURE_COLUMNS = (
    *LABELS.key,
    *("subject_id", "clip_id", "sequence", "frame", "kind", *AU_NAMES),
    *("valence", "arousal", "va_class", "emotion", "emotion_intensity"),
)


def label_rows(
    out: Path,
    n_images: int,
    kinds: tuple[str, ...],
    *,
    samples: int = 2,
    paths: bool = True,
    shuffled: bool = False,
) -> list[dict[str, Any]]:
    """Blend's rows in its order: per face its targets, then (every fifth face) a smooth
    path of :data:`PATH_FRAMES` frames per sample; some rejected, some crashed."""
    rows = []
    targets = [t for kind in kinds for t in TARGETS[kind]]
    for f, face in enumerate(_faces(n_images, shuffled)):
        jobs = [(t, s, None) for t in targets for s in range(samples)]
        if paths and f % 5 == 2:
            jobs += [(TARGETS["va"][0], s, k) for s in range(samples) for k in range(PATH_FRAMES)]
        for target, sample, frame in jobs:
            row = _label_row(out, face, target, sample, frame)
            # Keyed on the row, not its path under tmp_path: the same rows fail in every run.
            fate = _hash(*(row[k] for k in LABELS.key)) % 29
            if fate == 0:
                row |= {"output_path": None, "status": "rejected", "error": "smile survives"}
            elif fate == 1:
                row = {k: row[k] for k in FAILURE_COLUMNS}
                row |= {"status": "crashed", "error": "worker died"}
            rows.append(row)
    return rows


def _provenance(params: dict[str, Any]) -> dict[str, Any]:
    return {"params": params, "seed": 7, "face_model_id": "test-model"}


def write_tree(
    workdir: Path,
    n_images: int,
    kinds: tuple[str, ...],
    *,
    images: bool = True,
    renders: bool = True,
    retried: bool = True,
    part_rows: int = 50,
    **options: Any,
) -> Path:
    """A workdir as blend leaves it: fits, renders (without rows unless ``renders``) and
    ``output/labels.parquet`` in parts of ``part_rows``; with ``retried``, a resumed run then
    finishes about half the crashed rows, which moves them to the end (a face's rows no
    longer together); with ``images``, a small image per output. Returns the labels path."""
    out = workdir / OUTPUT_DIR
    rows = label_rows(out, n_images, kinds, **options)
    fits, renders_path = workdir / "fits.parquet", workdir / "renders.parquet"
    labels = out / LABELS_FILE
    blendshapes = _provenance({"blendshape_names": ["mouthSmileLeft"]})
    with ManifestWriter(fits, FITS, every_n=200, **blendshapes) as writer:
        for face in dict.fromkeys((r["image_path"], r["face_index"]) for r in rows):
            row = {"image_path": face[0], "face_index": face[1], "dataset": "images"}
            writer.add({**row, "subject_id": "S", "status": "ok"})
    upstream = {"fits": str(fits), "targets": str(workdir / "targets.parquet")}
    with ManifestWriter(renders_path, RENDERS, every_n=200, **_provenance(upstream)) as writer:
        for row in rows if renders else []:
            points = np.arange(68)[:, None] + np.full((68, 2), _hash(row["target_id"]) % 500)
            key = {k: row[k] for k in LABELS.key}
            writer.add({**key, "status": "ok", "target_ibug68_px": points})
    provenance = _provenance({"renders": str(renders_path)})
    with ManifestWriter(labels, LABELS, every_n=part_rows, **provenance) as writer:
        for row in rows:
            writer.add(row)
    if retried:
        with ManifestWriter(labels, LABELS, resume=True, every_n=part_rows, **provenance) as w:
            for row in rows:
                if row["status"] == "crashed" and _hash("redo", row["target_id"]) % 2:
                    w.add(_label_row(out, (row["image_path"], row["face_index"]),
                                     _target_of(row), row["sample"], _frame_of(row)))  # fmt: skip
    if images:
        _write_images(labels)
    return labels


def _target_of(row: dict[str, Any]) -> Target:
    if not pd.isna(row["sequence"]):
        return TARGETS["va"][0]
    return next(t for ts in TARGETS.values() for t in ts if t[0] == row["target_id"])


def _frame_of(row: dict[str, Any]) -> int | None:
    return None if pd.isna(row["sequence"]) else row["frame"]


def _write_images(labels: Path) -> None:
    for path in read_manifest(labels, LABELS, run_first="").df["output_path"].dropna():
        colour = _hash(path) % 256
        image = np.full((16, 16, 3), colour, np.uint8)
        image[::2, ::3, 1] = 255 - colour
        write_image_atomic(Path(path), image)


def fake_measure(row: dict[str, Any], fit: Any, render: Any, _measurer: Any) -> dict[str, Any]:
    """Stands in for evaluate's measurement of one output: values drawn from its name, some
    missing, every 23rd output unreadable."""
    seed = _hash(row["output_path"])
    if seed % 23 == 0:
        raise ImageReadError(f"{row['output_path']}: truncated")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, 8 + len(AU_NAMES) + 2 * len(GEOMETRY_AU_NAMES))
    values[rng.uniform(size=values.size) < 0.1] = np.nan
    numbers = iter(values.tolist())
    metrics = {
        "output_path": row["output_path"],
        "redetected": bool(seed % 5),
        "identity_distance": next(numbers),
        "same_person": bool(seed % 3),
        "nme_mediapipe": next(numbers),
        "nme_dlib68": next(numbers),
        "seam_ratio": next(numbers),
        "outside_unchanged": None if seed % 4 else True,
        "geometry_baseline": "neutral render" if fit is not None else "source",
    }
    metrics |= {f"response_{n}": next(numbers) for n in AU_NAMES}
    metrics |= {f"geometry_{n}": next(numbers) for n in GEOMETRY_AU_NAMES}
    metrics |= {f"geometry_mp_{n}": next(numbers) for n in GEOMETRY_AU_NAMES}
    return metrics


def no_models(monkeypatch) -> None:
    """evaluate without MediaPipe or dlib: :func:`fake_measure` measures."""

    class Landmarker:
        def __init__(self, *_: Any) -> None:
            pass

        def __enter__(self) -> Landmarker:
            return self

    # Not through the process's model cache: a real landmarker must not be replaced there.
    monkeypatch.setattr(evaluate, "cached", lambda _name, factory: factory())
    monkeypatch.setattr(evaluate, "FaceLandmarker", Landmarker)
    monkeypatch.setattr(evaluate, "OutputMeasurer", lambda *_: None)
    monkeypatch.setattr(evaluate, "_evaluate_row", fake_measure)


def small_batches(monkeypatch, batch_rows: int = 13, group_rows: int = 7) -> None:
    """Batches and buckets far smaller than the groups: a face across batches, several
    buckets, a group larger than a bucket."""
    monkeypatch.setattr(manifest_groups, "BATCH_ROWS", batch_rows)
    monkeypatch.setattr(manifest_groups, "GROUP_ROWS", group_rows)


# --- the reference: export-layout as it was, reading the labels whole ---------------------------


def whole_read_export(config: ExportOutputsConfig) -> None:
    """``export-layout`` as it was when it read the labels whole (eb1e8b1), for comparison."""
    path = config.out_dir / LABELS_FILE
    finished = read_manifest(path, LABELS, run_first="augmentface blend")
    labels = finished.df
    root = config.root()
    if config.layout is not None and root is not None:
        refuse_overwriting_sources(root, labels["image_path"])
        ok = labels[(labels["status"] == "ok") & labels["output_path"].notna()].copy()
        images = (path.parent / "images").resolve()
        ok = ok[ok["output_path"].map(lambda p: Path(p).resolve().is_relative_to(images))]
        ok.loc[~ok["kind"].isin(AU_LABELLED_KINDS), list(AU_NAMES)] = np.nan
        renders_path = upstream_path(finished.meta, "renders", path)
        renders = ManifestIndex(renders_path, RENDERS, ["target_ibug68_px"])
        keys = ok[list(LABELS.key)].itertuples(index=False, name=None)
        ok["ibug68_px"] = [(renders.get(k) or {}).get("target_ibug68_px") for k in keys]
        written = write_layout(config.layout, ok, root)
        labels.loc[written.index, "layout_path"] = written["frame_ref"].where(
            written["frame_ref"].notna(), written["written_path"]
        )
        meta = finished.meta
        write_manifest(path, labels, LABELS, params=meta["params"], seed=meta.get("seed"),
                       face_model_id=meta.get("face_model_id"))  # fmt: skip
    paths = labels[labels["sequence"].notna()]
    key = ["image_path", "face_index", "sequence", "sample"]
    for (image_path, face, sequence, sample), group in paths.groupby(key, sort=True):
        stem = sample_name(image_path, int(face), str(sequence), int(sample))
        if (group["status"] == "ok").all():
            frames = [read_image(p) for p in group.sort_values("frame")["output_path"]]
            write_video(config.out_dir / "sequences" / f"{stem}.mp4", frames, config.fps)
    atomic_write_text(path.with_suffix(".csv"), labels.to_csv(index=False))


def _snapshot(workdir: Path) -> dict[str, Any]:
    """Every file written under ``output/`` (manifests aside) and the labels manifest's rows
    as read whole: dtypes, and each cell's type and repr."""
    out = workdir / OUTPUT_DIR
    files = {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and ".parquet" not in str(p.relative_to(out))
    }
    df = read_manifest(out / LABELS_FILE, LABELS, run_first="").df
    cells = [[f"{type(v).__name__}:{v!r}" for v in row] for row in df.itertuples(index=False)]
    return {"files": files, "dtypes": dict(df.dtypes.astype(str)), "cells": cells}


def _both(tmp_path: Path, layout: str | None, export) -> tuple[Any, Any]:
    """What the reference and ``export`` each leave in the same workdir (same paths) made
    afresh from ``tmp_path / "tree"``, or the UsageError each raised."""
    results = []
    for run in (whole_read_export, export):
        work = tmp_path / "work"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(tmp_path / "tree", work)
        try:
            run(ExportOutputsConfig(workdir=work, layout=layout))
        except UsageError as exc:
            assert not (work / OUTPUT_DIR / layout).exists(), "refused, yet written"
            results.append(str(exc))
            continue
        results.append(_snapshot(work))
    return results[0], results[1]


CASES = {
    "no layout, retried": dict(kinds=EVERY_KIND, layout=None),
    "no layout, in order": dict(kinds=EVERY_KIND, layout=None, retried=False),
    "flat, shuffled": dict(kinds=EVERY_KIND, layout="flat", shuffled=True),
    "disfa": dict(kinds=("au",), layout="disfa", paths=False),
    "afew-va, shuffled": dict(kinds=("va",), layout="afew-va", shuffled=True),
    "affwild2": dict(kinds=EVERY_KIND, layout="affwild2"),
    "disfa refuses VA rows": dict(kinds=("au", "va"), layout="disfa"),
    "flat, no points": dict(kinds=("au",), layout="flat", renders=False, paths=False),
}


@pytest.mark.parametrize("case", CASES)
def test_export_layout_writes_what_a_whole_read_wrote(tmp_path, monkeypatch, case):
    """labels.csv, the path videos, the layout and the rewritten labels manifest byte for
    byte as when the labels were read whole, with batches and buckets far smaller than a
    face (so the groups span batches, and out-of-order manifests take several buckets)."""
    options = dict(CASES[case])
    layout = options.pop("layout")
    write_tree(tmp_path / "tree", 9, **options)
    small_batches(monkeypatch)
    reference, streamed = _both(tmp_path, layout, run_export_outputs)
    if isinstance(reference, dict):
        assert reference["files"].keys() == streamed["files"].keys()
    assert streamed == reference


def test_export_layout_of_a_manifest_without_rows(tmp_path):
    """Headers alone (the whole read raised a KeyError here: an empty selection lost its
    columns), and the manifest stays a manifest without rows."""
    labels = write_tree(tmp_path, 2, ("au",), paths=False, retried=False)
    meta = read_manifest(labels, LABELS, run_first="").meta
    empty = pd.DataFrame({name: pd.Series([], dtype=object) for name in LABELS.names})
    write_manifest(labels, empty, LABELS, params=meta["params"], seed=7, face_model_id="m")
    run_export_outputs(ExportOutputsConfig(workdir=tmp_path, layout="flat"))
    out = tmp_path / OUTPUT_DIR
    assert (out / "labels.csv").read_text() == ",".join(LABELS.names) + "\n"
    columns = ["path", *(n for n in LABELS.names if n != "output_path"), "ibug68_px"]
    assert (out / "flat" / "labels.csv").read_text() == ",".join(columns) + "\n"
    assert not list((out / "flat").glob("images/*"))
    assert read_manifest(labels, LABELS, run_first="").df.empty


def test_typed_rows_keep_the_integer_columns_a_whole_read_makes_float(tmp_path):
    """Every crashed row (null seed) retried: no row read has a null seed, yet the earlier
    rows made the column float64 for read_manifest, so the batches say 7.0 too (a CSV of
    int64 batches would write 7 where labels.csv had 7.0)."""
    labels = write_tree(tmp_path, 9, ("au",), images=False, paths=False, retried=False)
    crashed = read_manifest(labels, LABELS, run_first="").df.query("status == 'crashed'")
    assert len(crashed)
    provenance = _provenance({"renders": str(tmp_path / "renders.parquet")})
    with ManifestWriter(labels, LABELS, resume=True, **provenance) as writer:
        for row in crashed.to_dict("records"):
            face, target = (row["image_path"], row["face_index"]), _target_of(row)
            writer.add(_label_row(tmp_path / OUTPUT_DIR, face, target, row["sample"], None))
    whole = read_manifest(labels, LABELS, run_first="").df
    streamed = pd.concat(TypedRows(labels, LABELS, run_first="").batches())
    assert whole["seed"].dtype == "float64" and whole["seed"].notna().all()
    pd.testing.assert_frame_equal(streamed.reset_index(drop=True), whole)


# --- RowGroups ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("retried", [False, True])
@pytest.mark.parametrize("max_rows", [1, 7, 10_000])
def test_row_groups_are_groupby_s_groups(tmp_path, monkeypatch, shuffled, retried, max_rows):
    """Faces (and subjects) in sorted key order, each face's rows in manifest order with
    their positions, from a manifest in key order or not, whatever the bucket size."""
    monkeypatch.setattr(manifest_groups, "BATCH_ROWS", 11)
    labels = write_tree(tmp_path, 9, EVERY_KIND, images=False, shuffled=shuffled,
                        retried=retried)  # fmt: skip
    rows = TypedRows(labels, LABELS, run_first="")
    whole = read_manifest(labels, LABELS, run_first="").df
    ok = whole[whole["status"] == "ok"]
    for key in (FACE_KEY, ("subject_id",)):
        groups = RowGroups(rows, key, ["output_path", "AU12"], max_rows=max_rows,
                           where=lambda b: b["status"] == "ok")  # fmt: skip
        expected = [g for _, g in ok.groupby(list(key), sort=True)]
        got = list(groups)
        assert len(groups) == len(expected) == len(got)
        for streamed, group in zip(got, expected, strict=True):
            pd.testing.assert_frame_equal(streamed, group[streamed.columns])
    # In key order without retries, faces come from runs: no ranks kept.
    faces = RowGroups(rows, FACE_KEY, [])
    assert (faces._ranks is None) == (not shuffled and not retried)


# --- evaluate -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffled", [False, True])
def test_evaluate_writes_what_a_whole_read_wrote(tmp_path, monkeypatch, shuffled):
    """The evaluation rows in the order a whole read gave them (faces sorted, neutral
    output first), evaluation.csv and the summary as summarise() of the whole manifests."""
    no_models(monkeypatch)
    small_batches(monkeypatch)
    labels_path = write_tree(tmp_path, 9, EVERY_KIND, images=False, shuffled=shuffled)
    report, summary = run_evaluate(EvaluateConfig(workdir=tmp_path, quiet=True))
    labels = read_manifest(labels_path, LABELS, run_first="").df
    path = labels_path.with_name("evaluation.parquet")
    evaluation = read_manifest(path, EVALUATION, run_first="").df
    ok = labels[labels["status"] == "ok"]
    order = [
        tuple(row[k] for k in EVALUATION.key)
        for _, face in ok.groupby(list(FACE_KEY), sort=True)
        for row in sorted(face.to_dict("records"), key=lambda r: not is_neutral(r))
    ]
    assert list(evaluation[list(EVALUATION.key)].itertuples(index=False, name=None)) == order
    assert report.done == (evaluation["status"] == "ok").sum()
    assert (evaluation["status"] == "unreadable").any()
    assert path.with_suffix(".csv").read_text() == evaluation.to_csv(index=False)
    expected = summarise(evaluation, labels).to_csv(index=False)
    assert summary.to_csv(index=False) == expected
    assert path.with_name(evaluate.SUMMARY_FILE).read_text() == expected


# --- memory -------------------------------------------------------------------------------------


class LiveRows:
    """The most rows held in DataFrames at once (every live DataFrame's length, summed),
    sampled each time a batch of a manifest is read."""

    def __init__(self, monkeypatch) -> None:
        self.most = 0
        read = TypedRows.batches

        def batches(rows: TypedRows, columns: Any = None) -> Any:
            for batch in read(rows, columns):
                live = sum(len(o) for o in gc.get_objects() if type(o) is pd.DataFrame)
                self.most = max(self.most, live)
                yield batch

        monkeypatch.setattr(TypedRows, "batches", batches)


def _traced_peak(work) -> int:
    """Peak bytes allocated (tracemalloc: Python objects and numpy buffers) by ``work()``."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _export(workdir: Path) -> None:
    run_export_outputs(ExportOutputsConfig(workdir=workdir))


def _evaluate(workdir: Path) -> None:
    run_evaluate(EvaluateConfig(workdir=workdir, quiet=True))


@pytest.mark.parametrize("stage", [_export, _evaluate], ids=["export-layout", "evaluate"])
def test_held_rows_do_not_grow_with_the_manifest(tmp_path, monkeypatch, caplog, stage):
    """From about 1,000 to 10,000 labels rows, out of face order (shuffled, retried), with
    batches of 250 rows and buckets of 300: the rows held in DataFrames at once stay about
    1,700 at both sizes (a few batches and a bucket); and what a stage allocates at its peak
    grows by less than half of what each added row costs when the rows are held (read
    whole: ~420 bytes): the key indexes of a few bytes a row (~2 bytes a row for export,
    ~140 for evaluate), no rows."""
    no_models(monkeypatch)
    caplog.set_level(logging.ERROR, logger="augmentface")  # captured records would pile up
    small_batches(monkeypatch, batch_rows=250, group_rows=300)
    rows, held, peaks, live = {}, {}, {}, {}
    for n_images in (62, 620):
        work = tmp_path / str(n_images)
        labels = write_tree(work, n_images, EVERY_KIND, images=False, renders=False,
                            paths=False, shuffled=True, part_rows=1000)  # fmt: skip
        rows[n_images] = len(ManifestStream(labels, LABELS, run_first=""))
        held[n_images] = _traced_peak(lambda p=labels: read_manifest(p, LABELS, run_first=""))
        with monkeypatch.context() as patch:
            probe = LiveRows(patch)
            peaks[n_images] = _traced_peak(lambda work=work: stage(work))
            live[n_images] = probe.most
    assert 950 < rows[62] < 1050 and 9_500 < rows[620] < 10_500
    assert live[620] <= 2_500 and live[620] <= live[62] + 100, live
    a_row = (held[620] - held[62]) / (rows[620] - rows[62])
    grown = (peaks[620] - peaks[62]) / (rows[620] - rows[62])
    assert grown < a_row / 2, (grown, a_row)
