"""synth over a DISFA-sized fits manifest: peak memory must not grow with the faces.

A fits manifest of DISFA's size (27 subjects × 4845 frames = 130,815 rows, every FITS column
filled as fit3dmm fills it: landmarks, pose, identity and expression offsets, AU estimates,
blendshapes, the 12 DISFA AU labels from :mod:`augmentface.simulate.disfa_like`) is written
through ``ManifestWriter`` in fit3dmm's 200-row parts, never held whole; a tenth of it
(13,081 rows) the same way. ``augmentface synth-au --au 12=3 --any-source`` (one target, one
sample, every face) then runs on each in a fresh interpreter pinned to one core, which reports
its peak RSS (VmHWM). Reported per size: wall clock (start-up included), target rows per
second, peak RSS; the floor (a child that only imports the CLI and loads the face model); and
the ratio of the two peaks (target ≤ 1.3: the stage holds a batch of faces and a checkpoint).

Run alone: ``python benchmarks/bench_synth_stream.py [ROWS ...]`` (default 13081 130815);
``--keep DIR`` writes the manifests under DIR (3.3 GB) and reuses them on the next run. About
6 minutes on a 2-core VM: ~3.5 to write the fits (not measured), ~2.2 of synth-au.

Measured (2-core VM, one core each): 13,081 rows in 13.6 s, peak 311 MB; 130,815 rows in
117 s (1,120 rows/s), peak 324 MB; floor 195 MB; ratio 1.04. The version that read the fits
whole (``read_fitted``): 15.3 s, 796 MB; 134 s, 5,800 MB (ratio 7.3), same targets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from augmentface.expression.learned.labels import DISFA_AUS, label_column
from augmentface.face.model import load_face_model
from augmentface.manifest import ManifestWriter
from augmentface.manifest_stream import count_rows
from augmentface.simulate.disfa_like import (
    DISFA_FRAMES_PER_SUBJECT,
    DISFA_SUBJECTS,
    disfa_like_chunks,
)
from augmentface.stages.schemas import AU_NAMES, FITS

SIZES = (13_081, DISFA_SUBJECTS * DISFA_FRAMES_PER_SUBJECT)
PART_ROWS = 200  # fit3dmm's checkpoint (stages/fit3dmm.py)

# One CLI command in this interpreter, then its own peak RSS (ru_maxrss would be the parent's
# after exec; VmHWM is this process image's).
_CHILD = """
import json, sys, time
from pathlib import Path
start = time.perf_counter()
from augmentface.cli import app
code = 0
if sys.argv[1] == "--floor":
    from augmentface.face.model import identity_au_noise, load_face_model
    identity_au_noise(load_face_model().rig.au_numbers)
else:
    try:
        app(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code or 0
seconds = time.perf_counter() - start
status = Path("/proc/self/status").read_text().splitlines()
peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"code": code, "seconds": seconds, "peak_rss_mb": peak_kb / 1024}))
"""


def write_fits(path: Path, n: int) -> None:
    """``n`` DISFA-like fitted frames, subject by subject, written a part at a time."""
    model = load_face_model()
    rng = np.random.default_rng(0)
    provenance = {"params": {"bench": "synth_stream"}, "seed": None}
    written = 0
    with ManifestWriter(
        path, FITS, face_model_id=model.model_id, every_n=PART_ROWS, **provenance
    ) as writer:
        chunks = disfa_like_chunks(
            model, n_subjects=DISFA_SUBJECTS, frames_per_subject=DISFA_FRAMES_PER_SUBJECT,
            chunk_rows=1000,
        )  # fmt: skip
        for chunk in chunks:
            k = min(len(chunk.subject_ids), n - written)
            if k <= 0:
                break
            landmarks = rng.normal(256.0, 40.0, (k, 478, 3)).astype(np.float32)
            scores = rng.uniform(0.0, 0.1, (k, 52)).astype(np.float32)
            signed = chunk.au_intensities + rng.normal(0, 0.2, chunk.au_intensities.shape)
            for i in range(k):
                subject, frame = str(chunk.subject_ids[i]), int(chunk.frame_numbers[i])
                au = chunk.au_intensities[i]
                row = {
                    "image_path": f"/data/DISFA/LeftVideo{subject}_comp.avi#frame={frame}",
                    "face_index": 0,
                    "dataset": "disfa",
                    "subject_id": subject,
                    "clip_id": f"LeftVideo{subject}_comp",
                    "frame_index": frame,
                    **{label_column(a): float(chunk.labels[i, j]) for j, a in enumerate(DISFA_AUS)},
                    "n_faces": 1,
                    "source_size_bytes": 123_456_789,
                    "source_mtime_ns": 1_600_000_000_000_000_000,
                    "source_digest": f"{frame:032x}",
                    "width_px": 1024,
                    "height_px": 768,
                    "detection_source": "full_frame",
                    "bbox_px": np.array([300.0, 200.0, 700.0, 650.0]),
                    "landmarks_px": landmarks[i],
                    "rotation": np.eye(3),
                    "scale_px_per_mm": 3.1,
                    "translation_px": np.array([512.0, 400.0, 0.0]),
                    "yaw_deg": 2.0,
                    "pitch_deg": -3.0,
                    "roll_deg": 0.5,
                    "identity_offsets_model_mm": chunk.identity_offsets_model_mm[i],
                    "expression_offsets_model_mm": chunk.expression_offsets_model_mm[i],
                    "au_intensities": au,
                    "au_signed": signed[i].astype(np.float32),
                    **dict(zip(AU_NAMES, map(float, au), strict=True)),
                    "blendshape_scores": scores[i],
                    "status": "ok",
                    "error": None,
                }
                writer.add(row)
            written += k
    if written != n:
        raise SystemExit(f"the simulation holds {written} frames, fewer than {n}")


def child(*args: str) -> dict:
    """Wall clock and peak RSS of one command in a fresh interpreter on one core."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
        check=False,
    )
    try:
        result = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}") from None
    if result["code"] != 0:
        raise RuntimeError(f"{' '.join(args)} exited {result['code']}:\n{out.stderr[-3000:]}")
    return result


def bench_synth_stream(scratch: Path, sizes: tuple[int, ...] = SIZES) -> dict:
    """Per size: rows, seconds, rows/s, peak RSS of synth-au; the floor and the peaks' ratio."""
    runs = {}
    for n in sizes:
        fits = scratch / f"fits-{n}.parquet"
        if not fits.is_dir() or count_rows(fits) != n:
            start = time.perf_counter()
            write_fits(fits, n)
            print(f"wrote {n} fits rows in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        workdir = scratch / f"work-{n}"
        args = ("synth-au", "--au", "12=3", "--any-source", "--fits", str(fits))
        run = child(*args, "-w", str(workdir), "-q")
        runs[str(n)] = {**run, "rows_per_s": n / run["seconds"]}
        print(f"{n}: {json.dumps(runs[str(n)])}", file=sys.stderr)
    floor = child("--floor")
    smallest, largest = (runs[str(n)]["peak_rss_mb"] for n in (sizes[0], sizes[-1]))
    return {
        "part_rows": PART_ROWS,
        "runs": runs,
        "floor_peak_rss_mb": floor["peak_rss_mb"],
        "peak_rss_ratio": largest / smallest,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=list(SIZES))
    parser.add_argument("--keep", type=Path, help="write (and reuse) the manifests here")
    options = parser.parse_args()
    sizes = tuple(sorted(options.sizes))
    if options.keep:
        options.keep.mkdir(parents=True, exist_ok=True)
        print(json.dumps(bench_synth_stream(options.keep, sizes), indent=2))
    else:
        with tempfile.TemporaryDirectory(prefix="augmentface-bench-") as tmp:
            print(json.dumps(bench_synth_stream(Path(tmp), sizes), indent=2))
