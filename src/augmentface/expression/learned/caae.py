"""Conditional adversarial autoencoder on expression coefficients (after Liu et al. 2019).

Liu, Z., Song, G., Cai, J., Cham, T.-J., Zhang, J., "Conditional adversarial synthesis of 3D
facial action units", Neurocomputing 355 (2019) 200–208, which adapts the CAAE of Zhang, Song &
Qi (CVPR 2017) to 3D expression parameters:

- encoder ``E(x) -> z`` in (−1, 1)^L, pushed towards a uniform prior by a discriminator on z
  (``D_z``: prior samples vs encodings), as in Makhzani et al.'s adversarial autoencoders;
- decoder ``G(z, y, identity) -> x``, conditioned on the AU labels ``y`` (/5) and on the
  identity code of the face (so the expression it draws suits that face's shape);
- a reconstruction loss ``|G(E(x), y, id) − x|²``;
- a discriminator on ``(x, y, identity)`` (``D_x``) that sees real frames against
  ``G(z, y, id)`` with ``z`` drawn from the prior. Drawing ``z`` from the prior rather than
  encoding the frame is what synthesis does; it also stops G from reading the AUs out of
  ``E(x)`` instead of ``y``, since a prior draw carries no information about the frame.

All adversarial terms use the non-saturating loss with R1 (see :mod:`.cgan` for why);
``adversarial_weight`` scales them against the reconstruction.
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
    """G(z, y, identity): latent, AU labels and identity code -> standardised coefficients."""
    return ConditionalMLP(
        (config.latent_dim, dims.n_aus, dims.n_identity), config.hidden, dims.n_coefficients
    )


class CAAE:
    """The CAAE's networks and optimisers, one training step at a time."""

    def __init__(self, dims: Dims, config: TrainConfig, device: torch.device) -> None:
        self.config = config
        hidden = config.hidden
        self.encoder = ConditionalMLP(
            (dims.n_coefficients,), hidden, config.latent_dim, bounded=True
        ).to(device)
        self.generator = build_generator(dims, config).to(device)
        self.latent_discriminator = ConditionalMLP((config.latent_dim,), hidden, 1).to(device)
        self.discriminator = ConditionalMLP(
            (dims.n_coefficients, dims.n_aus, dims.n_identity), hidden, 1
        ).to(device)
        betas = (0.5, 0.999)
        autoencoder = [*self.encoder.parameters(), *self.generator.parameters()]
        critics = [*self.latent_discriminator.parameters(), *self.discriminator.parameters()]
        self.opt_g = torch.optim.Adam(autoencoder, lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(critics, lr=config.lr, betas=betas)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, identity: torch.Tensor) -> dict:
        """One update of both discriminators, then of encoder and decoder, on a batch.

        Parameters
        ----------
        x : (B, K) standardised coefficients
        y : (B, A) soft AU labels / 5
        identity : (B, D) identity codes

        Returns
        -------
        dict
            ``d_loss``, ``g_loss`` (adversarial part of the autoencoder loss) and ``rec_loss``.
        """
        cfg = self.config
        encoded = self.encoder(x)
        reconstructed = self.generator(encoded, y, identity)
        prior = torch.rand(len(x), cfg.latent_dim, device=x.device) * 2.0 - 1.0
        fake = self.generator(prior, y, identity)

        penalise = cfg.r1_gamma > 0
        real_z = prior.detach().requires_grad_(penalise)
        real_x = x.detach().requires_grad_(penalise)
        z_logits = self.latent_discriminator(real_z)
        x_logits = self.discriminator(real_x, y, identity)
        d_loss = nonsaturating_d_loss(
            z_logits, self.latent_discriminator(encoded.detach())
        ) + nonsaturating_d_loss(x_logits, self.discriminator(fake.detach(), y, identity))
        if penalise:
            r1 = r1_penalty(z_logits, real_z) + r1_penalty(x_logits, real_x)
            d_loss = d_loss + 0.5 * cfg.r1_gamma * r1
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()

        rec_loss = torch.mean((reconstructed - x) ** 2)
        g_loss = nonsaturating_g_loss(self.latent_discriminator(encoded)) + nonsaturating_g_loss(
            self.discriminator(fake, y, identity)
        )
        self.opt_g.zero_grad(set_to_none=True)
        (rec_loss + cfg.adversarial_weight * g_loss).backward()
        self.opt_g.step()
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "rec_loss": rec_loss.item()}
