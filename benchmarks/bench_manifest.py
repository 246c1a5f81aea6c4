"""Manifest writing at scale (part of ``make bench``): peak memory must not grow with the rows.

Each size runs in a fresh interpreter (so its peak RSS is its own): ``ManifestWriter`` writes N
rows of the fits schema, every array filled (about 8k float32 per row, as a fitted face), in
parts of :data:`PART_ROWS` rows, as fit3dmm does. Reported per N: wall clock, rows per second
and peak RSS; and the ratio of the largest N's peak RSS to the smallest's (1.0 = flat).

Run alone: ``python benchmarks/bench_manifest.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SIZES = (2_000, 8_000)
PART_ROWS = 200  # fit3dmm's checkpoint (stages/fit3dmm.py)

_CHILD = """
import json, resource, sys, time
from pathlib import Path
import numpy as np
from augmentface.manifest import ManifestWriter
from augmentface.stages.schemas import FITS

n, part_rows, path = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
rng = np.random.default_rng(0)
row = {"status": "ok", "error": None}
for c in FITS.columns:
    if c.dtype == "array":
        shape = tuple(8 if s == -1 else s for s in c.shape)
        row[c.name] = rng.normal(size=shape).astype(np.float32)
    elif not c.nullable and c.name not in row:
        row[c.name] = {"string": "x", "int64": 0, "float64": 0.0, "bool": False}[c.dtype]
start = time.perf_counter()
with ManifestWriter(path, FITS, params={}, seed=None, face_model_id=None,
                    every_n=part_rows) as writer:
    for i in range(n):
        writer.add({**row, "image_path": f"img/{i:07d}.jpg"})
seconds = time.perf_counter() - start
# ru_maxrss survives exec on Linux (it would report the parent's peak): VmHWM is this
# process image's own.
status = Path("/proc/self/status")
if status.is_file():
    peak_mb = next(int(line.split()[1]) for line in status.read_text().splitlines()
                   if line.startswith("VmHWM:")) / 1024
else:
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb}))
"""


def bench_manifest_writer(scratch: Path) -> dict:
    """Wall clock, rows/s and peak RSS of writing each of :data:`SIZES` rows."""
    runs = {}
    for n in SIZES:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(n), str(PART_ROWS), str(scratch / f"fits-{n}")],
            check=True,
            capture_output=True,
            text=True,
        )
        run = json.loads(out.stdout.strip().splitlines()[-1])
        runs[str(n)] = {**run, "rows_per_s": n / run["seconds"]}
    smallest, largest = (runs[str(n)]["peak_rss_mb"] for n in (SIZES[0], SIZES[-1]))
    return {"part_rows": PART_ROWS, "runs": runs, "peak_rss_ratio": largest / smallest}


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="augmentface-bench-") as tmp:
        print(json.dumps(bench_manifest_writer(Path(tmp)), indent=2))
