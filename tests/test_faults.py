"""Fault tests (issue 13): ``kill -9`` of every stage at random points, then a rerun, gives the
same final outputs as a run that was never interrupted, with no duplicate rows."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from augmentface.manifest import read_manifest
from augmentface.stages.evaluate import EVALUATION_FILE
from augmentface.stages.schemas import EVALUATION, FITS, LABELS, RENDERS, SOURCES, TARGETS

KILLS_PER_STAGE = 3
KEEP_ALL = ("--max-source-residual", "9")  # the astronaut smiles: keep every output


def _stages(root: Path) -> list[tuple[str, list[str]]]:
    return [
        ("import", ["import", "folder", str(root)]),
        ("fit3dmm", ["fit3dmm"]),
        ("synth-au", ["synth-au", "--au", "12=3", "--au", "6=2", "-n", "2"]),
        ("render", ["render"]),
        ("blend", ["blend", *KEEP_ALL]),
        ("evaluate", ["evaluate"]),
    ]


#: Each stage's manifest, relative to the workdir, and its schema.
MANIFESTS = {
    "import": ("sources.parquet", SOURCES),
    "fit3dmm": ("fits.parquet", FITS),
    "synth-au": ("targets.parquet", TARGETS),
    "render": ("renders.parquet", RENDERS),
    "blend": ("output/labels.parquet", LABELS),
    "evaluate": (f"output/{EVALUATION_FILE}", EVALUATION),
}


def _command(workdir: Path, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "augmentface.cli", *args, "-w", str(workdir), "-q"]


def _run(workdir: Path, args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(_command(workdir, args), capture_output=True, text=True, check=False)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return time.perf_counter() - start


def _kill_at(workdir: Path, args: list[str], after_s: float) -> None:
    process = subprocess.Popen(
        _command(workdir, args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        process.wait(timeout=after_s)  # it may finish first: then there is nothing to kill
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def _rows(workdir: Path, stage: str) -> pd.DataFrame:
    name, schema = MANIFESTS[stage]
    df = read_manifest(workdir / name, schema, run_first="").df
    assert not df.duplicated(list(schema.key)).any(), f"{stage}: duplicate rows"
    scalars = [c.name for c in schema.columns if c.dtype != "array"]
    out = df[scalars].astype(str).replace(str(workdir), "<w>", regex=False)
    out = out.apply(lambda column: column.str.replace(str(workdir), "<w>", regex=False))
    return out.sort_values(list(schema.key)).reset_index(drop=True)


def _files(workdir: Path) -> dict[str, bytes]:
    images = workdir / "output" / "images"
    return {p.name: p.read_bytes() for p in sorted(images.iterdir())}


def test_kill_9_of_every_stage_then_a_rerun_gives_the_same_outputs(tmp_path, astronaut):
    root = tmp_path / "photos"
    (root / "alice").mkdir(parents=True)
    for i in range(6):
        shifted = np.roll(astronaut, (4 * i, 7 * i), axis=(0, 1))
        Image.fromarray(shifted).save(root / "alice" / f"{i:05d}.jpg", quality=95)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    rng = random.Random(12)
    for stage, args in _stages(root):
        seconds = _run(clean, args)
        for _ in range(KILLS_PER_STAGE):
            _kill_at(killed, args, rng.uniform(0.5, max(1.0, seconds)))
        _run(killed, args)
        pd.testing.assert_frame_equal(_rows(killed, stage), _rows(clean, stage))
    assert _files(killed) == _files(clean)
    assert len(_rows(killed, "evaluate")) == 12


# A child that runs fit3dmm in this process with fit_source aborting (SIGABRT, as MediaPipe's
# OpenCV assertion did) on the image named "aborts.png", and a native segfault on "segv.png".
_ABORTING_CHILD = """
import ctypes, os, sys
from augmentface.stages import fit3dmm
real = fit3dmm.fit_source
def fit_source(source, *args, **kwargs):
    if source.image_path.endswith("aborts.png"):
        os.abort()
    if source.image_path.endswith("segv.png"):
        ctypes.string_at(0)
    return real(source, *args, **kwargs)
fit3dmm.fit_source = fit_source
from augmentface.cli import app
app(sys.argv[1:])
"""


def test_a_native_crash_in_process_costs_one_row_on_the_next_run(tmp_path, astronaut):
    """In one process a native crash ends the run (nothing can catch it); the next run gives
    the item it died on status ``crashed`` without trying it again, finishes the rest, and
    later runs keep it so. A plain kill -9 records nothing: its item is simply redone."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.roll(astronaut, 9 * i, axis=1)).save(folder / f"good{i}.png")
    Image.fromarray(astronaut).save(folder / "aborts.png")
    Image.fromarray(astronaut).save(folder / "segv.png")
    workdir = tmp_path / "w"
    command = [sys.executable, "-c", _ABORTING_CHILD, "fit3dmm", str(folder), "-w", str(workdir)]
    codes = []
    for _ in range(4):
        done = subprocess.run([*command, "-q"], capture_output=True, text=True, check=False)
        codes.append(done.returncode)
    # died on the first crashing image, then on the second, then finished: exit 1 (failed rows)
    assert codes[:2] == [-signal.SIGABRT, -signal.SIGSEGV], codes
    assert codes[2:] == [1, 1], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    rows = read_manifest(workdir / "fits.parquet", FITS, run_first="").df
    status = {Path(p).name: s for p, s in zip(rows.image_path, rows.status, strict=True)}
    assert status == {"aborts.png": "crashed", "segv.png": "crashed"} | {
        f"good{i}.png": "ok" for i in range(3)
    }
    errors = dict(zip(rows.image_path.map(lambda p: Path(p).name), rows.error, strict=True))
    assert "Aborted" in errors["aborts.png"] and "Segmentation fault" in errors["segv.png"]
    journal = {p.name for p in (workdir / "fits.parquet").glob("_*")} - {"_lock"}
    assert {n for n in journal if not n.startswith("_part-")} == {"_crashed"}  # no _inflight
    # a new job (other parameters) starts with no record: both are tried again, and die again
    done = subprocess.run(
        [*command, "--proposals", "never", "-q"], capture_output=True, check=False
    )
    assert done.returncode == -signal.SIGABRT
