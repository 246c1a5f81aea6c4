"""Soak: ``fit3dmm`` over 5,000 images in one process, with its resident memory sampled as it
goes (issue 13: MediaPipe leaks; the landmarker is reopened every 1,000 images). A benchmark,
not a CI test: it takes a few minutes.

Run: ``python benchmarks/bench_soak.py [N]``; prints RSS (MB) at each tenth of the run and the
growth from the first tenth to the end, and writes ``benchmarks/results_soak.json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from augmentface.atomic import atomic_write_text

IMAGES = 5_000
SIDE = 256  # small photos: the run is about the landmarker's memory, not decode time
RESULTS_FILE = Path(__file__).with_name("results_soak.json")


def write_photos(folder: Path, n: int) -> None:
    """``n`` distinct JPEGs (the astronaut shifted), so no decode is cached."""
    folder.mkdir(parents=True)
    face = np.asarray(Image.fromarray(data.astronaut()).resize((SIDE, SIDE)))
    for i in range(n):
        shifted = np.roll(face, (i % 7, (i // 7) % 11), axis=(0, 1))
        Image.fromarray(shifted).save(folder / f"{i:05d}.jpg", quality=90)


def rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def manifest_rows(path: Path) -> int:
    markers = path.glob("_part-*.json") if path.is_dir() else []
    return sum(json.loads(m.read_text())["rows"] for m in markers)


def main(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="augmentface-soak-") as tmp:
        scratch = Path(tmp)
        write_photos(scratch / "photos", n)
        command = [sys.executable, "-m", "augmentface.cli", "fit3dmm", str(scratch / "photos"),
                   "-w", str(scratch / "w"), "-q", "--allow-failures"]  # fmt: skip
        start = time.perf_counter()
        process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        samples = []  # (seconds, rows written, rss MB)
        while process.poll() is None:
            rss = rss_mb(process.pid)
            if rss is not None:
                rows = manifest_rows(scratch / "w" / "fits.parquet")
                samples.append((time.perf_counter() - start, rows, rss))
            time.sleep(1.0)
        seconds = time.perf_counter() - start
    by_tenth = {}
    for tenth in range(1, 11):
        reached = [s for s in samples if s[1] >= tenth * n // 10]
        if reached:
            by_tenth[tenth * 10] = round(reached[0][2], 1)
    first = next(iter(by_tenth.values()), None)
    peak = max(s[2] for s in samples) if samples else None
    results = {
        "images": n,
        "side_px": SIDE,
        "seconds": seconds,
        "images_per_s": n / seconds,
        "exit_code": process.returncode,
        "rss_mb_at_percent_done": by_tenth,
        "peak_rss_mb": peak,
        "growth_mb_first_tenth_to_peak": None if first is None else peak - first,
    }
    atomic_write_text(RESULTS_FILE, json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else IMAGES)
