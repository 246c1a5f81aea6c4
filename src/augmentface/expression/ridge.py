"""Ridge regression on standardised features, closed form: the linear read-out both source
evaluations use (AU intensities from coefficients, valence/arousal from deformations)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RidgeProbe:
    """Linear read-out of targets from features: ridge on standardised features (constant
    features get scale 1: they carry nothing, and stay finite)."""

    feature_mean: np.ndarray
    feature_scale: np.ndarray
    weights: np.ndarray
    intercept: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, targets: np.ndarray, alpha: float = 1.0) -> RidgeProbe:
        """Fit (N, F) features to (N, T) targets, penalty ``alpha`` on standardised features."""
        f = np.asarray(features, dtype=np.float64)
        t = np.asarray(targets, dtype=np.float64)
        mean, scale = f.mean(axis=0), f.std(axis=0)
        scale[scale == 0] = 1.0
        z = (f - mean) / scale
        intercept = t.mean(axis=0)
        gram = z.T @ z + alpha * np.eye(z.shape[1])
        weights = np.linalg.solve(gram, z.T @ (t - intercept))
        return cls(mean, scale, weights, intercept)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(N, T) predictions for (N, F) features."""
        z = (np.asarray(features, dtype=np.float64) - self.feature_mean) / self.feature_scale
        return z @ self.weights + self.intercept
