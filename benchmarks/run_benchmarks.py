"""Throughput benchmark of augmentface's stages (a benchmark, not a test: it never fails).

Run it with ``make bench`` or ``.venv/bin/python benchmarks/run_benchmarks.py``; it takes a
minute or two. It prints a table and writes everything to ``benchmarks/results.json``.

What it measures, in images per second (median of 30 timed single-image calls after 3 warm-ups,
``time.perf_counter``), on skimage's astronaut photo at 512x512 and padded to 1024x768 (JPEG):

1. ``fit3dmm``: JPEG decode (``read_image``) + ``FaceLandmarker.detect`` + ``fit_face``.
2. ``render+blend+write``: decode + ``render_expression`` (a smile: AU6=3, AU12=4, with the
   built-in expression-detail layer weighted as the render stage weights it) + alpha
   ``blend_face`` + ``encode_image(".jpg")`` written to a file; also each part alone, and the
   same without the detail layer (``render_blend_write_no_details``).
3. ``floor``: decode + one ``cv2.remap`` of the face region + alpha blend + encode + write,
   the least any re-render of the face can cost (what bounds stage 2).
4. ``end-to-end``: stage 1 + stage 2 for one image and one target, in memory (one decode).
5. ``pipeline``: ``run_pipeline`` (the CLI's ``run``) on 4 copies of the 512 photo with
   ``DEFAULT_TARGETS()``, outputs per second overall (manifests, PNG crops, contact sheet).
6. ``evaluate_100``: ``run_evaluate`` (the CLI's ``evaluate``) on a work directory of 100 outputs
   (4 shifted/cropped PNG copies of the 512 photo x 25 targets, built with ``run_pipeline``),
   wall clock of one whole call (model loading included), then of a second call (dlib's models
   already loaded);
   target: 100 outputs in under 60 s on one core.
7. ``dataset``: ``import disfa`` and ``fit3dmm`` on its frames for a generated 200-frame
   640x480 DISFA-layout video (``bench_datasets.py``), frames per second of each; and fit3dmm
   of a 2,000-frame video on every core in-process against ``--workers 2`` (a local Dask
   cluster): the speedup.
8. ``manifest``: ``ManifestWriter`` writing 2,000 and 8,000 fitted-face rows, each in a fresh
   process (``bench_manifest.py``): rows per second and peak RSS, which must not grow with the
   rows (ratio ~1).

The learned AU models are timed by ``bench_learned_au.py`` (all cores, as a user trains them;
``make bench`` runs both).

The process is pinned to CPU 0 (``os.sched_setaffinity``) where the OS allows it and the
BLAS/OpenMP pools are limited to one thread, to approximate the issue's one-core targets;
MediaPipe's and OpenCV's own threads then share that core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _pin_to_one_core() -> str:
    """Pin this process to CPU 0 when the OS allows it; says what was done."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (os.sched_setaffinity unavailable)"
    try:
        os.sched_setaffinity(0, {0})
    except OSError as exc:
        return f"not pinned ({exc})"
    return "pinned to CPU 0 with os.sched_setaffinity"


# Pinned before numpy, OpenCV and MediaPipe start any thread pool.
PINNING = _pin_to_one_core()

# ruff: noqa: E402 - the imports below must follow the environment set-up above.
import datetime
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import skimage.data
from bench_datasets import bench_import_and_fit
from bench_manifest import bench_manifest_writer

from augmentface.atomic import atomic_write_text
from augmentface.blend import blend_face
from augmentface.expression.targets import ExpressionTarget, au_target, va_target
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.face.fitting import FaceFit, fit_face
from augmentface.face.model import FaceModel, identity_au_noise, load_face_model
from augmentface.frames import offsets_model_to_image
from augmentface.imageio import encode_image, read_image
from augmentface.pipeline import DEFAULT_TARGETS, PipelineConfig, run_pipeline
from augmentface.render.detail_maps import builtin_detail_maps
from augmentface.render.details import DetailsInput, apply_details, detail_weights
from augmentface.render.face_render import render_expression
from augmentface.render.warp import warp_face
from augmentface.stages.evaluate import EvaluateConfig, run_evaluate

WARMUP = 3
REPEATS = 30
PIPELINE_COPIES = 4
SMILE = {6: 3, 12: 4}
RESULTS_FILE = Path(__file__).resolve().parent / "results.json"
#: The issue's one-core targets, images/s at 512x512.
TARGETS = {"fit3dmm": 25.0, "render_blend_write": 40.0, "end_to_end": 15.0}
#: The project's evaluate target: this many outputs in under this many seconds, one core.
EVALUATE_OUTPUTS = 100
EVALUATE_TARGET_S = 60.0


# --------------------------------------------------------------------------------------------
# Timing helpers


def time_call(func: Callable[[], object], repeats: int = REPEATS, warmup: int = WARMUP) -> dict:
    """Median and spread of ``func``'s wall time over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        func()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    return {
        "median_ms": 1e3 * median,
        "min_ms": 1e3 * min(seconds),
        "max_ms": 1e3 * max(seconds),
        "images_per_s": 1.0 / median,
        "repeats": repeats,
    }


def max_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


# --------------------------------------------------------------------------------------------
# Inputs


def make_inputs(folder: Path) -> dict[str, Path]:
    """The astronaut photo as JPEG at 512x512 and resized/edge-padded to 1024x768."""
    small = skimage.data.astronaut()
    big = cv2.resize(small, (768, 768), interpolation=cv2.INTER_CUBIC)
    big = np.pad(big, ((0, 0), (128, 128), (0, 0)), mode="edge")
    paths = {}
    for name, image in (("512x512", small), ("1024x768", big)):
        paths[name] = folder / f"astronaut_{name}.jpg"
        paths[name].write_bytes(encode_image(image, ".jpg"))
    return paths


def smile_delta_px(fit: FaceFit, model: FaceModel) -> np.ndarray:
    """(468, 3) vertex displacement in px from the fitted expression to the smile."""
    target = model.rig.offsets(model.rig.vector(SMILE))
    return offsets_model_to_image(
        target - fit.expression_offsets_model_mm, fit.rotation, fit.scale_px_per_mm
    )


# --------------------------------------------------------------------------------------------
# The stages as single-image calls


def fit_one(path: Path, lm: FaceLandmarker, model: FaceModel):
    """Stage 1: decode, detect, fit. Returns (image, landmarks, fit)."""
    image = read_image(path)
    faces = lm.detect(image)
    if not faces:
        raise RuntimeError(f"{path}: no face found")
    return image, faces[0].landmarks_px, fit_face(faces[0].landmarks_px, model)


def smile_details(fit: FaceFit, model: FaceModel) -> DetailsInput:
    """The built-in detail maps weighted for the smile as the render stage weights them."""
    maps = builtin_detail_maps(model)
    aus = model.rig.au_numbers
    weights = detail_weights(
        maps, aus, model.rig.vector(SMILE), fit.au_intensities, identity_au_noise(aus)
    )
    return DetailsInput(maps, weights)


def render_write(
    image, landmarks, delta, model: FaceModel, out: Path, details: DetailsInput | None
) -> None:
    """Render the smile, alpha-blend it and write a JPEG."""
    face = render_expression(image, landmarks, delta, model, details=details)
    blended = blend_face(image, face.image_rgb, face.alpha, face.roi, "alpha")
    out.write_bytes(encode_image(blended, ".jpg"))


def remap_maps(roi: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """float32 source maps of the roi, shifted by a smooth sub-pixel field (a stand-in warp)."""
    x0, y0, x1, y1 = roi
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    shift = np.float32(1.5) * np.sin(ys / np.float32(17.0))
    return xs + shift, ys - shift


def floor_one(path: Path, maps, alpha: np.ndarray, roi, out: Path) -> None:
    """Stage 3: decode + one remap of the face region + alpha blend + encode + write."""
    image = read_image(path)
    crop = cv2.remap(image, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    blended = blend_face(image, crop, alpha, roi, "alpha")
    out.write_bytes(encode_image(blended, ".jpg"))


def end_to_end_one(path: Path, lm: FaceLandmarker, model: FaceModel, out: Path) -> None:
    """Stage 4: fit3dmm then render + blend + write, one decode, one target."""
    image, landmarks, fit = fit_one(path, lm, model)
    render_write(
        image, landmarks, smile_delta_px(fit, model), model, out, smile_details(fit, model)
    )


# --------------------------------------------------------------------------------------------
# Benchmarks per input size


def bench_size(path: Path, lm: FaceLandmarker, model: FaceModel, scratch: Path) -> dict:
    """Every per-image measurement for one input file."""
    out = scratch / f"out_{path.stem}.jpg"
    image, landmarks, fit = fit_one(path, lm, model)
    delta = smile_delta_px(fit, model)
    details = smile_details(fit, model)
    face = render_expression(image, landmarks, delta, model, details=details)
    blended = blend_face(image, face.image_rgb, face.alpha, face.roi, "alpha")
    maps = remap_maps(face.roi)
    x0, y0, x1, y1 = face.roi
    src = np.asarray(landmarks)[: len(delta)]
    warp = warp_face(image, src, src + delta, model)
    return {
        "roi_px": [x1 - x0, y1 - y0],
        "fit3dmm": time_call(lambda: fit_one(path, lm, model)),
        "fit3dmm_parts": {
            "decode": time_call(lambda: read_image(path)),
            "detect": time_call(lambda: lm.detect(image)),
            "fit_face": time_call(lambda: fit_face(landmarks, model)),
        },
        "render_blend_write": time_call(
            lambda: render_write(read_image(path), landmarks, delta, model, out, details)
        ),
        "render_blend_write_no_details": time_call(
            lambda: render_write(read_image(path), landmarks, delta, model, out, None)
        ),
        "detail_weights": dict(zip(details.maps.au_numbers, details.weights.tolist(), strict=True)),
        "render_parts": {
            "decode": time_call(lambda: read_image(path)),
            "render_expression": time_call(
                lambda: render_expression(image, landmarks, delta, model, details=details)
            ),
            "render_expression_no_details": time_call(
                lambda: render_expression(image, landmarks, delta, model)
            ),
            "details_layer": time_call(
                lambda: apply_details(
                    warp.image_rgb, src + delta, warp.roi, model, details, warp.triangle_ids
                )
            ),
            "blend_alpha": time_call(
                lambda: blend_face(image, face.image_rgb, face.alpha, face.roi, "alpha")
            ),
            "encode_jpeg": time_call(lambda: encode_image(blended, ".jpg")),
            "encode_write_jpeg": time_call(lambda: out.write_bytes(encode_image(blended, ".jpg"))),
        },
        "floor": time_call(lambda: floor_one(path, maps, face.alpha, face.roi, out)),
        "end_to_end": time_call(lambda: end_to_end_one(path, lm, model, out)),
    }


def traced_peak_mb(path: Path, lm: FaceLandmarker, model: FaceModel, out: Path) -> float:
    """tracemalloc's peak over a few end-to-end calls (Python and NumPy heap, not MediaPipe's)."""
    tracemalloc.start()
    try:
        for _ in range(5):
            end_to_end_one(path, lm, model, out)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def bench_pipeline(path: Path, scratch: Path) -> dict:
    """run_pipeline on copies of one photo with the default targets; outputs per second."""
    inputs = scratch / "pipeline_inputs"
    inputs.mkdir()
    for i in range(PIPELINE_COPIES):
        (inputs / f"copy{i}.jpg").write_bytes(path.read_bytes())
    targets = DEFAULT_TARGETS()
    start = time.perf_counter()
    reports = run_pipeline(
        [inputs], targets, PipelineConfig(workdir=scratch / "pipeline_work", quiet=True)
    )
    seconds = time.perf_counter() - start
    outputs = reports[-1].done if reports[-1].stage == "blend" else 0
    return {
        "images": PIPELINE_COPIES,
        "targets": len(targets),
        "outputs": outputs,
        "seconds": seconds,
        "outputs_per_s": outputs / seconds,
        "images_per_s": PIPELINE_COPIES / seconds,
        "stages": {r.stage: {"done": r.done, "failed": r.n_failed} for r in reports},
    }


def evaluate_sources(folder: Path) -> Path:
    """4 PNG variants of the 512 astronaut: as is, rolled by a few px, two crops resized back."""
    image = skimage.data.astronaut()
    variants = (
        image,
        np.roll(image, (6, -8), axis=(0, 1)),
        cv2.resize(image[12:500, 16:504], (512, 512), interpolation=cv2.INTER_AREA),
        cv2.resize(image[0:480, 24:504], (512, 512), interpolation=cv2.INTER_CUBIC),
    )
    folder.mkdir()
    for i, variant in enumerate(variants):
        (folder / f"astronaut_v{i}.png").write_bytes(encode_image(variant, ".png"))
    return folder


def evaluate_targets() -> list[ExpressionTarget]:
    """25 distinct targets: the 8 defaults plus 17 AU and VA variations."""
    extra = [
        *(au_target({12: k}) for k in (1.0, 2.0, 3.0, 5.0)),
        *(au_target({6: k, 12: k}) for k in (1.0, 2.0, 4.0, 5.0)),
        *(au_target({4: k}) for k in (2.0, 4.0)),
        *(au_target({26: k}) for k in (2.0, 4.0)),
        au_target({1: 2.0, 2: 2.0}),
        *(va_target(v, a) for v, a in ((0.4, 0.2), (0.5, -0.3), (-0.3, 0.3), (0.0, 0.5))),
    ]
    targets = [*DEFAULT_TARGETS(), *extra]
    assert len({t.target_id for t in targets}) == len(targets) == 25
    return targets


def bench_evaluate(scratch: Path) -> dict:
    """run_evaluate on a work directory of >= 100 outputs: a cold call, then a warm one."""
    workdir = scratch / "evaluate_work"
    targets = evaluate_targets()
    sources = evaluate_sources(scratch / "evaluate_inputs")
    start = time.perf_counter()
    reports = run_pipeline(
        [sources], targets, PipelineConfig(workdir=workdir, quiet=True, contact_sheet=False)
    )
    build_s = time.perf_counter() - start
    config = EvaluateConfig(workdir=workdir, quiet=True)
    runs = []
    for _ in range(2):  # the second call overwrites the first's evaluation files
        start = time.perf_counter()
        report, _summary = run_evaluate(config)
        runs.append((time.perf_counter() - start, report))
    (cold_s, cold), (warm_s, warm) = runs
    outputs = cold.done + cold.n_failed
    per_100 = cold_s * EVALUATE_OUTPUTS / outputs if outputs else float("inf")
    return {
        "images": len(list(sources.iterdir())),
        "targets": len(targets),
        "pipeline_outputs": reports[-1].done,
        "pipeline_seconds": build_s,
        "outputs": outputs,
        "evaluated_ok": cold.done,
        "failed": dict(cold.failed),
        "seconds": cold_s,
        "outputs_per_s": outputs / cold_s,
        "seconds_per_100": per_100,
        "warm_seconds": warm_s,
        "warm_outputs_per_s": (warm.done + warm.n_failed) / warm_s,
        "model_loading_seconds_est": cold_s - warm_s,
        "target_seconds_per_100": EVALUATE_TARGET_S,
        "verdict": "PASS" if per_100 < EVALUATE_TARGET_S else "BELOW",
        "note": "seconds: the first whole run_evaluate call in this process, model loading "
        "included; warm_seconds: a second call, where dlib's models are already loaded "
        "(lru_cache) but MediaPipe's landmarker is created again as every call does; "
        "seconds_per_100 scales the first call to 100 outputs.",
    }


# --------------------------------------------------------------------------------------------
# Report


def machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "pinning": PINNING,
        "opencv_threads": cv2.getNumThreads(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "note": "MediaPipe may run more than one thread; pinned, they share the one core.",
    }


def verdicts(sizes: dict) -> dict:
    """Each 512x512 figure beside its target, PASS or BELOW."""
    at512 = sizes["512x512"]
    return {
        name: {
            "images_per_s": at512[name]["images_per_s"],
            "target": target,
            "ratio": at512[name]["images_per_s"] / target,
            "verdict": "PASS" if at512[name]["images_per_s"] >= target else "BELOW",
        }
        for name, target in TARGETS.items()
    }


def _row(label: str, stats: dict) -> str:
    return f"  {label:<28} {stats['median_ms']:8.2f} ms {stats['images_per_s']:9.1f} img/s"


def print_report(results: dict) -> None:
    m = results["machine"]
    print(f"\naugmentface benchmark  {results['timestamp']}")
    print(f"machine: {m['cpu_count']} CPUs, {m['platform']}, Python {m['python']}")
    print(f"{m['pinning']}; OpenCV threads {m['opencv_threads']}; {m['note']}")
    for size, r in results["sizes"].items():
        print(f"\n{size}  (face region {r['roi_px'][0]}x{r['roi_px'][1]} px)  median per image")
        print(_row("1 fit3dmm", r["fit3dmm"]))
        for part, stats in r["fit3dmm_parts"].items():
            print(_row(f"    {part}", stats))
        print(_row("2 render+blend+write", r["render_blend_write"]))
        print(_row("  without the detail layer", r["render_blend_write_no_details"]))
        for part, stats in r["render_parts"].items():
            print(_row(f"    {part}", stats))
        print(_row("3 floor (remap+blend+write)", r["floor"]))
        ratio = r["render_blend_write"]["median_ms"] / r["floor"]["median_ms"]
        print(f"    stage 2 / floor: {ratio:.1f}x")
        print(_row("4 end-to-end", r["end_to_end"]))
    p = results["pipeline"]
    print(
        f"\n5 pipeline: {p['images']} images x {p['targets']} targets -> {p['outputs']} outputs "
        f"in {p['seconds']:.2f} s = {p['outputs_per_s']:.1f} outputs/s "
        f"({p['images_per_s']:.2f} images/s)"
    )
    e = results["evaluate_100"]
    print(
        f"\n6 evaluate: {e['images']} images x {e['targets']} targets -> {e['outputs']} outputs "
        f"({e['evaluated_ok']} ok) in {e['seconds']:.2f} s = {e['outputs_per_s']:.2f} outputs/s "
        f"(model loading included); second call {e['warm_seconds']:.2f} s = "
        f"{e['warm_outputs_per_s']:.2f} outputs/s"
    )
    d = results["dataset"]
    print(
        f"\n7 dataset: import disfa {d['import_frames_per_s']:.0f} frames/s; fit3dmm on its "
        f"{d['frames']} video frames ({d['frame_size'][0]}x{d['frame_size'][1]}) "
        f"{d['fit_frames_per_s']:.1f} frames/s ({d['fitted_ok']} ok); {d['speedup_frames']} "
        f"frames on every core {d['fit_all_cores_workers_1_s']:.1f} s in-process, "
        f"{d['fit_all_cores_workers_2_s']:.1f} s with --workers 2 "
        f"(speedup {d['fit_workers_2_speedup']:.2f}, target >= 1.6)"
    )
    m = results["manifest"]
    runs = ", ".join(
        f"{n} rows {r['rows_per_s']:.0f} rows/s peak RSS {r['peak_rss_mb']:.0f} MB"
        for n, r in m["runs"].items()
    )
    print(
        f"\n8 manifest (parts of {m['part_rows']} rows): {runs}; peak RSS ratio "
        f"{m['peak_rss_ratio']:.2f}"
    )
    print("\ntargets (512x512, one core):")
    for name, v in results["verdicts"].items():
        print(
            f"  {name:<20} {v['images_per_s']:7.1f} img/s  target >= {v['target']:.0f}  "
            f"({v['ratio']:.2f}x)  {v['verdict']}"
        )
    print(
        f"  {'evaluate (100 out.)':<20} {e['seconds_per_100']:7.1f} s      "
        f"target <  {e['target_seconds_per_100']:.0f} s  "
        f"({e['target_seconds_per_100'] / e['seconds_per_100']:.2f}x)  {e['verdict']}"
    )
    mem = results["memory"]
    print(
        f"\npeak RSS {mem['max_rss_mb']:.0f} MB; tracemalloc peak (end-to-end, 512) "
        f"{mem['tracemalloc_peak_end_to_end_mb']:.1f} MB"
    )
    print(f"results written to {RESULTS_FILE}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="augmentface-bench-") as tmp:
        scratch = Path(tmp)
        inputs = make_inputs(scratch)
        model = load_face_model()
        with FaceLandmarker(DetectConfig()) as lm:
            sizes = {name: bench_size(path, lm, model, scratch) for name, path in inputs.items()}
            traced = traced_peak_mb(inputs["512x512"], lm, model, scratch / "traced.jpg")
        pipeline = bench_pipeline(inputs["512x512"], scratch)
        evaluate_100 = bench_evaluate(scratch)
        dataset = bench_import_and_fit(scratch)
        manifest = bench_manifest_writer(scratch)
    results = {
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "warmup": WARMUP,
        "repeats": REPEATS,
        "sizes": sizes,
        "pipeline": pipeline,
        "evaluate_100": evaluate_100,
        "dataset": dataset,
        "manifest": manifest,
        "verdicts": verdicts(sizes),
        "memory": {"max_rss_mb": max_rss_mb(), "tracemalloc_peak_end_to_end_mb": traced},
    }
    atomic_write_text(RESULTS_FILE, json.dumps(results, indent=2) + "\n")
    print_report(results)


if __name__ == "__main__":
    main()
