"""Conditional GAN on expression coefficients: G(z, y) -> x, D(x, y) -> real or generated.

``x`` are the K standardised coefficients of an expression in the data-driven basis
(:mod:`augmentface.expression.space`), ``y`` the AU labels divided by 5, ``z ~ N(0, I)``.

**Loss: non-saturating GAN with an R1 penalty** (Goodfellow et al. 2014; Mescheder, Geiger &
Nowozin 2018, "Which training methods for GANs do actually converge?"), rather than WGAN-GP:

- One discriminator step per generator step. WGAN-GP needs several critic steps per generator
  step and a gradient penalty at interpolated points on every one, three to five times the
  work, and CPU time is what bounds training on a DISFA-sized set.
- R1 (the squared gradient of D at the real samples) makes the non-saturating game locally
  convergent, which is what WGAN-GP is chosen for; it needs no interpolates.
- The same logits and losses serve the CAAE's two discriminators (:mod:`.caae`).
"""

from __future__ import annotations

import torch

from augmentface.expression.learned.config import TrainConfig
from augmentface.expression.learned.nets import (
    ConditionalMLP,
    Dims,
    nonsaturating_d_loss,
    nonsaturating_g_loss,
    r1_penalty,
)


def build_generator(dims: Dims, config: TrainConfig) -> ConditionalMLP:
    """G(z, y): latent and AU labels -> standardised coefficients."""
    return ConditionalMLP((config.latent_dim, dims.n_aus), config.hidden, dims.n_coefficients)


class CGAN:
    """The CGAN's networks and optimisers, one training step at a time."""

    def __init__(self, dims: Dims, config: TrainConfig, device: torch.device) -> None:
        self.config = config
        self.generator = build_generator(dims, config).to(device)
        self.discriminator = ConditionalMLP((dims.n_coefficients, dims.n_aus), config.hidden, 1).to(
            device
        )
        betas = (0.5, 0.999)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, identity: torch.Tensor) -> dict:
        """One D and one G update on a batch; ``identity`` is unused (G is not conditioned on it).

        Parameters
        ----------
        x : (B, K) standardised coefficients
        y : (B, A) soft AU labels / 5
        identity : (B, D) identity codes

        Returns
        -------
        dict
            ``d_loss`` and ``g_loss`` of the step.
        """
        z = torch.randn(len(x), self.config.latent_dim, device=x.device)
        fake = self.generator(z, y)
        real = x.detach().requires_grad_(self.config.r1_gamma > 0)
        real_logits = self.discriminator(real, y)
        d_loss = nonsaturating_d_loss(real_logits, self.discriminator(fake.detach(), y))
        if self.config.r1_gamma > 0:
            d_loss = d_loss + 0.5 * self.config.r1_gamma * r1_penalty(real_logits, real)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        g_loss = nonsaturating_g_loss(self.discriminator(fake, y))
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
