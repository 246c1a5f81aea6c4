"""How well an expression source serves a labelled data set: fidelity, realism, diversity.

Any :class:`~augmentface.expression.targets.ExpressionSource` is measured the same way against
held-out, fitted and labelled frames — the rig (direct mode) and the learned models alike — so
a user can see which mode suits their data:

(a) **Label fidelity.** A ridge regressor from expression coefficients to AU intensities is
    fitted on the real held-out frames and reads the AUs of what the source generates for those
    frames' labels: ICC(3,1) (Shrout & Fleiss 1979) and MAE per AU, target vs read. The same
    regressor on the real frames (``icc_real``, ``mae_real``) shows how much it can read at all,
    and ``mae_mean`` is the error of always predicting the targets' mean.
(b) **Realism.** Squared MMD (RBF kernel, median-heuristic bandwidth, unbiased estimate) between
    generated and real coefficients for the same labels, per AU over the frames where it is on.
(c) **Diversity.** Mean pairwise distance between samples drawn for one label, as the RMS over
    vertices of the offset difference (mm), averaged over labels.

Everything lives in one expression basis (by default fitted on the held-out deformations
themselves, so no mode is favoured); a source's offsets are projected into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from augmentface.errors import UsageError
from augmentface.expression.learned.labels import DISFA_AUS, read_au_labels
from augmentface.expression.ridge import RidgeProbe
from augmentface.expression.space import (
    ExpressionBasis,
    NeutralReferenceConfig,
    expression_deformations_model_mm,
    fit_expression_basis,
    ok_rows,
    stack_cells,
)
from augmentface.expression.targets import ExpressionSource, ExpressionTarget, sample_rng
from augmentface.face.model import N_MESH_VERTICES, FaceModel


class EvaluationError(UsageError):
    """Held-out data or settings that cannot evaluate a source."""


@runtime_checkable
class IdentityConditioned(Protocol):
    """A source that draws expressions for a given face (the learned models)."""

    def for_identity(self, identity_offsets_model_mm: np.ndarray) -> ExpressionSource: ...


@dataclass(frozen=True)
class AUEvaluationConfig:
    """Settings of :func:`evaluate_au_model`.

    Attributes
    ----------
    aus : tuple of int
        AUs evaluated; the held-out manifest needs their ``label_AU<n>`` columns.
    n_targets : int
        Held-out frames (at most) whose labels are generated, one sample each: (a) and (b).
    diversity_labels, samples_per_label : int
        Labels per AU and samples per label for (c).
    ridge_alpha : float
        Ridge penalty on standardised coefficients.
    mmd_max_rows : int
        Frames per side of one MMD estimate (the estimate is quadratic in it).
    seed : int
        Seeds the choice of frames and every sample.
    neutral : NeutralReferenceConfig
        Neutral reference of the held-out deformations.
    """

    aus: tuple[int, ...] = DISFA_AUS
    n_targets: int = 2000
    diversity_labels: int = 10
    samples_per_label: int = 8
    ridge_alpha: float = 1.0
    mmd_max_rows: int = 1000
    seed: int = 0
    neutral: NeutralReferenceConfig = field(default_factory=NeutralReferenceConfig)

    def __post_init__(self) -> None:
        for name in ("n_targets", "diversity_labels", "mmd_max_rows"):
            if getattr(self, name) < 1:
                raise EvaluationError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.samples_per_label < 2:
            raise EvaluationError("samples_per_label must be at least 2 to measure diversity")
        if not self.ridge_alpha >= 0:
            raise EvaluationError(f"ridge_alpha must not be negative, got {self.ridge_alpha}")


def icc_3_1(ratings: np.ndarray) -> float:
    """ICC(3,1): consistency of k fixed raters, single measures (Shrout & Fleiss 1979).

    ``(BMS − EMS) / (BMS + (k − 1) EMS)`` from the two-way ANOVA of an (n targets, k raters)
    table: BMS the between-targets mean square, EMS the residual mean square. NaN when the
    targets do not vary at all.
    """
    x = np.asarray(ratings, dtype=np.float64)
    n, k = x.shape
    if n < 2 or k < 2:
        raise EvaluationError(f"ICC needs at least 2 targets and 2 raters, got {x.shape}")
    grand = x.mean()
    ss_rows = k * np.sum((x.mean(axis=1) - grand) ** 2)
    ss_cols = n * np.sum((x.mean(axis=0) - grand) ** 2)
    ss_error = np.sum((x - grand) ** 2) - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    ems = ss_error / ((n - 1) * (k - 1))
    denominator = bms + (k - 1) * ems
    return float((bms - ems) / denominator) if denominator > 0 else math.nan


def _kernel_sums(a: np.ndarray, b: np.ndarray, gamma: float, same: bool) -> float:
    sq = np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None, :] - 2.0 * a @ b.T
    k = np.exp(-gamma * np.maximum(sq, 0.0))
    if same:
        n = len(a)
        return float((k.sum() - np.trace(k)) / (n * (n - 1)))
    return float(k.mean())


def mmd2_rbf(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased squared MMD between samples (n, d) and (m, d), RBF kernel.

    The bandwidth σ is the median pairwise distance of the pooled samples (the median
    heuristic), ``k(a, b) = exp(−|a − b|² / 2σ²)``. Near 0 (possibly slightly negative) when
    both come from one distribution. NaN with fewer than 2 samples on a side.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        return math.nan
    pooled = np.concatenate([x, y])
    sq = np.sum(pooled**2, 1)[:, None] + np.sum(pooled**2, 1)[None, :] - 2.0 * pooled @ pooled.T
    distances = np.sqrt(np.maximum(sq[np.triu_indices(len(pooled), 1)], 0.0))
    sigma = float(np.median(distances)) or 1.0
    gamma = 1.0 / (2.0 * sigma**2)
    return (
        _kernel_sums(x, x, gamma, True)
        + _kernel_sums(y, y, gamma, True)
        - 2.0 * _kernel_sums(x, y, gamma, False)
    )


def mean_pairwise_rms_mm(coefficients: np.ndarray) -> float:
    """Mean over pairs of samples of the RMS per-vertex distance (mm) between them.

    Coefficients of an orthonormal basis: their Euclidean distance is the Frobenius distance of
    the fields, so dividing by √468 gives the RMS over vertices.
    """
    c = np.asarray(coefficients, dtype=np.float64)
    i, j = np.triu_indices(len(c), 1)
    return float(np.mean(np.linalg.norm(c[i] - c[j], axis=1)) / math.sqrt(N_MESH_VERTICES))


def _target(labels: np.ndarray, aus: tuple[int, ...]) -> ExpressionTarget:
    aus_on = {au: float(v) for au, v in zip(aus, labels, strict=True) if v > 0}
    target_id = "_".join(f"AU{au}={v:g}" for au, v in aus_on.items()) or "neutral"
    return ExpressionTarget(target_id=target_id, kind="au", aus=aus_on)


def _for_face(source: ExpressionSource, identity_offsets_model_mm: np.ndarray) -> ExpressionSource:
    if isinstance(source, IdentityConditioned):
        return source.for_identity(identity_offsets_model_mm)
    return source


def _sample(
    source: ExpressionSource,
    labels: np.ndarray,
    identity: np.ndarray,
    config: AUEvaluationConfig,
    key: object,
    samples: int,
) -> np.ndarray:
    """(samples, 468, 3) offsets for one label vector on one face."""
    face = _for_face(source, identity)
    target = _target(labels, config.aus)
    out = np.empty((samples, N_MESH_VERTICES, 3), dtype=np.float32)
    for s in range(samples):
        rng = sample_rng(config.seed, "evaluate", key, s)
        out[s] = face.realize(target, s, rng)[1]
    return out


def evaluate_au_model(
    source: ExpressionSource,
    heldout_fits: pd.DataFrame,
    model: FaceModel,
    config: AUEvaluationConfig | None = None,
    *,
    basis: ExpressionBasis | None = None,
) -> pd.DataFrame:
    """Label fidelity, realism and diversity of ``source`` on held-out labelled frames.

    Parameters
    ----------
    source : ExpressionSource
        E.g. ``RigSource(model.rig)`` (direct mode) or a ``LearnedAUSource``; a source with
        ``for_identity`` gets each frame's identity offsets.
    heldout_fits : pandas.DataFrame
        Fitted, labelled manifest of subjects the source was not trained on.
    model : FaceModel
        The face model of the manifest.
    config : AUEvaluationConfig, optional
    basis : ExpressionBasis, optional
        Basis for all comparisons; by default one fitted (99 % variance) on the held-out
        deformations.

    Returns
    -------
    pandas.DataFrame
        One row per AU and a last row with ``au`` = ``all`` (means over AUs for fidelity and
        diversity, all frames for realism); columns ``source``, ``au``, ``n_targets``,
        ``n_active``, ``icc``, ``mae``, ``icc_real``, ``mae_real``, ``mae_mean``, ``mmd2``,
        ``diversity_rms_mm``.
    """
    config = config or AUEvaluationConfig()
    ok = ok_rows(heldout_fits)
    labels_read = read_au_labels(ok, config.aus)
    kept = ok[labels_read.keep]
    labels = labels_read.values.astype(np.float64)
    deformations = expression_deformations_model_mm(kept, model, config.neutral)
    if basis is None:
        basis = fit_expression_basis(deformations, variance=0.99)
    real = basis.encode(deformations.offsets_model_mm).astype(np.float64)
    identity = stack_cells(kept["identity_offsets_model_mm"], "identity_offsets_model_mm")
    probe = RidgeProbe.fit(real, labels, config.ridge_alpha)

    rng = np.random.default_rng(config.seed)
    rows = np.sort(rng.choice(len(kept), size=min(config.n_targets, len(kept)), replace=False))
    generated = np.concatenate(
        [
            basis.encode(_sample(source, labels[i], identity[i], config, ("target", i), 1))
            for i in rows
        ]
    ).astype(np.float64)
    targets = labels[rows]
    read = probe.predict(generated)
    read_real = probe.predict(real[rows])

    table = []
    for a, au in enumerate(config.aus):
        active = rows[targets[:, a] > 0]
        on = targets[:, a] > 0
        pick = rng.permutation(active)[: config.diversity_labels]
        diversity = [
            mean_pairwise_rms_mm(
                basis.encode(
                    _sample(
                        source, labels[i], identity[i], config, ("div", i), config.samples_per_label
                    )
                )
            )
            for i in pick
        ]
        table.append(
            {
                "au": f"AU{au}",
                "n_targets": len(rows),
                "n_active": int(on.sum()),
                "icc": icc_3_1(np.column_stack([targets[:, a], read[:, a]])),
                "mae": float(np.mean(np.abs(read[:, a] - targets[:, a]))),
                "icc_real": icc_3_1(np.column_stack([targets[:, a], read_real[:, a]])),
                "mae_real": float(np.mean(np.abs(read_real[:, a] - targets[:, a]))),
                "mae_mean": float(np.mean(np.abs(targets[:, a] - targets[:, a].mean()))),
                "mmd2": mmd2_rbf(
                    generated[on][: config.mmd_max_rows], real[rows][on][: config.mmd_max_rows]
                ),
                "diversity_rms_mm": float(np.mean(diversity)) if diversity else math.nan,
            }
        )
    per_au = pd.DataFrame(table).set_index("au")
    overall = per_au[["icc", "mae", "icc_real", "mae_real", "mae_mean"]].mean()
    overall["n_targets"] = len(rows)
    overall["n_active"] = int((targets > 0).any(axis=1).sum())
    overall["mmd2"] = mmd2_rbf(generated[: config.mmd_max_rows], real[rows][: config.mmd_max_rows])
    overall["diversity_rms_mm"] = per_au["diversity_rms_mm"].mean()
    per_au.loc["all"] = overall
    # ``au`` as a column, not the index: tables of several sources concatenate and export
    # to CSV without losing it.
    per_au = per_au.reset_index()
    per_au.insert(0, "source", source.name)
    return per_au
