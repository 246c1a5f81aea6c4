"""Training a learned AU model (CGAN or CAAE) on a fitted, labelled manifest.

Reproducible: the subject split, the initial weights, the batch order and every noise draw come
from ``config.seed`` (torch's global generator is forked and seeded for the run and restored
after it), so the same data and config give identical weights on the CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from augmentface.expression.au_rig import INTENSITY_MAX
from augmentface.expression.learned.caae import CAAE
from augmentface.expression.learned.cgan import CGAN
from augmentface.expression.learned.config import TrainConfig, TrainConfigError
from augmentface.expression.learned.data import TrainingData, prepare_training_data
from augmentface.expression.learned.nets import Dims, draw_latent
from augmentface.expression.learned.trained import EpochStats, TrainedAUModel
from augmentface.expression.ridge import RidgeProbe
from augmentface.face.model import FaceModel

#: Validation frames (at most) whose labels are generated after every epoch.
_MONITOR_ROWS = 4096


def soft_labels(labels: torch.Tensor, width: float) -> torch.Tensor:
    """``clip(labels + δ, 0, 5)`` with ``δ ~ U(−width, width)`` per entry (FACS units).

    Labels are integers that stand for a range of intensities; spreading them over that range
    keeps the generator from learning five separate clusters per AU.
    """
    if width == 0:
        return labels
    noise = (torch.rand(labels.shape, device=labels.device) * 2.0 - 1.0) * width
    return (labels + noise).clamp(0.0, INTENSITY_MAX)


def _device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainConfigError("device 'cuda' asked for, but torch sees no CUDA device")
    return device


class _Monitor:
    """Label error of generated validation samples, read by a ridge probe fitted on training."""

    def __init__(self, data: TrainingData, standardised: np.ndarray, config: TrainConfig):
        train = data.is_train
        self.probe = RidgeProbe.fit(standardised[train], data.labels[train])
        rows = np.flatnonzero(~train)
        rng = np.random.default_rng(config.seed)
        rows = np.sort(rng.choice(rows, size=min(len(rows), _MONITOR_ROWS), replace=False))
        self.labels = data.labels[rows]
        self.identity = data.identity_codes[rows]
        # A fixed latent draw, from numpy, so monitoring never touches torch's generator.
        self.latent = draw_latent(config.model, len(rows), config.latent_dim, rng)
        self.real_mae = self._mae(standardised[rows]) if len(rows) else float("nan")

    def _mae(self, standardised: np.ndarray) -> float:
        return float(np.mean(np.abs(self.probe.predict(standardised) - self.labels)))

    def generated_mae(self, generator: torch.nn.Module, uses_identity: bool) -> float:
        if not len(self.labels):
            return float("nan")
        device = next(generator.parameters()).device
        inputs = [self.latent, self.labels / INTENSITY_MAX]
        if uses_identity:
            inputs.append(self.identity)
        with torch.no_grad():
            out = generator(*(torch.from_numpy(np.asarray(a)).to(device) for a in inputs))
        return self._mae(out.cpu().numpy())


def epochs_to_run(n_frames: int, config: TrainConfig) -> int:
    """``config.epochs``, or more when a small manifest would give fewer than
    ``config.min_steps`` optimiser steps: measured on 3,000 simulated frames, 90 steps
    generated expressions at a third of their size (a smile at 1.0 mm RMS instead of 2.5),
    900 steps at the right size."""
    steps_per_epoch = max(1, math.ceil(n_frames / config.batch_size))
    return max(config.epochs, math.ceil(config.min_steps / steps_per_epoch))


def fit_au_model(
    data: TrainingData,
    config: TrainConfig,
    progress: Callable[[EpochStats], None] | None = None,
) -> TrainedAUModel:
    """Train the networks of ``config.model`` on prepared :class:`TrainingData`.

    Parameters
    ----------
    data : TrainingData
        From :func:`~augmentface.expression.learned.data.prepare_training_data` or
        :func:`~augmentface.expression.learned.data.training_data_from_chunks`.
    config : TrainConfig
    progress : callable, optional
        Called with the :class:`EpochStats` of every epoch.
    """
    device = _device(config.device)
    train = data.is_train
    mean = data.coefficients[train].mean(axis=0, dtype=np.float64).astype(np.float32)
    # One scale for all components (the RMS of their SDs), not one per component: distances
    # then stay proportional to millimetres on the mesh, and the many small components that
    # hold mostly landmark noise are not blown up to the weight of the expression ones.
    sd = data.coefficients[train].std(axis=0, dtype=np.float64)
    std = np.full(len(sd), max(float(np.sqrt(np.mean(sd**2))), 1e-6), dtype=np.float32)
    standardised = (data.coefficients - mean) / std
    monitor = _Monitor(data, standardised, config)
    x = torch.from_numpy(standardised[train]).to(device)
    y = torch.from_numpy(data.labels[train]).to(device)
    identity = torch.from_numpy(data.identity_codes[train]).to(device)
    dims = Dims(data.basis.n_components, len(config.aus), data.identity_basis.n_components)
    history: list[EpochStats] = []
    forked = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(config.seed)
        net = CAAE(dims, config, device) if config.model == "caae" else CGAN(dims, config, device)
        for epoch in range(1, epochs_to_run(len(x), config) + 1):
            start = time.perf_counter()
            totals: dict[str, float] = {}
            order = torch.randperm(len(x), device=device)
            batches = order.split(config.batch_size)
            for batch in batches:
                y_soft = soft_labels(y[batch], config.soft_label_width) / INTENSITY_MAX
                losses = net.train_step(x[batch], y_soft, identity[batch])
                for name, value in losses.items():
                    totals[name] = totals.get(name, 0.0) + value / len(batches)
            stats = EpochStats(
                epoch=epoch,
                seconds=time.perf_counter() - start,
                losses=totals,
                val_label_mae=monitor.generated_mae(net.generator, config.model == "caae"),
                val_label_mae_real=monitor.real_mae,
            )
            history.append(stats)
            if progress is not None:
                progress(stats)
    return TrainedAUModel(
        config=config,
        face_model_id=data.basis.face_model_id,
        basis=data.basis,
        identity_basis=data.identity_basis,
        coefficient_mean=mean,
        coefficient_std=std,
        generator=net.generator.cpu().eval(),
        history=tuple(history),
        summary=data.summary,
    )


def train_au_model(
    fits: pd.DataFrame,
    model: FaceModel,
    config: TrainConfig | None = None,
    progress: Callable[[EpochStats], None] | None = None,
) -> TrainedAUModel:
    """Train a learned AU model on a fitted, labelled manifest.

    Parameters
    ----------
    fits : pandas.DataFrame
        ``ok`` rows with ``subject_id``, identity and expression offsets, and a
        ``label_AU<n>`` column (FACS 0–5, NaN = unlabelled) for each of ``config.aus``.
    model : FaceModel
        The face model the manifest was fitted with.
    config : TrainConfig, optional
    progress : callable, optional
        Called with each epoch's :class:`EpochStats`.

    Returns
    -------
    TrainedAUModel
        On the CPU; ``summary`` reports the rows dropped for NaN labels and the split.
    """
    config = config or TrainConfig()
    return fit_au_model(prepare_training_data(fits, model, config), config, progress)
