"""Benchmark of the learned AU models on a DISFA-sized simulated set (a benchmark, not a test).

Run it with ``.venv/bin/python benchmarks/bench_learned_au.py [--epochs N] [--device cuda]``; it
prints a table and returns (from :func:`main`) a dict of the figures. Torch's thread count is
left as it is (all cores), which is what a user gets.

What it measures:

1. ``data``: 130,815 simulated frames (27 subjects × 4845, ``disfa_like_chunks``) to training
   data, once for both models: the three passes of ``training_data_from_chunks`` (subjects and
   labels, the expression basis's covariance, encoding), wall seconds, and the basis size.
2. ``cgan`` and ``caae``, each trained with the default :class:`TrainConfig` (batch 512, hidden
   256, latent 8, 10 epochs unless ``--epochs`` says otherwise) on the 80 % training
   subjects: seconds per epoch (median over epochs; the first includes torch's warm-up), steps
   per second, and training frames per second.
3. Sampling: ``generate_offsets`` on 100,000 label vectors in one call (samples per second,
   latent draw + generator + decode to (468, 3)), and ``LearnedAUSource.realize`` one call at a
   time as the synth stage calls it (1000 calls after 20 warm-ups).
4. Quality at this scale: ``evaluate_au_model`` on 4 fresh simulated subjects × 500 frames
   (1000 targets) for each model and for the rig (direct mode): mean ICC(3,1) and MAE over the
   AUs, their mean-predictor MAE, and the overall MMD².
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from augmentface.atomic import atomic_write_text
from augmentface.expression.au_evaluation import AUEvaluationConfig, evaluate_au_model
from augmentface.expression.learned.config import TrainConfig
from augmentface.expression.learned.data import TrainingData, training_data_from_chunks
from augmentface.expression.learned.source import LearnedAUSource
from augmentface.expression.learned.train import fit_au_model
from augmentface.expression.targets import RigSource, au_target, sample_rng
from augmentface.face.model import FaceModel, load_face_model
from augmentface.simulate.disfa_like import (
    DISFA_FRAMES_PER_SUBJECT,
    DISFA_SUBJECTS,
    DisfaLikeConfig,
    disfa_like_chunks,
    disfa_like_fits,
)

SAMPLES = 100_000
REALIZE_CALLS = 1000


RESULTS_FILE = Path(__file__).with_name("results_learned_au.json")


def _quality(source, heldout, model) -> dict:
    config = AUEvaluationConfig(n_targets=1000, diversity_labels=5, samples_per_label=4)
    table = evaluate_au_model(source, heldout, model, config).set_index("au")
    overall = table.loc["all"]
    return {
        "icc_mean": float(overall["icc"]),
        "mae_mean_over_aus": float(overall["mae"]),
        "mae_of_mean_predictor": float(overall["mae_mean"]),
        "mmd2": float(overall["mmd2"]),
        "diversity_rms_mm": float(overall["diversity_rms_mm"]),
        "icc_per_au": {au: round(float(v), 3) for au, v in table["icc"].drop("all").items()},
    }


def bench_model(data: TrainingData, config: TrainConfig, model: FaceModel, heldout) -> dict:
    """Training speed, sampling speed and quality of one model kind."""
    start = time.perf_counter()
    trained = fit_au_model(data, config)
    train_s = time.perf_counter() - start
    per_epoch = statistics.median(h.seconds for h in trained.history)
    steps = -(-data.summary.n_train_frames // config.batch_size)

    labels = np.random.default_rng(0).integers(0, 6, size=(SAMPLES, len(config.aus)))
    start = time.perf_counter()
    trained.generate_offsets(labels.astype(np.float32), np.random.default_rng(1))
    batch_s = time.perf_counter() - start

    source = LearnedAUSource(trained, model.rig)
    target = au_target({6: 2.0, 12: 3.0})
    for i in range(20):
        source.realize(target, i, sample_rng(0, "warm-up", i))
    start = time.perf_counter()
    for i in range(REALIZE_CALLS):
        source.realize(target, i, sample_rng(0, i))
    realize_s = time.perf_counter() - start
    return {
        "epochs": config.epochs,
        "train_seconds": train_s,
        "seconds_per_epoch": per_epoch,
        "steps_per_second": steps / per_epoch,
        "train_frames_per_second": data.summary.n_train_frames / per_epoch,
        "batch_samples_per_second": SAMPLES / batch_s,
        "realize_calls_per_second": REALIZE_CALLS / realize_s,
        "val_label_mae": trained.history[-1].val_label_mae,
        "val_label_mae_real": trained.history[-1].val_label_mae_real,
        "quality": _quality(source, heldout, model),
    }


def main(epochs: int = TrainConfig().epochs, device: str = "cpu") -> dict:
    """Run the benchmark, print its table and return its figures."""
    model = load_face_model()
    sim = DisfaLikeConfig(
        n_subjects=DISFA_SUBJECTS, frames_per_subject=DISFA_FRAMES_PER_SUBJECT, seed=0
    )
    heldout = disfa_like_fits(model, n_subjects=4, frames_per_subject=500, seed=1000)
    base = TrainConfig(epochs=epochs, device=device)
    start = time.perf_counter()
    data = training_data_from_chunks(lambda: disfa_like_chunks(model, sim), model.model_id, base)
    data_s = time.perf_counter() - start
    results: dict = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
            "device": device,
        },
        "frames": sim.n_frames,
        "data": {
            "seconds": data_s,
            "train_frames": data.summary.n_train_frames,
            "components": data.summary.n_components,
            "explained_variance": data.summary.explained_variance,
        },
        "direct_mode": _quality(RigSource(model.rig), heldout, model),
    }
    for kind in ("cgan", "caae"):
        results[kind] = bench_model(data, replace(base, model=kind), model, heldout)
    _print(results)
    return results


def _print(results: dict) -> None:
    data = results["data"]
    print(f"{results['frames']:,} simulated frames; machine {results['machine']}")
    print(
        f"  training data   {data['seconds']:6.1f} s   K = {data['components']} "
        f"({100 * data['explained_variance']:.1f} % variance), "
        f"{data['train_frames']:,} training frames"
    )
    for kind in ("cgan", "caae"):
        r = results[kind]
        print(
            f"  {kind} train      {r['seconds_per_epoch']:6.2f} s/epoch  "
            f"{r['steps_per_second']:6.0f} steps/s  {r['train_frames_per_second']:8.0f} frames/s  "
            f"({r['epochs']} epochs, {r['train_seconds']:.1f} s)"
        )
        print(
            f"  {kind} sample     {r['batch_samples_per_second']:8.0f} samples/s batched, "
            f"{r['realize_calls_per_second']:6.0f} realize calls/s"
        )
    for name in ("direct_mode", "cgan", "caae"):
        q = results[name] if name == "direct_mode" else results[name]["quality"]
        print(
            f"  {name:<12} ICC {q['icc_mean']:.3f}  MAE {q['mae_mean_over_aus']:.3f} "
            f"(mean predictor {q['mae_of_mean_predictor']:.3f})  MMD² {q['mmd2']:.4f}  "
            f"diversity {q['diversity_rms_mm']:.3f} mm"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    figures = main(epochs=args.epochs, device=args.device)
    atomic_write_text(RESULTS_FILE, json.dumps(figures, indent=2) + "\n")
    print(f"results written to {RESULTS_FILE}")
