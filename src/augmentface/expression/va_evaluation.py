"""How well synthesized expressions carry their VA labels: CCC and MSE of a regressor.

Following the evaluation idea of Kollias et al. (2018): a valence/arousal regressor is trained on
real frames of training subjects; it is then applied to the expression parameters synthesized
for held-out subjects' target labels. If the synthesis carries the affect, the regressor reads
the targets back: high concordance (Lin's CCC, the metric of AFEW-VA and Aff-Wild) and low MSE
against the labels the synthesized samples were made for.

The regressor is ridge regression on standardised features (flattened deformations, (N, 1404),
or any expression coefficients), closed form, no extra dependency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from augmentface.errors import UsageError
from augmentface.expression import va_prior
from augmentface.expression.ridge import RidgeProbe


class EvaluationError(UsageError):
    """Inputs that cannot be evaluated (shapes that disagree, too few subjects)."""


def _pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise EvaluationError(f"predictions {x.shape} and labels {y.shape} differ in length")
    finite = np.isfinite(x) & np.isfinite(y)
    return x[finite], y[finite]


def ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Lin's concordance correlation coefficient of two series (pairs with NaN left out).

    ``2 cov(x, y) / (var x + var y + (mean x − mean y)²)`` with population (1/N) moments
    (Lin 1989, Biometrics 45:255). 1 for identical series; NaN with fewer than 2 pairs or two
    constant, equal series (0/0).
    """
    x, y = _pairs(x, y)
    if len(x) < 2:
        return float("nan")
    mx, my = x.mean(), y.mean()
    cov = ((x - mx) * (y - my)).mean()
    denominator = x.var() + y.var() + (mx - my) ** 2
    return float(2.0 * cov / denominator) if denominator > 0 else float("nan")


def mse(x: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error over the pairs without NaN (NaN if there are none)."""
    x, y = _pairs(x, y)
    return float(((x - y) ** 2).mean()) if len(x) else float("nan")


def flatten_offsets(offsets_model_mm: np.ndarray) -> np.ndarray:
    """(N, V·3) features from (N, V, 3) deformations, mm."""
    offsets = np.asarray(offsets_model_mm, dtype=np.float64)
    return offsets.reshape(len(offsets), -1)


@dataclass(frozen=True)
class VARegressor:
    """Ridge regression features -> (valence, arousal), predictions clipped to [-1, 1].

    Attributes
    ----------
    ridge : RidgeProbe
        The fit on standardised features; intercept the mean training (valence, arousal).
    alpha : float
        Ridge penalty used.
    """

    ridge: RidgeProbe
    alpha: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(N, 2) predicted (valence, arousal) for (N, D) features."""
        return np.clip(self.ridge.predict(features), -1.0, 1.0)


def fit_va_regressor(
    features: np.ndarray, valence: np.ndarray, arousal: np.ndarray, *, alpha: float = 10.0
) -> VARegressor:
    """Fit ridge regression of (valence, arousal) on features; rows with NaN are left out.

    Parameters
    ----------
    features : np.ndarray
        (N, D) e.g. :func:`flatten_offsets` of real frames of the training subjects.
    valence, arousal : np.ndarray
        (N,) labels in [-1, 1], NaN where missing.
    alpha : float
        Ridge penalty on standardised features (in units of the N-sample sum of squares).
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.column_stack([valence, arousal]).astype(np.float64)
    if x.ndim != 2 or len(x) != len(y):
        raise EvaluationError(f"features {x.shape} must be (N, D) for {len(y)} labels")
    rows = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
    x, y = x[rows], y[rows]
    if len(x) < 2:
        raise EvaluationError("need at least 2 labelled frames to fit the VA regressor")
    return VARegressor(RidgeProbe.fit(x, y, alpha), float(alpha))


def split_subjects(
    subject_id: np.ndarray, test_fraction: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(train_mask, test_mask) (N,) bool with no subject on both sides (seeded).

    Raises
    ------
    EvaluationError
        Fewer than two subjects.
    """
    ids = np.asarray(subject_id).astype(str)
    subjects = np.unique(ids)
    if len(subjects) < 2:
        raise EvaluationError("need at least two subjects to hold some out")
    n_test = min(max(1, round(test_fraction * len(subjects))), len(subjects) - 1)
    held_out = np.random.default_rng(seed).choice(subjects, n_test, replace=False)
    test = np.isin(ids, held_out)
    return ~test, test


def _scores(pred: np.ndarray, valence: np.ndarray, arousal: np.ndarray) -> dict[str, float]:
    return {
        "ccc_valence": ccc(pred[:, 0], valence),
        "ccc_arousal": ccc(pred[:, 1], arousal),
        "mse_valence": mse(pred[:, 0], valence),
        "mse_arousal": mse(pred[:, 1], arousal),
    }


def evaluate_va_model(
    regressor: VARegressor,
    synthesized_features: np.ndarray,
    target_valence: np.ndarray,
    target_arousal: np.ndarray,
) -> pd.DataFrame:
    """CCC and MSE of the regressor's reading of synthesized samples against their targets.

    Parameters
    ----------
    regressor : VARegressor
        Fitted on real frames of training subjects (:func:`fit_va_regressor`).
    synthesized_features : np.ndarray
        (N, D) features of the samples synthesized for the targets (same kind as the
        regressor's training features), typically for held-out subjects' labels.
    target_valence, target_arousal : np.ndarray
        (N,) the labels the samples were synthesized for, in [-1, 1].

    Returns
    -------
    pd.DataFrame
        One row per VA class present (``va_class`` 0–99) and a last row ``va_class = -1``
        for all samples; columns ``va_class``, ``n``, ``ccc_valence``, ``ccc_arousal``,
        ``mse_valence``, ``mse_arousal``. Within one class the labels span only 0.2, so its
        CCC is noisy; the overall row is the headline figure.
    """
    v = np.asarray(target_valence, dtype=np.float64)
    a = np.asarray(target_arousal, dtype=np.float64)
    if v.shape != a.shape or len(v) != len(synthesized_features):
        raise EvaluationError("one target (valence, arousal) per synthesized sample is needed")
    pred = regressor.predict(synthesized_features)
    classes = np.array([va_prior.va_class(x, y) for x, y in zip(v, a, strict=True)])
    rows = []
    for index in np.unique(classes):
        sel = classes == index
        rows.append(
            {"va_class": int(index), "n": int(sel.sum()), **_scores(pred[sel], v[sel], a[sel])}
        )
    rows.append({"va_class": -1, "n": len(v), **_scores(pred, v, a)})
    return pd.DataFrame(rows)
