"""The experiment's files: results.csv, protocol.json and results.png."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augmentface.atomic import atomic_write_bytes, atomic_write_text
from augmentface.experiment.metrics import METRICS

#: results.csv's columns, in order.
RESULT_COLUMNS: tuple[str, ...] = ("condition", "fold", "target", *METRICS)
#: The two conditions, in order.
CONDITIONS: tuple[str, ...] = ("real", "real+augmented")


def with_averages(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-fold, per-target rows plus their averages: ``fold == "mean"`` (over folds, per
    target) and ``target == "mean"`` (over targets, per fold and for the fold mean)."""
    rows = rows.astype({"fold": str})
    by_target = rows.groupby(["condition", "target"], sort=False)[list(METRICS)].mean()
    by_target = by_target.reset_index().assign(fold="mean")
    both = pd.concat([rows, by_target], ignore_index=True)
    over = both.groupby(["condition", "fold"], sort=False)[list(METRICS)].mean().reset_index()
    out = pd.concat([both, over.assign(target="mean")], ignore_index=True)
    return out[list(RESULT_COLUMNS)]


def write_results_csv(path: Path, results: pd.DataFrame) -> None:
    """results.csv (:data:`RESULT_COLUMNS`; NaN where a metric does not apply), atomically."""
    atomic_write_text(path, results.to_csv(index=False, float_format="%.6g"))


def write_protocol(path: Path, protocol: dict[str, Any]) -> None:
    """protocol.json (folds, subjects, seeds, sizes, versions), atomically."""
    atomic_write_text(path, json.dumps(protocol, indent=2, sort_keys=True, default=str) + "\n")


def primary_metric(kind: str) -> str:
    """The papers' headline metric: ICC(3,1) for AU intensity, CCC for VA."""
    return "icc" if kind == "au" else "ccc"


def write_results_png(path: Path, results: pd.DataFrame, kind: str) -> None:
    """results.png: per target, one bar per condition (the mean over folds of the primary
    metric) with the folds' spread (min–max) as an error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = primary_metric(kind)
    per_fold = results[(results["fold"] != "mean") & (results["target"] != "mean")]
    targets = list(dict.fromkeys(per_fold["target"]))
    x = np.arange(len(targets))
    figure, axes = plt.subplots(figsize=(1.2 * len(targets) + 3, 4), dpi=100)
    width = 0.38
    for j, condition in enumerate(CONDITIONS):
        table = per_fold[per_fold["condition"] == condition].groupby("target")[metric]
        mean = table.mean().reindex(targets).to_numpy()
        low = mean - table.min().reindex(targets).to_numpy()
        high = table.max().reindex(targets).to_numpy() - mean
        axes.bar(x + (j - 0.5) * width, np.nan_to_num(mean), width, label=condition,
                 yerr=[np.nan_to_num(low), np.nan_to_num(high)], capsize=3)  # fmt: skip
    axes.set_xticks(x, targets)
    axes.set_ylabel(f"{metric.upper()} (mean over folds; bars: fold min–max)")
    axes.axhline(0, color="black", linewidth=0.8)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def summary_table(results: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Per target (and their mean): each condition's fold mean of the metrics of ``kind``
    and the change of the primary metric."""
    metrics = ["icc", "pcc", "mse"] if kind == "au" else ["ccc", "pcc", "mse"]
    means = results[results["fold"] == "mean"].set_index(["target", "condition"])[metrics]
    out = []
    for target in dict.fromkeys(results["target"]):
        row: dict[str, Any] = {"target": target}
        for condition in CONDITIONS:
            for m in metrics:
                row[f"{m} {condition}"] = float(means.loc[(target, condition), m])
        a, b = (row[f"{metrics[0]} {c}"] for c in CONDITIONS)
        row[f"Δ{metrics[0]}"] = b - a if math.isfinite(a) and math.isfinite(b) else math.nan
        out.append(row)
    return pd.DataFrame(out)
