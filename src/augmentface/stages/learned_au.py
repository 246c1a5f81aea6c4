"""``synth-au train`` and ``synth-au evaluate``: learned AU models from fitted, labelled data.

The fits manifest of ``augmentface import`` + ``fit3dmm`` carries each frame's subject and
``label_AU<n>`` columns; training and evaluation read it here and hand plain data frames to
:mod:`augmentface.expression.learned` and :mod:`augmentface.expression.au_evaluation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from augmentface.expression.au_evaluation import AUEvaluationConfig, evaluate_au_model
from augmentface.expression.learned.config import TrainConfig
from augmentface.expression.learned.source import LearnedAUSource
from augmentface.expression.learned.train import train_au_model
from augmentface.expression.learned.trained import EpochStats, TrainedAUModel
from augmentface.expression.targets import RigSource
from augmentface.stages.fitted import read_fitted
from augmentface.stages.lineage import face_model_of


@dataclass(frozen=True)
class TrainStageConfig:
    """Settings of ``augmentface synth-au train``."""

    fits: Path
    out: Path
    train: TrainConfig = field(default_factory=TrainConfig)


def run_train_au(config: TrainStageConfig, progress=None) -> TrainedAUModel:
    """Train on ``config.fits`` and write the checkpoint ``config.out`` atomically.

    ``progress`` is called with each epoch's :class:`EpochStats`.
    """
    model = face_model_of(config.fits)
    fits = read_fitted(config.fits, model)
    trained = train_au_model(fits, model, config.train, progress)
    trained.save_checkpoint(config.out)
    return trained


@dataclass(frozen=True)
class EvaluateAUStageConfig:
    """Settings of ``augmentface synth-au evaluate``."""

    fits: Path  # held-out subjects, fitted and labelled
    model: Path | None = None  # a learned checkpoint; None evaluates direct mode only
    evaluation: AUEvaluationConfig = field(default_factory=AUEvaluationConfig)


def run_evaluate_au(config: EvaluateAUStageConfig) -> pd.DataFrame:
    """Per-AU fidelity, realism and diversity of direct mode and, if given, a learned model,
    on the same held-out frames and in the same basis; one table, a ``source`` column apart."""
    model = face_model_of(config.fits)
    heldout = read_fitted(config.fits, model)
    sources = [RigSource(model.rig)]
    if config.model is not None:
        sources.append(LearnedAUSource.from_checkpoint(config.model, model))
    tables = [evaluate_au_model(s, heldout, model, config.evaluation) for s in sources]
    return pd.concat(tables, ignore_index=True)


__all__ = [
    "EpochStats",
    "EvaluateAUStageConfig",
    "TrainStageConfig",
    "run_evaluate_au",
    "run_train_au",
]
