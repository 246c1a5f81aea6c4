"""Import + fit throughput on a generated DISFA-layout video (part of ``make bench``).

A 640x480 MJPG video of ``FRAMES`` frames (the astronaut, moved a few pixels per frame, 20 fps
as DISFA's) with its twelve AU label files is written to a scratch folder; then the two stages a
dataset goes through first are timed as one call each (wall clock, one process):
``run_import`` (layout check, label parsing, frame count) and ``run_fit3dmm`` on the source
manifest (frames decoded on demand + detect + fit), reported as frames per second. Then
``run_fit3dmm`` on a longer video (``SPEEDUP_FRAMES``) on every core, in this process and on a
local Dask cluster of 2 workers (start-up included): the speedup of ``--workers 2``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from augmentface.datasets.schema import DISFA_AUS
from augmentface.stages.execution import Execution
from augmentface.stages.fit3dmm import Fit3dmmConfig, run_fit3dmm
from augmentface.stages.import_sources import ImportStageConfig, run_import

FRAMES = 200
#: Frames of the speedup's video: ~30 s in one process, so that the seconds a local cluster
#: takes to start weigh as little as on a dataset (on the 200 frames, 3 s in one process, the
#: start made --workers 2 slower: 0.38x).
SPEEDUP_FRAMES = 2_000
SIZE = (640, 480)  # width, height


def write_disfa_subject(root: Path, subject: str = "SN001", frames: int = FRAMES) -> Path:
    """One DISFA subject of ``frames`` frames in the published layout; returns the root."""
    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    canvas = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
    face = cv2.resize(photo, (SIZE[1], SIZE[1]))
    video = root / "Videos_LeftCamera" / f"LeftVideo{subject}_comp.avi"
    video.parent.mkdir(parents=True)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, SIZE)
    for i in range(frames):
        frame = canvas.copy()
        x = 40 + (i % 40)  # the face drifts sideways, so every frame differs
        frame[:, x : x + SIZE[1]] = face
        writer.write(frame)
    writer.release()
    labels = root / "ActionUnit_Labels" / subject
    labels.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for au in DISFA_AUS:
        values = rng.integers(0, 6, frames)
        (labels / f"{subject}_au{au}.txt").write_text(
            "".join(f"{f},{v}\n" for f, v in enumerate(values, 1))
        )
    return root


def bench_import_and_fit(scratch: Path) -> dict:
    """Frames per second of ``import disfa`` and of ``fit3dmm`` on the imported frames."""
    root = write_disfa_subject(scratch / "DISFA")
    work = scratch / "dataset_work"
    start = time.perf_counter()
    imported = run_import("disfa", root, ImportStageConfig(workdir=work))
    import_s = time.perf_counter() - start
    start = time.perf_counter()
    fitted = run_fit3dmm([], Fit3dmmConfig(workdir=work, quiet=True))
    fit_s = time.perf_counter() - start
    long_work = scratch / "dataset_work_long"
    run_import(
        "disfa",
        write_disfa_subject(scratch / "DISFA_long", frames=SPEEDUP_FRAMES),
        ImportStageConfig(workdir=long_work),
    )
    pinned = os.sched_getaffinity(0)
    os.sched_setaffinity(0, range(os.cpu_count() or 1))  # workers need every core
    try:
        seconds = {}
        for workers in (1, 2):
            config = Fit3dmmConfig(
                workdir=scratch / f"dataset_work_{workers}",
                sources=long_work / "sources.parquet",
                execution=Execution(workers=workers),
                quiet=True,
            )
            start = time.perf_counter()
            run_fit3dmm([], config)
            seconds[workers] = time.perf_counter() - start
    finally:
        os.sched_setaffinity(0, pinned)
    return {
        "fit_all_cores_workers_1_s": seconds[1],
        "fit_all_cores_workers_2_s": seconds[2],
        "fit_workers_2_speedup": seconds[1] / seconds[2],
        "speedup_frames": SPEEDUP_FRAMES,
        "frames": FRAMES,
        "frame_size": list(SIZE),
        "import_seconds": import_s,
        "import_frames_per_s": imported.done / import_s,
        "fit_seconds": fit_s,
        "fit_frames_per_s": fitted.done / fit_s,
        "fitted_ok": fitted.done,
    }
