"""Issue 13's acceptance run, timed: 20 good photos alone, then the same 20 mixed with the whole
hostile corpus (``tests/hostile_corpus.py``, written here at run time), each through
``augmentface fit3dmm`` in a fresh interpreter on both cores (part of ``make bench``).

It checks what the acceptance asks and measures what it costs:

* the mixed run exits 1 (rows failed), never a traceback;
* every good photo keeps the status it gets alone (``ok``), every bad file gets its row and the
  status the corpus expects, and nothing gets a row twice;
* the mixed run's extra time over the good photos' run: the corpus's cost (the target is
  under a minute).

The good photos are the first 20 of ``../shared/faces/deepface`` (real photos, 330–4600 px,
some group photos) when present, else 20 shifted copies of skimage's astronaut. Results go to
``benchmarks/results_hostile.json``, and the table of kinds and statuses, as measured, to
``benchmarks/hostile_kinds.md`` (the README's table comes from it).

Run alone: ``python benchmarks/bench_hostile.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package
from tests.hostile_corpus import KINDS, NO_ROW, RUN_KILLERS, write_corpus, write_run_killer

from augmentface.atomic import atomic_write_text
from augmentface.imageio import list_images, manifest_text
from augmentface.manifest import read_manifest
from augmentface.stages.schemas import FITS

REPO = Path(__file__).resolve().parents[1]
GOOD = 20
SHARED_PHOTOS = REPO.parent / "shared" / "faces" / "deepface"
RESULTS_FILE = Path(__file__).with_name("results_hostile.json")
TABLE_FILE = Path(__file__).with_name("hostile_kinds.md")


def good_photos(folder: Path) -> list[str]:
    """Copy (or make) the good photos into ``folder``; their names."""
    folder.mkdir(parents=True, exist_ok=True)
    shared = list_images([SHARED_PHOTOS])[:GOOD] if SHARED_PHOTOS.is_dir() else []
    if len(shared) == GOOD:
        for path in shared:
            shutil.copyfile(path, folder / f"good_{path.name}")
        return [f"good_{p.name}" for p in shared]
    astronaut = data.astronaut()
    names = [f"good_astronaut{i:02d}.jpg" for i in range(GOOD)]
    for i, name in enumerate(names):
        Image.fromarray(np.roll(astronaut, 11 * (i + 1), axis=1)).save(folder / name, quality=95)
    return names


def fit3dmm(folder: Path, workdir: Path) -> dict:
    """Wall clock, exit code and output tail of ``augmentface fit3dmm FOLDER``."""
    command = [sys.executable, "-m", "augmentface.cli", "fit3dmm", str(folder)]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "-w", str(workdir), "-q"],
        capture_output=True,
        text=True,
        errors="replace",
        env={**os.environ, "GLOG_minloglevel": "2"},
        check=False,
    )
    seconds = time.perf_counter() - start
    output = done.stdout + done.stderr
    rows = read_manifest(workdir / "fits.parquet", FITS, run_first="").df
    statuses = {
        Path(p).relative_to(folder).as_posix(): s
        for p, s in zip(rows.image_path, rows.status, strict=True)
    }
    return {
        "seconds": seconds,
        "exit_code": done.returncode,
        "traceback": "Traceback" in output,
        "rows": len(rows),
        "duplicate_rows": int(rows.image_path.duplicated().sum()),
        "statuses": statuses,
    }


def table(expected: dict[str, str], got: dict[str, str]) -> str:
    """The markdown table of kinds: what each file is and the status it got."""
    lines = ["| File | What it is | Status |", "|---|---|---|"]
    for name in sorted(expected, key=str.lower):
        what = KINDS.get(name) or KINDS.get(_raw(name), "")
        shown = name if len(name) <= 40 else f"{name[:12]}…({len(name)} characters).png"
        shown = shown.replace("\n", "\\n").replace("|", "\\|")
        lines.append(f"| `{shown}` | {what} | {got.get(name, NO_ROW)} |")
    return "\n".join(lines) + "\n"


def _raw(name: str) -> str:
    return next((k for k in RUN_KILLERS if manifest_text(k) == name), name)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as scratch:
        scratch = Path(scratch)
        good_dir, mixed_dir = scratch / "good", scratch / "mixed"
        names = good_photos(good_dir)
        expected = write_corpus(mixed_dir, data.astronaut())
        for name in RUN_KILLERS:
            expected[manifest_text(name)] = write_run_killer(mixed_dir, name, data.astronaut())
        for name in names:
            shutil.copyfile(good_dir / name, mixed_dir / name)
        good_dir, mixed_dir = good_dir.resolve(), mixed_dir.resolve()
        alone = fit3dmm(good_dir, scratch / "w-good")
        mixed = fit3dmm(mixed_dir, scratch / "w-mixed")
    got = mixed.pop("statuses")
    good_alone = alone.pop("statuses")
    wrong = {k: [v, got.get(k, NO_ROW)] for k, v in expected.items() if got.get(k, NO_ROW) != v}
    good_changed = {
        n: [good_alone[n], got.get(n, NO_ROW)] for n in names if got.get(n) != good_alone[n]
    }
    results = {
        "good_photos": "deepface (shared)" if names[0] != "good_astronaut00.jpg" else "astronaut",
        "kinds": len(expected),
        "good_alone": {**alone, "ok": Counter(good_alone.values())["ok"]},
        "mixed": {**mixed, "status_counts": dict(Counter(got.values()))},
        "corpus_extra_s": mixed["seconds"] - alone["seconds"],
        "wrong_status": wrong,
        "good_status_changed": good_changed,
        "acceptance": (
            mixed["exit_code"] == 1
            and not mixed["traceback"]
            and mixed["duplicate_rows"] == 0
            and not wrong
            and not good_changed
            and mixed["seconds"] - alone["seconds"] < 60
        ),
    }
    atomic_write_text(RESULTS_FILE, json.dumps(results, indent=2) + "\n")
    atomic_write_text(TABLE_FILE, table(expected, got))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
