"""``augmentface experiment``: one fold of each estimator on a generated 5,000-frame tree
(part of ``make bench``).

The tree is made as the tests make theirs (``tests/experiment_trees``): distinct people from
the shared photos, each frame the project's render of the rig at planted AU intensities, written
as a DISFA root (one MJPG video and 12 label files per subject) and taken through ``import
disfa``, ``fit3dmm``, ``synth-au --csv`` (as many planted targets per subject as it has real
frames, rendered on its neutral frame), ``render`` and ``blend``; each step is timed. Then, for
fold 0 of DISFA's 3 subject-independent folds: the crops decoded into the cache (frames/s), and
per estimator and condition the training and evaluation throughput (frames/s; the CNN also
steps/s) and the held-out ICC(3,1) of AU12, AU25 and AU26. The load averages at start and end
(``os.getloadavg()``) and the wall time are recorded beside them: the cores may be shared.

Run alone: ``python benchmarks/bench_experiment.py [--subjects 10] [--frames 250]
[--steps 200] [--estimators hog-ridge,cnn]``; results go to
``benchmarks/results_experiment.json`` (``--out`` another file). Skips (exit 0, a note in the
JSON) when the shared photos are absent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.experiment_trees import ALL_PEOPLE, planted_subjects, planted_workdir  # noqa: E402

from augmentface.atomic import atomic_write_text  # noqa: E402
from augmentface.experiment.data import load_data  # noqa: E402
from augmentface.experiment.estimators import ESTIMATORS  # noqa: E402
from augmentface.experiment.run import ExperimentConfig, run_fold  # noqa: E402
from augmentface.face.detect import DetectConfig, FaceLandmarker  # noqa: E402
from augmentface.face.model import load_face_model  # noqa: E402

FACES = ROOT.parent / "shared" / "faces" / "deepface"
RESULTS_FILE = Path(__file__).with_name("results_experiment.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=10, help="people (at most 13)")
    parser.add_argument("--frames", type=int, default=250, help="real frames per subject")
    parser.add_argument("--steps", type=int, default=200, help="CNN optimiser steps")
    parser.add_argument("--crop-size", type=int, default=112, help="crop side (px)")
    parser.add_argument("--estimators", default=",".join(ESTIMATORS),
                        help=f"comma-separated, of {', '.join(ESTIMATORS)}")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS_FILE, help="results JSON")
    args = parser.parse_args()
    names = args.estimators.split(",")
    if unknown := set(names) - set(ESTIMATORS):
        parser.error(f"unknown estimators {sorted(unknown)}; allowed: {', '.join(ESTIMATORS)}")
    if not FACES.is_dir():
        atomic_write_text(args.out, json.dumps({"skipped": f"{FACES} absent"}) + "\n")
        return
    bench_start = time.perf_counter()
    results: dict = {"cpus": os.cpu_count(), "python": platform.python_version(),
                     "args": vars(args) | {"out": str(args.out)},
                     "loadavg_start": os.getloadavg()}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with FaceLandmarker(DetectConfig()) as landmarker:
            people = ALL_PEOPLE[: args.subjects]
            subjects = planted_subjects(
                FACES, landmarker, load_face_model(), frames=args.frames, people=people
            )
        steps = {"render planted frames": time.perf_counter() - start}
        workdir = planted_workdir(Path(tmp), subjects, augmented=args.frames, timings=steps)
        total = 2 * args.frames * args.subjects
        results["tree"] = {"frames": total, "seconds": time.perf_counter() - start,
                           "steps_seconds": steps}  # fmt: skip
        data = load_data(workdir, "au")
        for name in names:
            config = ExperimentConfig(workdir, estimator=name, steps=args.steps,
                                      crop_size=args.crop_size)  # fmt: skip
            fold = run_fold(data, config, 0)
            icc = {f"{r['condition']} {r['target']}": r["icc"] for r in fold["rows"]
                   if r["target"] in ("AU12", "AU25", "AU26")}  # fmt: skip
            timing = {}
            for condition, t in fold["timing"].items():
                timing[condition] = t | {
                    "train_frames_per_s": t["train_frames"] / t["train_s"],
                    "eval_frames_per_s": t["eval_frames"] / t["eval_s"],
                }
                if name == "cnn":
                    timing[condition]["steps_per_s"] = args.steps / t["train_s"]
            results[name] = {"crop_seconds": fold["crop_s"], "timing": timing, "icc_fold0": icc}
            print(name, json.dumps(results[name], indent=1), flush=True)
    results["loadavg_end"] = os.getloadavg()
    results["wall_seconds"] = time.perf_counter() - bench_start
    atomic_write_text(args.out, json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
