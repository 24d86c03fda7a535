"""HiFiC's training objective (Mentzer et al. 2020, Eq. 4-5) as a codecbench :class:`TrainingTask`.

Encoder/generator loss, per batch::

    L_EG = lambda' * r + k_M * MSE + k_P * d_P - beta * log D(x', y)

* ``r`` is the rate estimate in bits per pixel (hyperprior likelihoods of ``y`` and ``z``);
* MSE is computed on images scaled to ``[0, 255]``, ``d_P`` is LPIPS (or ST-LPIPS, see
  :func:`codecbench.learned.resolve_perceptual`); the paper's weights are ``k_M = 0.075 * 2^-5``,
  ``k_P = 1`` and ``beta = 0.15``;
* rate control: ``lambda' = lambda_a`` when the batch's rate exceeds the target ``r_t``, else
  ``lambda_b`` (``lambda_a >> lambda_b``), so the model settles at ``r_t``. The paper's
  ``(r_t, lambda_a)`` are (0.14, 2), (0.30, 1), (0.45, 0.5) for Lo/Mi/Hi, ``lambda_b = 2^-4``;
* ``-log D`` is the non-saturating GAN loss; D minimises ``-log D(x, y) - log(1 - D(x', y))``,
  one discriminator step after each generator step, on the same batch.

With ``beta = 0`` there is no discriminator: the paper's first stage (rate, MSE and perceptual
only), from which the GAN stage is initialised (``codecbench train --init``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from codecbench import CodecError
from codecbench.learned import (
    TrainingTask,
    bits_per_pixel,
    crop_to,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    pad_to_stride,
    perceptual_loss,
    psnr_from_mse,
    resolve_perceptual,
)
from codecbench_hific.discriminator import MultiScaleDiscriminator

K_M = 0.075 * 2**-5
K_P = 1.0
BETA = 0.15
LAMBDA_B = 2**-4


@dataclass(frozen=True)
class LossSettings:
    """The weights of :data:`L_EG` (``lambda_a`` is ``codecbench train --lambda``)."""

    lambda_a: float
    target_bpp: float = 0.30
    lambda_b: float = LAMBDA_B
    k_m: float = K_M
    k_p: float = K_P
    beta: float = BETA
    perceptual: str = "auto"
    disc_width: int = 64
    disc_scales: int = 2

    def __post_init__(self) -> None:
        if not self.lambda_a > self.lambda_b:
            raise CodecError(f"HiFiC rate control needs lambda_a > lambda_b (got {self.lambda_a} "
                             f"and {self.lambda_b}); raise --lambda or lower -m lambda_b")
        if self.target_bpp <= 0 or self.beta < 0:
            raise CodecError("HiFiC needs target_bpp > 0 and beta >= 0")


TRAINING_OPTIONS = tuple(f.name for f in fields(LossSettings) if f.name != "lambda_a")
"""The model options that are :class:`LossSettings` (``lambda_a`` is ``--lambda``)."""


def rate_weight(bpp: float, settings: LossSettings) -> float:
    """Rate control: ``lambda_a`` above the target rate, ``lambda_b`` at or below it."""
    return settings.lambda_a if bpp > settings.target_bpp else settings.lambda_b


def mse_255(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error of images in ``[0, 1]``, measured on the ``[0, 255]`` scale."""
    return torch.mean((x_hat * 255 - x * 255) ** 2)


class HiFiCTask(TrainingTask):
    """:data:`L_EG` for the model, the conditional discriminator's loss, the hyperprior's aux loss."""

    def __init__(self, model: nn.Module, settings: LossSettings, stride: int) -> None:
        self.model, self.settings, self.stride = model, settings, stride
        self.perceptual_name = resolve_perceptual(settings.perceptual)
        self.perceptual = perceptual_loss(self.perceptual_name)
        self.discriminator = (MultiScaleDiscriminator(model.M, settings.disc_width, settings.disc_scales)
                              if settings.beta > 0 else None)
        self._last: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def perceptual_distance(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.perceptual.to(x.device)
        return self.perceptual(x_hat, x)

    def terms(self, x: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
        """Every term of :data:`L_EG` but the adversarial one, for a padded batch ``x``."""
        out = self.model(x)
        x_hat, target = crop_to(out["x_hat"], height, width), crop_to(x, height, width)
        bpp = bits_per_pixel(out["likelihoods"], x.shape[0] * height * width)
        return {"x_hat": x_hat, "y_hat": out["y_hat"], "bpp": bpp, "mse": mse_255(x_hat, target),
                "perceptual": self.perceptual_distance(x_hat, target)}

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        s = self.settings
        t = self.terms(batch, *batch.shape[-2:])
        lmbda = rate_weight(t["bpp"].item(), s)
        loss = lmbda * t["bpp"] + s.k_m * t["mse"] + s.k_p * t["perceptual"]
        stats = {"bpp": t["bpp"].item(), "psnr": psnr_from_mse(t["mse"].item(), peak=255),
                 "perceptual": t["perceptual"].item(), "lambda": lmbda}
        if self.discriminator is not None:
            g_loss = generator_adversarial_loss(self.discriminator(t["x_hat"], t["y_hat"].detach()))
            loss = loss + s.beta * g_loss
            stats["g_loss"] = g_loss.item()
            self._last = (batch, t["x_hat"].detach(), t["y_hat"].detach())
        stats["loss"] = loss.item()
        return loss, stats

    def discriminator_loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        if self._last is not None and self._last[0] is batch:
            _, x_hat, y_hat = self._last
        else:  # not right after loss() on this batch: recompute the reconstruction
            with torch.no_grad():
                out = self.model(batch)
            x_hat, y_hat = out["x_hat"], out["y_hat"]
        self._last = None
        d_loss = discriminator_adversarial_loss(self.discriminator(batch, y_hat), self.discriminator(x_hat, y_hat))
        return d_loss, {"d_loss": d_loss.item()}

    def evaluate(self, image: torch.Tensor) -> dict[str, float]:
        height, width = image.shape[-2:]
        t = self.terms(pad_to_stride(image, self.stride), height, width)
        return {"bpp": t["bpp"].item(), "psnr": psnr_from_mse(t["mse"].item(), peak=255),
                f"{self.perceptual_name}": t["perceptual"].item()}
