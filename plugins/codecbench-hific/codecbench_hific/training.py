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

Two options bring the OT+GAN flagship's recipe (``codecbench.learned``'s shared losses and rate
controller) to HiFiC's structure; their defaults keep the paper's objective:

* ``rate_control = "dual"`` (default ``"switch"``, the paper's ``lambda_a``/``lambda_b``):
  ``lambda' = lambda_a * m``, ``m`` adapted by :class:`~codecbench.learned.RateController` (dual
  ascent on ``log m``, checkpointed) from the rate of the *coded* latents
  (:meth:`~codecbench_hific.model.HiFiCModel.coded_likelihoods`: rounded, as the range coder
  codes them), so the rate settles at ``target_bpp`` whatever ``lambda_a`` is;
* ``stage = 2`` (default 1): E and the probability model (hyper-encoder, hyper-decoder, both
  entropy models) frozen, so the codes and their rate stay those of the ``--init`` model; only G
  (and D) train, on ``k_M * MSE + k_P * d_P - beta * log D``. The paper trains E with the GAN.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from codecbench import CodecError
from codecbench.learned import (
    RateController,
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
RATE_CONTROLS = ("switch", "dual")


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
    rate_control: str = "switch"
    stage: int = 1

    def __post_init__(self) -> None:
        if self.rate_control not in RATE_CONTROLS:
            raise CodecError(f'Invalid HiFiC rate_control "{self.rate_control}"; expected one of '
                             f'{", ".join(RATE_CONTROLS)}')
        if self.stage not in (1, 2):
            raise CodecError(f"Invalid HiFiC stage {self.stage}; expected 1 or 2 (E and the probability model frozen)")
        if self.rate_control == "switch" and not self.lambda_a > self.lambda_b:
            raise CodecError(f"HiFiC rate control needs lambda_a > lambda_b (got {self.lambda_a} "
                             f"and {self.lambda_b}); raise --lambda or lower -m lambda_b")
        if self.target_bpp <= 0 or self.beta < 0 or self.lambda_a <= 0:
            raise CodecError("HiFiC needs target_bpp > 0, beta >= 0 and --lambda > 0")


TRAINING_OPTIONS = tuple(f.name for f in fields(LossSettings) if f.name != "lambda_a")
"""The model options that are :class:`LossSettings` (``lambda_a`` is ``--lambda``)."""


def rate_weight(bpp: float, settings: LossSettings) -> float:
    """Rate control: ``lambda_a`` above the target rate, ``lambda_b`` at or below it."""
    return settings.lambda_a if bpp > settings.target_bpp else settings.lambda_b


def mse_255(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error of images in ``[0, 1]``, measured on the ``[0, 255]`` scale."""
    return torch.mean((x_hat * 255 - x * 255) ** 2)


FROZEN_IN_STAGE_2 = ("g_a", "h_a", "h_s", "entropy_bottleneck", "gaussian_conditional")
"""The model's parts that ``stage = 2`` freezes: everything but the generator ``g_s``."""


class HiFiCTask(TrainingTask):
    """:data:`L_EG` for the model, the conditional discriminator's loss, the hyperprior's aux loss."""

    def __init__(self, model: nn.Module, settings: LossSettings, stride: int) -> None:
        self.model, self.settings, self.stride = model, settings, stride
        self.perceptual_name = resolve_perceptual(settings.perceptual)
        self.perceptual = perceptual_loss(self.perceptual_name)
        self.discriminator = (MultiScaleDiscriminator(model.M, settings.disc_width, settings.disc_scales)
                              if settings.beta > 0 else None)
        dual = settings.rate_control == "dual" and settings.stage == 1
        self.rate_controller = RateController(settings.target_bpp if dual else 0.0)
        self._last: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        if settings.stage == 2:
            for name in FROZEN_IN_STAGE_2:
                getattr(model, name).requires_grad_(False)

    def modules(self) -> dict[str, nn.Module]:
        """The model, the discriminator (if any) and the rate controller of ``rate_control = "dual"``."""
        modules = super().modules()
        if self.rate_controller.target_bpp > 0:
            modules["rate_controller"] = self.rate_controller
        return modules

    def aux_parameters(self) -> list[nn.Parameter]:
        """The entropy bottleneck's quantiles, unless ``stage = 2`` froze them."""
        return [p for p in super().aux_parameters() if p.requires_grad]

    def export_info(self) -> dict[str, object]:
        """The perceptual loss, the rate control, the stage and the rate multiplier ``m``."""
        s = self.settings
        return {"perceptual_loss": self.perceptual_name, "rate_control": s.rate_control, "stage": s.stage,
                "rate_multiplier": float(self.rate_controller.multiplier())}

    def perceptual_distance(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.perceptual.to(x.device)
        return self.perceptual(x_hat, x)

    def terms(self, x: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
        """Every term of :data:`L_EG` but the adversarial one, for a padded batch ``x``."""
        out = self.model(x)
        x_hat, target = crop_to(out["x_hat"], height, width), crop_to(x, height, width)
        pixels = x.shape[0] * height * width
        terms = {"x_hat": x_hat, "y_hat": out["y_hat"], "bpp": bits_per_pixel(out["likelihoods"], pixels),
                 "mse": mse_255(x_hat, target), "perceptual": self.perceptual_distance(x_hat, target)}
        if self.rate_controller.target_bpp > 0 and self.model.training:
            terms["bpp_coded"] = bits_per_pixel(self.model.coded_likelihoods(out["y"], out["z"]), pixels)
        return terms

    def rate_weight(self, t: dict[str, torch.Tensor]) -> float:
        """``lambda'``: the paper's switch, ``lambda_a * m`` under ``rate_control = "dual"`` (then
        ``m`` steps towards ``target_bpp`` from the coded rate), 0 in stage 2 (the rate is frozen)."""
        s = self.settings
        if s.stage == 2:
            return 0.0
        if s.rate_control == "switch":
            return rate_weight(t["bpp"].item(), s)
        lmbda = s.lambda_a * float(self.rate_controller.multiplier())
        self.rate_controller.update(t["bpp_coded"].item())
        return lmbda

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        s = self.settings
        t = self.terms(batch, *batch.shape[-2:])
        lmbda = self.rate_weight(t)
        loss = s.k_m * t["mse"] + s.k_p * t["perceptual"]
        if lmbda > 0:
            loss = loss + lmbda * t["bpp"]
        stats = {"bpp": t["bpp"].item(), "psnr": psnr_from_mse(t["mse"].item(), peak=255),
                 "perceptual": t["perceptual"].item(), "lambda": lmbda}
        if "bpp_coded" in t:
            stats["bpp_coded"] = t["bpp_coded"].item()
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
