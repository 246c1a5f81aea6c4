"""Issue 13, deliverable 7: a hostile input corpus through ``fit3dmm``.

Every kind of bad or odd file of :mod:`tests.hostile_corpus` gets exactly its status, in one
row; a bad file costs that row and never the run; the inputs are left as they were; and the
work per image is bounded (landmarker calls counted, never timed). The corpus is written at
test time, with 20 good photos among the bad ones (issue 13's acceptance run).
"""

from __future__ import annotations

import faulthandler
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from augmentface.cli import app
from augmentface.face.detect import (
    MAX_REFINEMENTS_PER_FACE,
    MAX_TILES,
    DetectConfig,
    FaceLandmarker,
)
from augmentface.imageio import manifest_text
from augmentface.manifest import read_manifest
from augmentface.stages import fit3dmm as fit_stage
from augmentface.stages.common import StageReport
from augmentface.stages.fit3dmm import Fit3dmmConfig, run_fit3dmm
from augmentface.stages.schemas import FITS
from tests.hostile_corpus import NO_ROW, RUN_KILLERS, write_corpus, write_run_killer

#: Landmarker calls one image may cost: the full frame, every tile, the refinements.
CALL_CEILING = 1 + MAX_TILES + MAX_REFINEMENTS_PER_FACE * DetectConfig().max_faces

#: A hang (a pipe opened for reading, an endless decode) ends the test process with every
#: thread's traceback instead of stalling CI.
WATCHDOG_S = 300

#: Twenty good photos (issue 13's acceptance: they all stay ``ok`` among the corpus).
GOOD_PHOTOS = tuple(f"good_{i}{('.png', '.jpg', '.webp')[i % 3]}" for i in range(20))


@dataclass(frozen=True)
class CorpusRun:
    folder: Path  # resolved, as fit3dmm records it
    workdir: Path
    expected: dict[str, str]  # path relative to folder -> status
    report: StageReport
    rows: pd.DataFrame
    calls: Counter[str]  # image_path -> landmarker calls
    before: dict[str, object]
    after: dict[str, object]


def _snapshot(folder: Path) -> dict[str, object]:
    """Every entry under ``folder``: the bytes of regular files, the kind of anything else
    (a pipe is never opened, links are not followed)."""
    entries: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                entries[str(path)] = path.read_bytes()
            elif stat.S_ISLNK(mode):
                entries[str(path)] = ("link", os.readlink(path))
            else:
                entries[str(path)] = ("kind", stat.S_IFMT(mode))
    return entries


def _relative(image_path: str, folder: Path) -> str:
    return Path(image_path).relative_to(folder).as_posix()


def _one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory, astronaut) -> CorpusRun:
    root = tmp_path_factory.mktemp("hostile")
    folder = root / "in"
    expected = write_corpus(folder, astronaut)
    for name in RUN_KILLERS:  # each also runs alone in a child process (below)
        expected[manifest_text(name)] = write_run_killer(folder, name, astronaut)
    folder = folder.resolve()
    for i, name in enumerate(GOOD_PHOTOS):
        Image.fromarray(np.roll(astronaut, 11 * (i + 1), axis=1)).save(folder / name)
        expected[name] = "ok"
    before = _snapshot(folder)
    calls: Counter[str] = Counter()
    current: list[str] = []
    real_fit_source, real_run = fit_stage.fit_source, FaceLandmarker._run

    def fit_source(source, *args, **kwargs):
        current[:] = [source.image_path]
        calls[source.image_path] += 0  # every image read gets an entry
        return real_fit_source(source, *args, **kwargs)

    def counting_run(self, *args, **kwargs):
        calls[current[0]] += 1
        return real_run(self, *args, **kwargs)

    workdir = root / "w"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fit_stage, "fit_source", fit_source)
        patch.setattr(FaceLandmarker, "_run", counting_run)
        faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
        try:
            report = run_fit3dmm([folder], Fit3dmmConfig(workdir=workdir, quiet=True))
        finally:
            faulthandler.cancel_dump_traceback_later()
    rows = read_manifest(workdir / "fits.parquet", FITS, run_first="").df
    return CorpusRun(folder, workdir, expected, report, rows, calls, before, _snapshot(folder))


def _statuses(rows: pd.DataFrame, folder: Path) -> dict[str, str]:
    return {_relative(p, folder): s for p, s in zip(rows.image_path, rows.status, strict=True)}


def test_the_corpus_has_at_least_30_kinds(corpus_run):
    kinds = set(corpus_run.expected) - set(GOOD_PHOTOS)
    assert len(kinds) >= 30
    assert {"ok", "unreadable", "too_large", "no_face", "missing", NO_ROW} <= set(
        corpus_run.expected.values()
    )


def test_every_hostile_kind_gets_its_status(corpus_run):
    """One row per image with exactly its status; a failed row's error is one line naming
    its file; the good photos are fitted; the run returned a report instead of raising."""
    run = corpus_run
    rows = run.rows
    assert not rows.image_path.duplicated().any()  # one image, one row (its largest face)
    got = _statuses(rows, run.folder)
    wrong = {
        name: (want, got.get(name, NO_ROW))
        for name, want in run.expected.items()
        if got.get(name, NO_ROW) != want
    }
    assert wrong == {}, "kind: (expected, got)"
    assert set(got) <= set(run.expected), "rows for files the corpus does not hold"
    assert all(got[name] == "ok" for name in GOOD_PHOTOS)
    failed = rows[rows.status != "ok"]
    for image_path, error in zip(failed.image_path, failed.error, strict=True):
        _assert_one_line_naming(error, image_path)
    assert rows[rows.status == "ok"].error.isna().all()
    assert run.report.done == (rows.status == "ok").sum()
    assert dict(run.report.failed) == dict(Counter(failed.status))
    rotated = rows[rows.image_path == str(run.folder / "exif_rotated.jpg")].iloc[0]
    assert (rotated.width_px, rotated.height_px) == (512, 384)  # upright, as a viewer shows it
    # every fitted kind is the same upright face: an orientation, frame or channel read wrong
    # would turn it or lose it
    ok = rows[rows.status == "ok"]
    good_roll = ok[ok.image_path == str(run.folder / GOOD_PHOTOS[0])].roll_deg.iloc[0]
    turned = dict(zip(ok.image_path, ok.roll_deg - good_roll, strict=True))
    assert {p: d for p, d in turned.items() if abs(d) > 10} == {}
    # nothing under the folder was written, removed, replaced or re-linked
    assert run.after == run.before


def _assert_one_line_naming(error: object, image_path: str) -> None:
    """A failed row's error: one line, starting with its file (its whitespace as one space)."""
    assert isinstance(error, str) and "\n" not in error and "Traceback" not in error, error
    named = _one_line(image_path)
    assert error.startswith(named + ": ") and error.count(named) == 1, error


def test_the_corpus_costs_bounded_landmarker_calls(corpus_run):
    """Work per image is bounded by construction: a refused file never reaches the landmarker,
    a found face costs one call, a faceless image at most the full frame, every tile and a
    few refinements: never one call per strip tile or per pixel row."""
    run = corpus_run
    status = dict(zip(run.rows.image_path, run.rows.status, strict=True))
    assert set(run.calls) == set(status)  # every row's image went through fit_source once
    over = {p: n for p, n in run.calls.items() if n > CALL_CEILING}
    assert over == {}, f"more than {CALL_CEILING} landmarker calls"
    for image_path, n in run.calls.items():
        if status[image_path] in ("unreadable", "too_large", "missing"):
            assert n == 0, (image_path, n)  # refused before any pixel reached MediaPipe
        elif status[image_path] == "ok":
            assert n == 1, (image_path, n)  # the full frame found the face: no proposals
        else:
            assert 1 <= n <= CALL_CEILING, (image_path, n)
    assert sum(run.calls.values()) <= CALL_CEILING * len(status)


def test_the_corpus_through_the_cli(corpus_run, tmp_path):
    """The CLI on the corpus: exit code 1 (rows failed), 0 with --allow-failures, never a
    traceback. It resumes a copy of the run above: the fitted images are skipped and every
    failed one is tried again, with the same status."""
    runner = CliRunner()
    workdir = tmp_path / "w"
    shutil.copytree(corpus_run.workdir, workdir)
    args = ["fit3dmm", str(corpus_run.folder), "-w", str(workdir), "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # typer's Exit(1), nothing else
    result = runner.invoke(app, [*args, "--allow-failures"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    rows = read_manifest(workdir / "fits.parquet", FITS, run_first="").df
    assert not rows.image_path.duplicated().any()
    assert _statuses(rows, corpus_run.folder) == _statuses(corpus_run.rows, corpus_run.folder)
    assert _snapshot(corpus_run.folder) == corpus_run.before


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("side_32767.png", id="side_32767"),
        pytest.param("latin1_caf\udce9.png", id="non_utf8_name"),
    ],
)
def test_a_run_killer_costs_one_row(tmp_path, astronaut, kind):
    """The kinds that stopped the whole run before issue 13's fixes, each alone in a folder,
    through the CLI in a child process (an abort would end the test run): the run ends
    normally (exit 0 or 1, no traceback) with the file's row."""
    assert kind in RUN_KILLERS
    folder = tmp_path / "in"
    expected = write_run_killer(folder, kind, astronaut)
    workdir = tmp_path / "w"
    command = "from augmentface.cli import app; app()"
    env = {**os.environ, "GLOG_minloglevel": "2"}
    done = subprocess.run(
        [sys.executable, "-c", command, "fit3dmm", str(folder), "-w", str(workdir), "-q"],
        capture_output=True,
        text=True,
        errors="replace",
        env=env,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == (0 if expected == "ok" else 1), output[-2000:]
    assert "Traceback" not in output
    rows = read_manifest(workdir / "fits.parquet", FITS, run_first="").df
    assert len(rows) == 1 and rows.status.iloc[0] == expected


def test_a_named_pipe_given_by_name_is_never_opened(tmp_path):
    """A pipe named on the command line gets 'missing' (not a regular file) without being
    opened: opening a pipe for reading blocks until some other process writes to it.

    Deterministic, no timeout: whenever the run holds the pipe open for reading (a writer's
    non-blocking open then succeeds), it is released with end-of-file and the test fails."""
    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["report"] = run_fit3dmm(
                [pipe], Fit3dmmConfig(workdir=tmp_path / "w", quiet=True)
            )
        except BaseException as exc:  # reported below, in the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    opened = False
    while worker.is_alive():
        try:
            fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader holds the pipe
            worker.join(0.05)
            continue
        os.close(fd)  # a reader holds it (blocked until now): let it go with end-of-file
        opened = True
        worker.join(0.05)
    assert "error" not in outcome, outcome["error"]
    assert not opened, "the run opened the pipe for reading"
    rows = read_manifest(tmp_path / "w" / "fits.parquet", FITS, run_first="").df
    assert list(rows.status) == ["missing"]


def test_a_face_search_over_its_time_budget_costs_its_row(tmp_path, astronaut):
    """The proposal pass stops at the image's time budget with status ``timeout`` (one line
    naming the file); a face the full-frame pass finds never waits on proposals."""
    folder = tmp_path / "in"
    folder.mkdir()
    noise = np.random.default_rng(3).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "noise.png")
    Image.fromarray(astronaut).save(folder / "face.png")
    config = Fit3dmmConfig(workdir=tmp_path / "w", quiet=True, time_budget_s=1e-6)
    report = run_fit3dmm([folder], config)
    rows = read_manifest(tmp_path / "w" / "fits.parquet", FITS, run_first="").df
    got = _statuses(rows, folder.resolve())
    assert got == {"noise.png": "timeout", "face.png": "ok"}
    error = rows[rows.status == "timeout"].error.iloc[0]
    _assert_one_line_naming(error, str(folder.resolve() / "noise.png"))
    assert "budget" in error
    assert dict(report.failed) == {"timeout": 1}
