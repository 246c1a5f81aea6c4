"""A learned AU model as an expression source, beside the rig and the VA prior."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from augmentface.errors import UsageError
from augmentface.expression.au_rig import AU_ALIASES, AURig
from augmentface.expression.learned.trained import TrainedAUModel, load_au_model
from augmentface.expression.targets import ExpressionTarget
from augmentface.face.model import FaceModel


class UnsupportedTargetError(UsageError):
    """A target asks for an AU the learned model was not trained on."""


@dataclass(frozen=True)
class LearnedAUSource:
    """Expressions drawn from a trained CGAN or CAAE (an ``ExpressionSource``).

    Every sample, 0 included, draws its latent code from the ``rng`` it is given (seeded per
    row by the caller, see :func:`~augmentface.expression.targets.sample_rng`), so samples vary
    and a rerun repeats them. The CAAE draws for the face set with :meth:`for_identity`; until
    one is set it draws for the mean training identity. The CGAN has no identity input.

    Attributes
    ----------
    trained : TrainedAUModel
    rig : AURig
        Gives the order of the returned AU intensities.
    identity_code : (D,) float32 or None
        Standardised identity code of the face being rendered.
    """

    trained: TrainedAUModel
    rig: AURig
    identity_code: np.ndarray | None = None
    name: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", f"learned-{self.trained.config.model}")

    @classmethod
    def from_checkpoint(cls, path: str | Path, model: FaceModel) -> LearnedAUSource:
        """Load a checkpoint trained for ``model`` (refused for another face model)."""
        return cls(load_au_model(path, model.model_id), model.rig)

    def for_identity(self, identity_offsets_model_mm: np.ndarray) -> LearnedAUSource:
        """This source drawing for the face with these (468, 3) identity offsets, mm."""
        code = self.trained.identity_codes(identity_offsets_model_mm)[0]
        return replace(self, identity_code=code)

    def _labels(self, target: ExpressionTarget) -> np.ndarray:
        aus = self.trained.aus
        labels = np.zeros(len(aus), dtype=np.float32)
        for au, value in target.aus.items():
            au = AU_ALIASES.get(au, au)
            if au in aus:
                labels[aus.index(au)] += value
            elif value > 0:
                trained_on = ", ".join(f"AU{a}" for a in aus)
                raise UnsupportedTargetError(
                    f"target {target.target_id} asks for AU{au}, but the learned model was "
                    f"trained on {trained_on} only; use the FACS rig (direct mode) for it"
                )
        return labels

    def realize(
        self, target: ExpressionTarget, sample: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (au_intensities (K_rig,), expression_offsets_model_mm (468, 3) mm).

        The intensities are the target's AUs in rig order, the label the sample is drawn for.
        """
        labels = self._labels(target)[None, :]
        identity = None if self.identity_code is None else self.identity_code[None, :]
        offsets = self.trained.generate_offsets(labels, rng, identity)[0]
        intensities = self.rig.vector({AU_ALIASES.get(a, a): v for a, v in target.aus.items()})
        return intensities, offsets.astype(np.float64)
