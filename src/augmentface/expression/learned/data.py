"""Training data of the learned AU models: coefficients, labels, identity codes, by subject.

A manifest (or a stream of chunks, for data sets too large to hold as a DataFrame) becomes
standardisable expression coefficients in a PCA basis fitted on the training subjects, the AU
labels, and each frame's identity code — the first few PCA coefficients of its identity
offsets, in a basis fitted on the training subjects' mean identities.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from augmentface.errors import UsageError
from augmentface.expression.au_rig import INTENSITY_MAX
from augmentface.expression.learned.config import TrainConfig
from augmentface.expression.learned.labels import AULabelError, read_au_labels
from augmentface.expression.space import (
    N_COORDS,
    ExpressionBasis,
    basis_from_chunks,
    expression_deformations_model_mm,
    ok_rows,
    stack_cells,
)
from augmentface.face.model import FaceModel

_CHUNK_ROWS = 8192


class TrainingDataError(UsageError):
    """Data that cannot train a model (too few subjects, nothing left after the checks)."""


class LabelledChunk(Protocol):
    """A block of labelled frames.

    Attributes
    ----------
    subject_ids : (n,) str
    labels : (n, A) float, FACS 0–5, in the order of the config's AUs
    deformations_model_mm : (n, 468, 3) float, mm, from the subject's neutral
    identity_offsets_model_mm : (n, 468, 3) float, mm
    """

    subject_ids: np.ndarray
    labels: np.ndarray
    deformations_model_mm: np.ndarray
    identity_offsets_model_mm: np.ndarray


@dataclass(frozen=True)
class ArrayChunk:
    """A :class:`LabelledChunk` over arrays held in memory."""

    subject_ids: np.ndarray
    labels: np.ndarray
    deformations_model_mm: np.ndarray
    identity_offsets_model_mm: np.ndarray

    def slices(self, rows: int = _CHUNK_ROWS) -> Iterator[ArrayChunk]:
        """Consecutive views of at most ``rows`` frames."""
        for start in range(0, len(self.subject_ids), rows):
            part = slice(start, start + rows)
            yield ArrayChunk(
                self.subject_ids[part],
                self.labels[part],
                self.deformations_model_mm[part],
                self.identity_offsets_model_mm[part],
            )


@dataclass(frozen=True)
class DataSummary:
    """What went into a training run (JSON-able, stored in checkpoints)."""

    n_frames: int
    n_dropped_nan_labels: int
    n_train_frames: int
    n_validation_frames: int
    train_subjects: tuple[str, ...]
    validation_subjects: tuple[str, ...]
    n_components: int
    explained_variance: float
    identity_dim: int
    reference_counts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "train_subjects": list(self.train_subjects),
            "validation_subjects": list(self.validation_subjects),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DataSummary:
        data = dict(data)
        data["train_subjects"] = tuple(data["train_subjects"])
        data["validation_subjects"] = tuple(data["validation_subjects"])
        return cls(**data)


@dataclass(frozen=True)
class TrainingData:
    """Arrays a learned model trains on.

    Attributes
    ----------
    basis : ExpressionBasis
        Expression basis (fitted on the training subjects' deformations).
    identity_basis : ExpressionBasis
        Identity basis (fitted on the training subjects' mean identity offsets).
    coefficients : (N, K) float32
        Expression coefficients of every frame in ``basis``, mm.
    labels : (N, A) float32
        AU labels, FACS 0–5.
    identity_codes : (N, D) float32
        Standardised identity codes (:func:`identity_codes`).
    subject_ids : (N,) str
    is_train : (N,) bool
        Frame belongs to a training subject (else to a validation subject).
    summary : DataSummary
    """

    basis: ExpressionBasis
    identity_basis: ExpressionBasis
    coefficients: np.ndarray
    labels: np.ndarray
    identity_codes: np.ndarray
    subject_ids: np.ndarray
    is_train: np.ndarray
    summary: DataSummary


def identity_codes(basis: ExpressionBasis, identity_offsets_model_mm: np.ndarray) -> np.ndarray:
    """(N, D) identity codes: PCA coefficients divided by their standard deviation."""
    scale = np.sqrt(np.maximum(basis.variance_mm2, 1e-12)).astype(np.float32)
    return basis.encode(identity_offsets_model_mm) / scale


def split_subjects(subjects: Sequence[str], share: float, seed: int) -> frozenset[str]:
    """The validation subjects: a seeded ``share`` of ``subjects`` (at least one if share > 0).

    Raises
    ------
    TrainingDataError
        Fewer than two subjects would be left to train on.
    """
    unique = sorted(set(subjects))
    n_val = 0 if share == 0 else max(1, round(share * len(unique)))
    if len(unique) - n_val < 2:
        need = 2 + (share > 0)
        raise TrainingDataError(
            f"training needs at least {need} subjects (2 to train the identity code on"
            f"{', 1 to validate on' if share > 0 else ''}), got {len(unique)}"
        )
    order = np.random.default_rng(seed).permutation(len(unique))
    return frozenset(unique[i] for i in order[:n_val])


def training_data_from_chunks(
    make_chunks: Callable[[], Iterable[LabelledChunk]],
    face_model_id: str,
    config: TrainConfig,
    *,
    n_dropped_nan_labels: int = 0,
    reference_counts: dict[str, int] | None = None,
) -> TrainingData:
    """Training data from labelled chunks; ``make_chunks`` is called three times.

    Pass 1 reads subjects, labels and per-subject identity sums; pass 2 accumulates the
    covariance of the training subjects' deformations; pass 3 encodes every frame. Memory stays
    at one chunk of fields plus (N, K) coefficients.
    """
    subject_parts: list[np.ndarray] = []
    label_parts: list[np.ndarray] = []
    identity_sum: dict[str, np.ndarray] = {}
    identity_count: Counter[str] = Counter()
    for chunk in make_chunks():
        subjects = np.asarray(chunk.subject_ids).astype(str)
        subject_parts.append(subjects)
        label_parts.append(np.asarray(chunk.labels, dtype=np.float32))
        flat = np.asarray(chunk.identity_offsets_model_mm, dtype=np.float32).reshape(-1, N_COORDS)
        for subject, rows in pd.Series(subjects).groupby(subjects, sort=False).indices.items():
            total = identity_sum.setdefault(subject, np.zeros(N_COORDS))
            total += flat[rows].sum(axis=0, dtype=np.float64)
            identity_count[subject] += len(rows)
    if not subject_parts:
        raise TrainingDataError("no labelled frame to train on")
    subject_ids = np.concatenate(subject_parts)
    labels = np.concatenate(label_parts)
    if labels.ndim != 2 or labels.shape[1] != len(config.aus):
        raise TrainingDataError(f"labels must be (N, {len(config.aus)}), got {labels.shape}")
    if not np.isfinite(labels).all() or labels.min() < 0 or labels.max() > INTENSITY_MAX:
        raise AULabelError("labels must be finite intensities on the FACS scale 0–5")
    validation = split_subjects(list(identity_sum), config.validation_share, config.seed)
    is_train = ~np.isin(subject_ids, list(validation))
    train_subjects = sorted(set(identity_sum) - validation)

    def train_deformations() -> Iterator[np.ndarray]:
        for chunk in make_chunks():
            keep = ~np.isin(np.asarray(chunk.subject_ids).astype(str), list(validation))
            yield np.asarray(chunk.deformations_model_mm)[keep]

    # At least one direction per AU the model is conditioned on: explained variance alone
    # keeps only the large movements once they dominate (on the DISFA-like set, 7 components
    # held 95 % and left out the upper lid's AU5 and a third of AU9).
    basis = basis_from_chunks(
        train_deformations(),
        face_model_id,
        config.variance,
        config.max_components,
        min_components=min(len(config.aus), config.max_components),
    )
    mean_identity = np.stack([identity_sum[s] / identity_count[s] for s in train_subjects])
    identity_basis = basis_from_chunks(
        [mean_identity.astype(np.float32)],
        face_model_id,
        variance=1.0,
        max_components=min(config.identity_dim, len(train_subjects) - 1),
    )
    coefficient_parts, code_parts = [], []
    for chunk in make_chunks():
        coefficient_parts.append(basis.encode(chunk.deformations_model_mm))
        code_parts.append(identity_codes(identity_basis, chunk.identity_offsets_model_mm))
    summary = DataSummary(
        n_frames=len(subject_ids),
        n_dropped_nan_labels=n_dropped_nan_labels,
        n_train_frames=int(is_train.sum()),
        n_validation_frames=int((~is_train).sum()),
        train_subjects=tuple(train_subjects),
        validation_subjects=tuple(sorted(validation)),
        n_components=basis.n_components,
        explained_variance=float(basis.explained_variance_ratio.sum()),
        identity_dim=identity_basis.n_components,
        reference_counts=dict(reference_counts or {}),
    )
    return TrainingData(
        basis=basis,
        identity_basis=identity_basis,
        coefficients=np.concatenate(coefficient_parts),
        labels=labels,
        identity_codes=np.concatenate(code_parts),
        subject_ids=subject_ids,
        is_train=is_train,
        summary=summary,
    )


def prepare_training_data(
    fits: pd.DataFrame, model: FaceModel, config: TrainConfig
) -> TrainingData:
    """Training data from a fitted, labelled manifest (``ok`` rows with every label present).

    Rows with a NaN label are dropped; their count is in the summary and logged.
    """
    ok = ok_rows(fits)
    labels = read_au_labels(ok, config.aus)
    kept = ok[labels.keep]
    deformations = expression_deformations_model_mm(kept, model, config.neutral)
    frames = ArrayChunk(
        subject_ids=deformations.subject_id,
        labels=labels.values,
        deformations_model_mm=deformations.offsets_model_mm,
        identity_offsets_model_mm=stack_cells(
            kept["identity_offsets_model_mm"], "identity_offsets_model_mm"
        ),
    )
    return training_data_from_chunks(
        frames.slices,
        model.model_id,
        config,
        n_dropped_nan_labels=labels.n_dropped,
        reference_counts=dict(Counter(deformations.reference.tolist())),
    )
