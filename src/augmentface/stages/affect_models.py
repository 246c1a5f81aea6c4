"""``synth-va build | inspect | evaluate`` and ``synth-emotion build``: class blendshape models
(Kollias et al.) from a fitted, labelled manifest, and what a user checks before using them.

The fits manifest (``augmentface import`` + ``fit3dmm``) carries each frame's subject and its
``label_valence``/``label_arousal``/``label_emotion``; each frame's deformation is taken
against its subject's neutral frames (:mod:`augmentface.expression.space`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from augmentface.errors import UsageError
from augmentface.expression import va_prior
from augmentface.expression.class_models import ClassModelConfig, ClassModelSet
from augmentface.expression.class_models_build import build_emotion_model, build_va_model
from augmentface.expression.class_models_io import load_class_models, save_class_models
from augmentface.expression.emotion_prior import emotion_aus
from augmentface.expression.mesh_plot import class_means_figure
from augmentface.expression.space import (
    NeutralReferenceConfig,
    expression_deformations_model_mm,
)
from augmentface.expression.splocs import graph_distances_mm
from augmentface.expression.va_evaluation import (
    evaluate_va_model,
    fit_va_regressor,
    flatten_offsets,
)
from augmentface.face.model import FaceModel, load_face_model
from augmentface.stages.fitted import read_fitted
from augmentface.stages.lineage import face_model_of


def va_prior_offsets(model: FaceModel):
    """``prior(valence, arousal) -> (468, 3)`` mm: the built-in prior through the rig."""
    return lambda v, a: model.rig.offsets(model.rig.vector(va_prior.prior_aus(v, a)))


def emotion_prior_offsets(model: FaceModel):
    """``prior(emotion) -> (468, 3)`` mm: the EMFACS prototype through the rig."""
    return lambda e: model.rig.offsets(model.rig.vector(emotion_aus(e)))


@dataclass(frozen=True)
class BuildClassModelsConfig:
    """Settings of ``synth-va build`` (kind "va") and ``synth-emotion build`` ("emotion")."""

    fits: Path
    out: Path
    kind: Literal["va", "emotion"] = "va"
    classes: ClassModelConfig = field(default_factory=ClassModelConfig)
    neutral: NeutralReferenceConfig = field(default_factory=NeutralReferenceConfig)


@dataclass(frozen=True)
class BuildReport:
    """What a build used: frames per reference kind, and the model written."""

    models: ClassModelSet
    path: Path
    references: dict[str, int]  # how many frames used each neutral reference kind


def _labelled(fits: pd.DataFrame, kind: str, path: Path) -> pd.DataFrame:
    columns = ["label_valence", "label_arousal"] if kind == "va" else ["label_emotion"]
    missing = [c for c in columns if c not in fits.columns]
    if missing:
        raise UsageError(f"{path}: no {', '.join(missing)} column; import a labelled dataset")
    has_label = fits[columns].notna().all(axis=1)
    if not has_label.any():
        raise UsageError(
            f"{path}: no frame has a {' and '.join(columns)} label; import a dataset with "
            f"{'valence/arousal' if kind == 'va' else 'emotion'} labels (`augmentface import`)"
        )
    return fits


def run_build_class_models(config: BuildClassModelsConfig) -> BuildReport:
    """Build the VA (10 × 10) or emotion class models and write them (``.npz``) atomically.

    Frames whose labels are missing or invalid are dropped by the builder and counted in
    ``models.dropped``; a subject with no neutral frame uses its fitted expression as its
    deformation (counted in ``references``).
    """
    if config.kind not in ("va", "emotion"):
        raise UsageError(f"kind must be 'va' or 'emotion', got {config.kind!r}")
    model = face_model_of(config.fits)
    fits = _labelled(read_fitted(config.fits, model), config.kind, config.fits)
    deformations = expression_deformations_model_mm(fits, model, config.neutral)
    rows = fits.loc[deformations.index]
    distances = graph_distances_mm(model.mean_verts_model_mm, model.triangles)
    if config.kind == "va":
        models = build_va_model(
            deformations.offsets_model_mm,
            rows["label_valence"].to_numpy(float),
            rows["label_arousal"].to_numpy(float),
            config.classes,
            model.model_id,
            distances_mm=distances,
            prior=va_prior_offsets(model),
        )
    else:
        emotions = rows["label_emotion"].astype(object).where(rows["label_emotion"].notna(), None)
        models = build_emotion_model(
            deformations.offsets_model_mm,
            np.asarray(emotions, dtype=object),
            config.classes,
            model.model_id,
            distances_mm=distances,
            prior=emotion_prior_offsets(model),
        )
    path = save_class_models(models, config.out)
    return BuildReport(models, path, dict(Counter(map(str, deformations.reference))))


def load_models_for(path: str | Path, kind: str) -> ClassModelSet:
    """Class models of ``kind`` for this installation's face model (else a clear error)."""
    models = load_class_models(path, load_face_model().model_id)
    models.require_kind(kind)
    return models


def run_inspect(path: Path, out_png: Path | None = None) -> tuple[ClassModelSet, Path]:
    """Write the class-means figure (histogram + shaded mean faces at their V–A places)."""
    model = load_face_model()
    models = load_class_models(path, model.model_id)
    out_png = out_png or Path(path).with_suffix(".png")
    figure = class_means_figure(models, model.mean_verts_model_mm, model.triangles, out_png)
    return models, figure


def histogram_table(models: ClassModelSet) -> pd.DataFrame:
    """Frames per VA class as a 10 × 10 table: rows arousal (high first), columns valence."""
    counts = np.asarray(models.counts).reshape(10, 10)[::-1]
    centres = [f"{c:+.1f}" for c in -0.9 + 0.2 * np.arange(10)]
    return pd.DataFrame(counts, index=[f"A {c}" for c in centres[::-1]], columns=centres)


@dataclass(frozen=True)
class EvaluateVAConfig:
    """Settings of ``synth-va evaluate``."""

    model: Path
    fits: Path  # held-out subjects, fitted and VA-labelled
    alpha: float = 10.0  # ridge penalty of the VA regressor
    neutral: NeutralReferenceConfig = field(default_factory=NeutralReferenceConfig)


def run_evaluate_va(config: EvaluateVAConfig) -> pd.DataFrame:
    """CCC and MSE (the paper's metrics) of synthesized deformations against their targets.

    A ridge regressor from deformations to (V, A) is fitted on the real frames of the held-out
    subjects; it reads what the class models (mean mode) and, for comparison, the built-in
    prior synthesize for those frames' own labels, and the real frames themselves (its
    ceiling). One table: ``source`` in {"real", "class-models", "prior"}, per class and
    overall (``va_class`` -1).
    """
    model = face_model_of(config.fits)
    models = load_models_for(config.model, "va")
    fits = _labelled(read_fitted(config.fits, model), "va", config.fits)
    deformations = expression_deformations_model_mm(fits, model, config.neutral)
    rows = fits.loc[deformations.index]
    valence = rows["label_valence"].to_numpy(float)
    arousal = rows["label_arousal"].to_numpy(float)
    keep = np.isfinite(valence) & np.isfinite(arousal)
    if keep.sum() < 10:
        raise UsageError(f"{config.fits}: fewer than 10 frames with valence/arousal labels")
    valence, arousal = valence[keep], arousal[keep]
    real = flatten_offsets(deformations.offsets_model_mm[keep])
    regressor = fit_va_regressor(real, valence, arousal, alpha=config.alpha)
    prior = va_prior_offsets(model)
    targets = list(zip(valence, arousal, strict=True))
    synthesized = {
        "real": real,
        "class-models": flatten_offsets(
            np.stack([models.mean_offsets(v, a, prior=prior) for v, a in targets])
        ),
        "prior": flatten_offsets(np.stack([prior(v, a) for v, a in targets])),
    }
    tables = []
    for name, features in synthesized.items():
        table = evaluate_va_model(regressor, features, valence, arousal)
        table.insert(0, "source", name)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)
