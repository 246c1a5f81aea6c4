"""Estimators: a function from training crops and labels to a predictor.

Any callable with the signature of :class:`Estimator` plugs in (a user's own model):
``fit(crops, labels, *, seed, steps, device) -> predictor``, where ``crops`` is an
(N, S, S, 3) uint8 array-like that supports fancy indexing (a memory map: index it in
batches, never load it whole) and the predictor maps such crops to (N, T) predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np

from augmentface.errors import UsageError

#: A trained model: (N, S, S, 3) uint8 crops -> (N, T) predictions in the labels' units.
Predictor = Callable[[np.ndarray], np.ndarray]
#: Crops decoded and featurised at a time.
BATCH = 256


class Estimator(Protocol):
    """Train on ``crops`` (N, S, S, 3) uint8 and ``labels`` (N, T) float; return a predictor.

    ``steps`` is the optimiser-step budget (the same in both conditions), ``seed`` seeds all
    of the estimator's randomness, ``device`` is 'cpu' or 'cuda'.
    """

    def __call__(
        self, crops: np.ndarray, labels: np.ndarray, *, seed: int, steps: int, device: str
    ) -> Predictor: ...


def hog_features(crops: np.ndarray) -> np.ndarray:
    """(N, F) float32 HOG features (9 bins, 8 px cells, 16 px blocks) of grey crops."""
    size = crops.shape[1]
    hog = cv2.HOGDescriptor((size, size), (16, 16), (8, 8), (8, 8), 9)
    out = []
    for start in range(0, len(crops), BATCH):
        batch = np.asarray(crops[start : start + BATCH])
        grey = [cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in batch]
        out.extend(hog.compute(g).ravel() for g in grey)
    return np.asarray(out, dtype=np.float32).reshape(len(crops), -1)


def hog_ridge(
    crops: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int = 0,
    steps: int = 0,
    device: str = "cpu",
    alpha: float = 1.0,
) -> Predictor:
    """Ridge regression on HOG features of the crops (closed form).

    Parameters
    ----------
    crops : (N, S, S, 3) uint8 training crops (an array-like read in batches).
    labels : (N, T) float labels, in the targets' units.
    seed, steps, device : the :class:`Estimator` interface's; they do not apply here.
    alpha : the ridge weight relative to the number of training frames, on standardised
        features.

    Returns
    -------
    Predictor
        (M, S, S, 3) uint8 crops -> (M, T) predictions in the labels' units.
    """
    del seed, steps, device
    x = hog_features(crops).astype(np.float64)
    y = np.asarray(labels, dtype=np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / std
    y_mean = y.mean(axis=0)
    n, f = z.shape
    lam = alpha * n
    if n < f:  # dual form: (n, n) system
        weights = z.T @ np.linalg.solve(z @ z.T + lam * np.eye(n), y - y_mean)
    else:
        weights = np.linalg.solve(z.T @ z + lam * np.eye(f), z.T @ (y - y_mean))

    def predict(test_crops: np.ndarray) -> np.ndarray:
        return ((hog_features(test_crops) - mean) / std) @ weights + y_mean

    return predict


def small_cnn(
    crops: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int = 0,
    steps: int = 2000,
    device: str = "cpu",
    batch_size: int = 32,
    learning_rate: float = 1e-3,
) -> Predictor:
    """A small CNN (4 stride-2 conv blocks of 16–128 channels with batch norm, global
    pooling, linear head) trained with Adam on labels standardised per target; crops get
    random shifts of up to 1/16 of their side.

    Parameters
    ----------
    crops : (N, S, S, 3) uint8 training crops (an array-like read in batches).
    labels : (N, T) float labels, in the targets' units.
    seed : seeds the weights, the batches and the shifts.
    steps : optimiser steps.
    device : 'cpu' or 'cuda'.
    batch_size : crops per step (fewer when N is smaller).
    learning_rate : Adam's.

    Returns
    -------
    Predictor
        (M, S, S, 3) uint8 crops -> (M, T) predictions in the labels' units.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    y = np.asarray(labels, dtype=np.float32)
    y_mean, y_std = y.mean(axis=0), y.std(axis=0) + 1e-6
    # Strided convolutions, no pooling layers: the cheapest backward pass on CPU.
    blocks: list[nn.Module] = []
    channels = 3
    for width, kernel in ((16, 5), (32, 3), (64, 3), (128, 3)):
        blocks += [
            nn.Conv2d(channels, width, kernel, stride=2, padding=kernel // 2),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        ]
        channels = width
    net = nn.Sequential(
        *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, y.shape[1])
    )
    net.to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate)
    size = crops.shape[1]
    shift = max(1, size // 16)

    def tensor(batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
        return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)

    net.train()
    for _ in range(steps):
        idx = np.sort(rng.choice(len(crops), size=min(batch_size, len(crops)), replace=False))
        batch = np.asarray(crops[idx])
        dx, dy = rng.integers(-shift, shift + 1, size=2)
        batch = np.roll(batch, (int(dy), int(dx)), axis=(1, 2))
        target = torch.from_numpy((y[idx] - y_mean) / y_std).to(device)
        loss = nn.functional.mse_loss(net(tensor(batch)), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    net.eval()

    def predict(test_crops: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for start in range(0, len(test_crops), BATCH):
                out.append(net(tensor(np.asarray(test_crops[start : start + BATCH]))).cpu().numpy())
        return np.concatenate(out) * y_std + y_mean

    return predict


#: ``--estimator`` names.
ESTIMATORS: dict[str, Estimator] = {"hog-ridge": hog_ridge, "cnn": small_cnn}


def estimator(name: str) -> Estimator:
    """The estimator called ``name`` (:data:`ESTIMATORS`)."""
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise UsageError(f"unknown estimator {name!r}: one of {', '.join(ESTIMATORS)}") from None
