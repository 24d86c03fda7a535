"""AEDC's objective (Agustsson et al. 2019, Eq. 3 with the least-squares GAN) as a TrainingTask.

Encoder/generator, per batch::

    L_EG = adversarial * sum_k (D_k(x') - 1)^2 + lambda * MSE(x, x') + lambda_FM * FM(x, x')
           + beta * H(w_hat)

* LS-GAN over the scales ``k`` of the multi-scale discriminator; D minimises
  ``sum_k [(D_k(x) - 1)^2 + D_k(x')^2] / 2``, one step after each generator step;
* MSE on images in ``[-1, 1]`` (the generator's tanh range), ``lambda = 10`` as in the paper
  (``codecbench train --lambda``);
* FM: pix2pixHD's feature matching loss, L1 between D's features of ``x`` and ``x'`` (weight 10);
* ``beta = 0`` as in the paper's GC models: the rate is set by ``C`` and ``L``, not learned. The
  symbol model's cross-entropy (the estimated rate) is still minimised, but only its own
  probability tables receive its gradient (the symbols are integers), so it fits the codes
  without pushing on the encoder.

``adversarial`` is 1 in the paper. With ``adversarial = 0`` and ``lambda_fm = 0`` there is no
discriminator: a warm-up stage (MSE only) that a GAN run can start from with ``--init``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from codecbench import CodecError
from codecbench.learned import TrainingTask, crop_to, pad_to_stride
from codecbench_aedc.discriminator import MultiScaleDiscriminator

LAMBDA_MSE = 10.0
LAMBDA_FM = 10.0


@dataclass(frozen=True)
class LossSettings:
    """The weights of ``L_EG`` (``lambda_mse`` is ``codecbench train --lambda``)."""

    lambda_mse: float = LAMBDA_MSE
    lambda_fm: float = LAMBDA_FM
    adversarial: float = 1.0
    disc_width: int = 64
    disc_scales: int = 3

    def __post_init__(self) -> None:
        if min(self.lambda_mse, self.lambda_fm, self.adversarial) < 0 or self.disc_scales < 1:
            raise CodecError("AEDC needs lambda, lambda_fm, adversarial >= 0 and disc_scales >= 1")

    @property
    def uses_discriminator(self) -> bool:
        return self.adversarial > 0 or self.lambda_fm > 0


def lsgan_generator_loss(fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """``sum_k mean (D_k(x') - 1)^2``."""
    return sum(torch.mean((scale[-1] - 1) ** 2) for scale in fake)


def lsgan_discriminator_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """``sum_k mean [(D_k(x) - 1)^2 + D_k(x')^2] / 2``."""
    return sum(0.5 * (torch.mean((r[-1] - 1) ** 2) + torch.mean(f[-1] ** 2)) for r, f in zip(real, fake))


def feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """pix2pixHD's: L1 between D's hidden features, each weighted ``4 / (n_layers + 1) / scales``
    (pix2pixHD's D has ``n_layers + 1`` hidden layers, so each scale's layers weigh 4 in all)."""
    return sum(4.0 / (len(r_scale) - 1) / len(real)
               * sum(F.l1_loss(f, r.detach()) for r, f in zip(r_scale[:-1], f_scale[:-1]))
               for r_scale, f_scale in zip(real, fake))


def bits_per_pixel(likelihoods: torch.Tensor, pixels: int) -> torch.Tensor:
    return torch.log2(likelihoods).sum() / -pixels


class AEDCTask(TrainingTask):
    """``L_EG`` for the model and the multi-scale discriminator's LS-GAN loss."""

    def __init__(self, model: nn.Module, settings: LossSettings, stride: int) -> None:
        self.model, self.settings, self.stride = model, settings, stride
        self.discriminator = (MultiScaleDiscriminator(settings.disc_width, settings.disc_scales)
                              if settings.uses_discriminator else None)
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    def terms(self, x: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
        out = self.model(x)
        x_hat, target = crop_to(out["x_hat"], height, width), crop_to(x, height, width)
        return {"x_hat": x_hat, "bpp": bits_per_pixel(out["likelihoods"]["w"], x.shape[0] * height * width),
                "mse": torch.mean((x_hat * 2 - target * 2) ** 2)}  # on the [-1, 1] scale

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        s = self.settings
        t = self.terms(batch, *batch.shape[-2:])
        loss = s.lambda_mse * t["mse"] + t["bpp"]
        stats = {"bpp": t["bpp"].item(), "psnr": psnr(t["mse"].item())}
        if self.discriminator is not None:
            with torch.no_grad():
                real = self.discriminator(batch)
            fake = self.discriminator(t["x_hat"])
            g_loss, fm_loss = lsgan_generator_loss(fake), feature_matching_loss(real, fake)
            loss = loss + s.adversarial * g_loss + s.lambda_fm * fm_loss
            stats.update(g_loss=g_loss.item(), fm_loss=fm_loss.item())
            self._last = (batch, t["x_hat"].detach())
        return loss, {"loss": loss.item(), **stats}

    def discriminator_loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        if self._last is not None and self._last[0] is batch:
            x_hat = self._last[1]
        else:  # not right after loss() on this batch: recompute the reconstruction
            with torch.no_grad():
                x_hat = self.model(batch)["x_hat"]
        self._last = None
        d_loss = lsgan_discriminator_loss(self.discriminator(batch), self.discriminator(x_hat))
        return d_loss, {"d_loss": d_loss.item()}

    def evaluate(self, image: torch.Tensor) -> dict[str, float]:
        height, width = image.shape[-2:]
        t = self.terms(pad_to_stride(image, self.stride), height, width)
        return {"bpp": t["bpp"].item(), "psnr": psnr(t["mse"].item()), "bound_bpp": self.model.bound_bpp()}


def psnr(mse_pm1: float) -> float:
    """PSNR in dB from an MSE on the ``[-1, 1]`` scale (peak-to-peak 2)."""
    return 10 * math.log10(4 / mse_pm1) if mse_pm1 > 0 else float("inf")
