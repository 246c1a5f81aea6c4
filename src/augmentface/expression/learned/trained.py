"""A trained learned AU model: what sampling needs, and its checkpoint round trip."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augmentface.expression.au_rig import INTENSITY_MAX
from augmentface.expression.learned import caae, cgan
from augmentface.expression.learned.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_FORMAT_VERSION,
    CheckpointError,
    read_checkpoint,
    write_checkpoint,
)
from augmentface.expression.learned.config import TrainConfig
from augmentface.expression.learned.data import DataSummary, identity_codes
from augmentface.expression.learned.labels import AULabelError
from augmentface.expression.learned.nets import ConditionalMLP, Dims, draw_latent
from augmentface.expression.space import ExpressionBasis

#: Rows per forward pass when generating, to bound memory.
_GENERATE_ROWS = 65536


@dataclass(frozen=True)
class EpochStats:
    """One training epoch.

    ``losses`` are means over the epoch's steps. ``val_label_mae`` is the mean absolute error
    (FACS units) between validation frames' labels and what a ridge probe, fitted on the
    training frames, reads from samples generated for those labels; ``val_label_mae_real`` is
    the probe's error on the real validation frames, the floor to compare with.
    """

    epoch: int
    seconds: float
    losses: dict[str, float]
    val_label_mae: float
    val_label_mae_real: float


@dataclass(frozen=True)
class TrainedAUModel:
    """A learned AU model ready to sample.

    Attributes
    ----------
    config : TrainConfig
        The run that trained it (model kind, AUs, latent size, …).
    face_model_id : str
        Face model of both bases.
    basis : ExpressionBasis
        Expression basis the generator's coefficients live in.
    identity_basis : ExpressionBasis
        Basis of the identity code (D components).
    coefficient_mean, coefficient_std : (K,) float32
        Standardisation of the coefficients, mm: the training frames' mean, and one common
        scale (the RMS of the components' SDs) for every component.
    generator : ConditionalMLP
        G(z, y) for the CGAN, G(z, y, identity) for the CAAE; CPU, eval mode.
    history : tuple of EpochStats
    summary : DataSummary
    """

    config: TrainConfig
    face_model_id: str
    basis: ExpressionBasis
    identity_basis: ExpressionBasis
    coefficient_mean: np.ndarray
    coefficient_std: np.ndarray
    generator: ConditionalMLP
    history: tuple[EpochStats, ...]
    summary: DataSummary

    @property
    def aus(self) -> tuple[int, ...]:
        return self.config.aus

    @property
    def uses_identity(self) -> bool:
        """Whether the generator is conditioned on the identity code (the CAAE is)."""
        return self.config.model == "caae"

    def identity_codes(self, identity_offsets_model_mm: np.ndarray) -> np.ndarray:
        """(N, D) standardised identity codes of (N, 468, 3) or (468, 3) identity offsets, mm."""
        return identity_codes(self.identity_basis, identity_offsets_model_mm)

    def draw_latent(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, L) float32 latent codes from the model's prior, drawn from ``rng``."""
        return draw_latent(self.config.model, n, self.config.latent_dim, rng)

    def generate_coefficients(
        self,
        labels: np.ndarray,
        latent: np.ndarray,
        identity: np.ndarray | None = None,
    ) -> np.ndarray:
        """(N, K) expression coefficients (mm, in :attr:`basis`) for (N, A) AU labels.

        Parameters
        ----------
        labels : (N, A) float
            Intensities 0–5 in the order of :attr:`aus`.
        latent : (N, L) float
            Latent codes (:meth:`draw_latent`).
        identity : (N, D) float, optional
            Identity codes (:meth:`identity_codes`); zeros, the mean training identity, when
            omitted. Ignored by the CGAN.
        """
        labels = np.asarray(labels, dtype=np.float32).reshape(-1, len(self.aus))
        if not np.isfinite(labels).all() or labels.min() < 0 or labels.max() > INTENSITY_MAX:
            raise AULabelError("AU intensities to generate must be finite and in 0–5")
        n = len(labels)
        if identity is None:
            identity = np.zeros((n, self.identity_basis.n_components), dtype=np.float32)
        out = np.empty((n, self.basis.n_components), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, n, _GENERATE_ROWS):
                rows = slice(start, start + _GENERATE_ROWS)
                inputs = [
                    torch.from_numpy(np.ascontiguousarray(latent[rows], dtype=np.float32)),
                    torch.from_numpy(labels[rows] / INTENSITY_MAX),
                ]
                if self.uses_identity:
                    inputs.append(torch.from_numpy(np.asarray(identity[rows], dtype=np.float32)))
                out[rows] = self.generator(*inputs).numpy()
        return out * self.coefficient_std + self.coefficient_mean

    def generate_offsets(
        self,
        labels: np.ndarray,
        rng: np.random.Generator,
        identity: np.ndarray | None = None,
    ) -> np.ndarray:
        """(N, 468, 3) float32 ``expression_offsets_model_mm`` for (N, A) labels, z from ``rng``."""
        labels = np.asarray(labels, dtype=np.float32).reshape(-1, len(self.aus))
        latent = self.draw_latent(len(labels), rng)
        return self.basis.decode(self.generate_coefficients(labels, latent, identity))

    def to_checkpoint(self) -> dict[str, Any]:
        """The checkpoint dict: tensors and JSON-able values only."""
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "face_model_id": self.face_model_id,
            "config": self.config.to_json(),
            "aus": list(self.aus),
            "basis": _basis_state(self.basis),
            "identity_basis": _basis_state(self.identity_basis),
            "coefficient_mean": torch.from_numpy(self.coefficient_mean.copy()),
            "coefficient_std": torch.from_numpy(self.coefficient_std.copy()),
            "generator": {k: v.detach().clone() for k, v in self.generator.state_dict().items()},
            "history": [asdict(h) for h in self.history],
            "summary": self.summary.to_json(),
        }

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write the model to ``path`` atomically (temporary file, then ``os.replace``)."""
        return write_checkpoint(self.to_checkpoint(), path)

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any], source: str | Path) -> TrainedAUModel:
        """Rebuild a model from a checked checkpoint dict; ``source`` names it in errors."""
        try:
            config = TrainConfig.from_json(state["config"])
            face_model_id = str(state["face_model_id"])
            basis = _basis_from_state(state["basis"], face_model_id)
            identity_basis = _basis_from_state(state["identity_basis"], face_model_id)
            dims = Dims(basis.n_components, len(config.aus), identity_basis.n_components)
            builder = caae.build_generator if config.model == "caae" else cgan.build_generator
            generator = builder(dims, config)
            generator.load_state_dict(state["generator"])
            return cls(
                config=config,
                face_model_id=face_model_id,
                basis=basis,
                identity_basis=identity_basis,
                coefficient_mean=state["coefficient_mean"].numpy().astype(np.float32),
                coefficient_std=state["coefficient_std"].numpy().astype(np.float32),
                generator=generator.eval(),
                history=tuple(EpochStats(**h) for h in state["history"]),
                summary=DataSummary.from_json(state["summary"]),
            )
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise CheckpointError(f"{source}: inconsistent learned AU checkpoint ({exc})") from exc


def _basis_state(basis: ExpressionBasis) -> dict[str, Any]:
    return {
        "mean_model_mm": torch.from_numpy(basis.mean_model_mm.copy()),
        "components": torch.from_numpy(basis.components.copy()),
        "explained_variance_ratio": torch.from_numpy(basis.explained_variance_ratio.copy()),
        "variance_mm2": torch.from_numpy(basis.variance_mm2.copy()),
        "variance_target": basis.variance_target,
    }


def _basis_from_state(state: dict[str, Any], face_model_id: str) -> ExpressionBasis:
    return ExpressionBasis(
        mean_model_mm=state["mean_model_mm"].numpy().astype(np.float32),
        components=state["components"].numpy().astype(np.float32),
        explained_variance_ratio=state["explained_variance_ratio"].numpy().astype(np.float64),
        variance_mm2=state["variance_mm2"].numpy().astype(np.float64),
        face_model_id=face_model_id,
        variance_target=float(state["variance_target"]),
    )


def load_au_model(path: str | Path, face_model_id: str) -> TrainedAUModel:
    """Load a checkpoint written by :meth:`TrainedAUModel.save_checkpoint`.

    Raises
    ------
    CheckpointError
        The file is missing, not a torch file, or not a learned AU model of this format.
    augmentface.expression.space.FaceModelMismatchError
        It was trained on manifests of another face model than ``face_model_id``.
    """
    return TrainedAUModel.from_checkpoint(read_checkpoint(path, face_model_id), path)
