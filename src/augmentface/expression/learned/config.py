"""The configuration of one training run of a learned AU model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from augmentface.errors import UsageError
from augmentface.expression.au_rig import spec_for
from augmentface.expression.learned.labels import DISFA_AUS
from augmentface.expression.space import NeutralReferenceConfig

#: The learned models: a conditional GAN and a conditional adversarial autoencoder.
MODELS = ("cgan", "caae")


class TrainConfigError(UsageError):
    """A training configuration value out of its range."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; the same config and data give the same weights.

    Attributes
    ----------
    model : {"cgan", "caae"}
        Conditional GAN (:mod:`.cgan`) or conditional adversarial autoencoder (:mod:`.caae`).
    aus : tuple of int
        AUs the model is conditioned on; the manifest needs a ``label_AU<n>`` column for each.
    epochs, batch_size, lr : int, int, float
        Passes over the training frames, frames per step, Adam learning rate.
    min_steps : int
        Least number of optimiser steps: a small manifest trains for more epochs than
        ``epochs`` to reach it (:func:`~augmentface.expression.learned.train.epochs_to_run`).
    latent_dim, hidden : int
        Width of the noise/latent code and of the hidden layers.
    soft_label_width : float
        Training labels are ``clip(y + U(−w, w), 0, 5)`` (FACS units); 0 disables.
    seed : int
        Seeds the split, the initial weights, the batches and the noise.
    device : str
        Torch device for training ("cpu" or "cuda"); models are returned on the CPU.
    validation_share : float
        Share of subjects held out for validation, [0, 0.5].
    variance, max_components : float, int
        Explained variance the expression basis keeps (with at least one component per AU),
        and its largest size.
    identity_dim : int
        Components of the identity code (PCA of the subjects' identity offsets) the CAAE is
        conditioned on; at most the training subjects minus one are used.
    r1_gamma : float
        Weight of the R1 gradient penalty on the discriminators.
    adversarial_weight : float
        CAAE: weight of its two adversarial terms against the reconstruction loss.
    neutral : NeutralReferenceConfig
        How each subject's neutral reference frames are chosen.
    """

    model: str = "caae"
    aus: tuple[int, ...] = DISFA_AUS
    epochs: int = 10
    min_steps: int = 1000
    batch_size: int = 512
    lr: float = 1e-3
    latent_dim: int = 8
    hidden: int = 256
    soft_label_width: float = 0.5
    seed: int = 0
    device: str = "cpu"
    validation_share: float = 0.2
    variance: float = 0.95
    max_components: int = 64
    identity_dim: int = 4
    r1_gamma: float = 1.0
    adversarial_weight: float = 1.0
    neutral: NeutralReferenceConfig = field(default_factory=NeutralReferenceConfig)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise TrainConfigError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if not self.aus or len(set(self.aus)) != len(self.aus):
            raise TrainConfigError(f"aus must be distinct AU numbers, got {self.aus}")
        for au in self.aus:
            spec_for(au)  # an AU the rig does not know could never be realised
        positive = ("epochs", "min_steps", "batch_size", "latent_dim", "hidden", "max_components")
        for name in (*positive, "identity_dim"):
            if int(getattr(self, name)) < 1:
                raise TrainConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise TrainConfigError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.soft_label_width <= 5.0:
            raise TrainConfigError(
                f"soft_label_width must be in [0, 5] FACS units, got {self.soft_label_width}"
            )
        if not 0.0 <= self.validation_share <= 0.5:
            raise TrainConfigError(
                f"validation_share must be in [0, 0.5], got {self.validation_share}"
            )
        if not 0.0 < self.variance <= 1.0:
            raise TrainConfigError(f"variance must be in (0, 1], got {self.variance}")
        if self.r1_gamma < 0 or self.adversarial_weight < 0:
            raise TrainConfigError("r1_gamma and adversarial_weight must not be negative")
        if not self.device.startswith(("cpu", "cuda")):
            raise TrainConfigError(f"device must be 'cpu' or 'cuda[:n]', got {self.device!r}")

    def to_json(self) -> dict[str, Any]:
        """The config as JSON-able values (lists, dicts, numbers, strings)."""
        out = asdict(self)
        out["aus"] = list(self.aus)
        out["neutral"]["neutral_emotions"] = list(self.neutral.neutral_emotions)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_json`."""
        data = dict(data)
        neutral = dict(data.pop("neutral"))
        neutral["neutral_emotions"] = tuple(neutral["neutral_emotions"])
        return cls(aus=tuple(data.pop("aus")), neutral=NeutralReferenceConfig(**neutral), **data)
