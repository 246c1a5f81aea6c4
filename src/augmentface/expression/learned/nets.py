"""The small multilayer perceptrons both learned models are built from.

Expression coefficients are a few dozen numbers, so plain MLPs (two hidden layers of 128–256
units) are enough and train in minutes on a CPU.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

#: Slope of the LeakyReLU: gradients never vanish for the discriminators.
LEAKY_SLOPE = 0.2


class ConditionalMLP(nn.Module):
    """An MLP on the concatenation of its inputs.

    Parameters
    ----------
    in_dims : tuple of int
        Width of each input, in the order ``forward`` receives them (e.g. latent, AUs, identity).
    hidden : int
        Units of each hidden layer.
    out_dim : int
        Output width.
    layers : int
        Linear layers in all (``layers - 1`` hidden ones), at least 2.
    bounded : bool
        Squash the output into (−1, 1) with ``tanh`` (the CAAE encoder: a uniform prior).
    """

    def __init__(
        self,
        in_dims: tuple[int, ...],
        hidden: int,
        out_dim: int,
        layers: int = 3,
        bounded: bool = False,
    ) -> None:
        super().__init__()
        widths = [sum(in_dims), *([hidden] * (layers - 1))]
        blocks: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            blocks += [nn.Linear(a, b), nn.LeakyReLU(LEAKY_SLOPE)]
        blocks.append(nn.Linear(widths[-1], out_dim))
        if bounded:
            blocks.append(nn.Tanh())
        self.net = nn.Sequential(*blocks)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat(inputs, dim=1))


def nonsaturating_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss −log D(real) − log(1 − D(fake)), from logits."""
    return nn.functional.softplus(-real_logits).mean() + nn.functional.softplus(fake_logits).mean()


def nonsaturating_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss −log D(fake) (Goodfellow et al. 2014's non-saturating form)."""
    return nn.functional.softplus(-fake_logits).mean()


def r1_penalty(logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean squared gradient norm of D at the real samples (Mescheder et al. 2018).

    ``real`` must have ``requires_grad`` set before D was evaluated on it; only the data input
    is penalised, not the condition.
    """
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.pow(2).sum(dim=1).mean()


@dataclass(frozen=True)
class Dims:
    """Widths of a model's data: coefficients K, AUs A, identity code D."""

    n_coefficients: int
    n_aus: int
    n_identity: int


def draw_latent(model: str, n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """(n, dim) float32 latent codes from a model's prior: U(−1, 1) for the CAAE (its encoder
    ends in tanh), N(0, I) for the CGAN."""
    if model == "caae":
        return rng.uniform(-1.0, 1.0, size=(n, dim)).astype(np.float32)
    return rng.standard_normal((n, dim), dtype=np.float32)
