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
