"""The papers' metrics per target: AU intensity ICC(3,1), MSE, PCC; VA CCC, PCC, MSE."""

from __future__ import annotations

import math

import numpy as np

from augmentface.expression.au_evaluation import icc_3_1
from augmentface.expression.va_evaluation import ccc, mse

#: results.csv's metric columns.
METRICS: tuple[str, ...] = ("icc", "mse", "pcc", "ccc")


def pcc(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's correlation of two series (NaN when one is constant or under 2 pairs)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def scores(kind: str, predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """The metrics of one target.

    Parameters
    ----------
    kind : 'au' (ICC(3,1), MSE, PCC; FACS 0–5) or 'va' (CCC, PCC, MSE; [-1, 1]).
    predicted, true : (N,) predictions and labels of the test frames.

    Returns
    -------
    dict
        Every name of :data:`METRICS`, NaN where it does not apply to ``kind``.
    """
    p = np.asarray(predicted, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    out = dict.fromkeys(METRICS, math.nan)
    out["mse"] = mse(p, t)
    out["pcc"] = pcc(p, t)
    if kind == "au":
        out["icc"] = icc_3_1(np.column_stack([p, t])) if len(p) >= 2 else math.nan
    else:
        out["ccc"] = ccc(p, t)
    return out
