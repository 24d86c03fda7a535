"""AEDC's training objectives as a TrainingTask: the paper's, and the flagship's two-stage recipe.

**Recipe ``paper``** (the default; Agustsson et al. 2019, Eq. 3 with the least-squares GAN).
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
  probability tables receive its gradient, so it fits the codes without pushing on the encoder.

``adversarial`` is 1 in the paper. With ``adversarial = 0`` and ``lambda_fm = 0`` there is no
discriminator: a warm-up stage (MSE only) that a GAN run can start from with ``--init``.

**Recipe ``rdp``** (``-m recipe=rdp``; the rate-distortion-perception recipe of the OT+GAN
flagship, HiFiC and MS-ILLM, on AEDC's structure), in two stages (``-m stage=1|2``):

* stage 1: encoder, generator and symbol model minimise
  ``lambda * (255^2 * MSE + lpips_weight * LPIPS) + m * bpp`` (MSE on ``[0, 1]``, LPIPS-Alex from
  the learned toolkit). The rate reaches the encoder through the quantizer's soft assignment
  (:meth:`CategoricalEntropyModel.forward`); its value is the rate of the hard symbols the coder
  codes. ``m`` is 1, or with ``target_bpp`` > 0 adapted by :class:`RateController` so that the
  training crops' rate settles at ``target_bpp`` (at most the bound ``C * log2(L) / 256``). No
  discriminator.
* stage 2 (``--init`` the stage-1 ``model.pt``): encoder, centres and symbol model frozen; the
  generator minimises ``lambda * D + adversarial * LS-GAN + lambda_fm * FM`` against the paper's
  multi-scale discriminator (``D`` as in stage 1; ``lambda_fm`` on the paper's scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from codecbench import CodecError
from codecbench.learned import (
    LPIPSLoss,
    RateController,
    TrainingError,
    TrainingTask,
    bits_per_pixel,
    crop_to,
    pad_to_stride,
    psnr_from_mse,
)
from codecbench_aedc.discriminator import MultiScaleDiscriminator

LAMBDA_MSE = 10.0
LAMBDA_FM = 10.0
RECIPES = ("paper", "rdp")


@dataclass(frozen=True)
class LossSettings:
    """The weights of the objective (``lambda_mse`` is ``codecbench train --lambda``)."""

    lambda_mse: float = LAMBDA_MSE
    lambda_fm: float = LAMBDA_FM
    adversarial: float = 1.0
    disc_width: int = 64
    disc_scales: int = 3
    recipe: str = "paper"
    stage: int = 1
    lpips_weight: float = 0.0
    target_bpp: float = 0.0

    def __post_init__(self) -> None:
        if min(self.lambda_mse, self.lambda_fm, self.adversarial, self.lpips_weight, self.target_bpp) < 0:
            raise CodecError("AEDC needs lambda, lambda_fm, adversarial, lpips_weight, target_bpp >= 0")
        if self.disc_scales < 1:
            raise CodecError(f"AEDC needs disc_scales >= 1, not {self.disc_scales}")
        if self.recipe not in RECIPES:
            raise CodecError(f'Invalid AEDC recipe "{self.recipe}"; expected one of {", ".join(RECIPES)}')
        if self.stage not in (1, 2) or (self.stage == 2 and self.recipe != "rdp"):
            raise CodecError(f"Invalid AEDC stage {self.stage}; expected 1, or 2 with -m recipe=rdp")

    @property
    def uses_discriminator(self) -> bool:
        if self.recipe == "rdp":
            return self.stage == 2
        return self.adversarial > 0 or self.lambda_fm > 0


def lsgan_generator_loss(fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """``sum_k mean (D_k(x') - 1)^2``."""
    return sum(torch.mean((scale[-1].float() - 1) ** 2) for scale in fake)


def lsgan_discriminator_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """``sum_k mean [(D_k(x) - 1)^2 + D_k(x')^2] / 2``."""
    return sum(0.5 * (torch.mean((r[-1].float() - 1) ** 2) + torch.mean(f[-1].float() ** 2))
               for r, f in zip(real, fake))


def feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """pix2pixHD's: L1 between D's hidden features, each weighted ``4 / (n_layers + 1) / scales``
    (pix2pixHD's D has ``n_layers + 1`` hidden layers, so each scale's layers weigh 4 in all)."""
    return sum(4.0 / (len(r_scale) - 1) / len(real)
               * sum(F.l1_loss(f.float(), r.detach().float()) for r, f in zip(r_scale[:-1], f_scale[:-1]))
               for r_scale, f_scale in zip(real, fake))


class AEDCTask(TrainingTask):
    """The objective of ``settings.recipe`` (and stage) for the model and its discriminator."""

    def __init__(self, model: nn.Module, settings: LossSettings, stride: int,
                 lpips: nn.Module | None = None) -> None:
        self.model, self.settings, self.stride = model, settings, stride
        self.rdp = settings.recipe == "rdp"
        self.discriminator = (MultiScaleDiscriminator(settings.disc_width, settings.disc_scales)
                              if settings.uses_discriminator else None)
        self.rate_controller = RateController(settings.target_bpp if self.rdp and settings.stage == 1 else 0.0)
        self.lpips = lpips
        if lpips is None and self.rdp and settings.lpips_weight > 0:
            self.lpips = self._lpips()
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None
        if self.rdp and settings.stage == 2:  # the rate and the codes stay those of stage 1
            for frozen in (model.encoder, model.quantizer, model.entropy_model):
                frozen.requires_grad_(False)

    def _lpips(self) -> nn.Module:
        """The LPIPS-Alex loss of ``lpips_weight`` (also a validation figure)."""
        from codecbench import CodecbenchError

        try:
            return LPIPSLoss()
        except CodecbenchError as exc:
            raise TrainingError(f"lpips_weight {self.settings.lpips_weight} needs the LPIPS trunk: "
                                f"{exc} (set CODECBENCH_WEIGHTS)") from exc

    def modules(self) -> dict[str, nn.Module]:
        """The model, the discriminator (if any) and, for ``target_bpp``, the rate controller."""
        modules = super().modules()
        if self.rate_controller.target_bpp > 0:
            modules["rate_controller"] = self.rate_controller
        return modules

    def main_parameters(self) -> list[nn.Parameter]:
        """Everything trainable of the model (the generator only in the ``rdp`` recipe's stage 2)."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def export_info(self) -> dict[str, object]:
        """The recipe and stage, the perceptual loss (and its trunk) and the rate multiplier."""
        s = self.settings
        info: dict[str, object] = {"recipe": s.recipe, "stage": s.stage}
        if self.rdp:
            info["perceptual_loss"] = (f"{LPIPSLoss.name} x {s.lpips_weight} (trunk {self.lpips.trunk})"
                                       if self.lpips is not None and s.lpips_weight > 0 else "none")
            info["rate_multiplier"] = float(self.rate_controller.multiplier())
        return info

    def terms(self, x: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
        """``x_hat``, the symbol model's ``bpp`` of the hard symbols and the MSE on ``[0, 1]``."""
        rate_gradient = self.rdp and self.settings.stage == 1 and self.model.training
        out = self.model(x, rate_gradient=rate_gradient)
        x_hat, target = crop_to(out["x_hat"], height, width), crop_to(x, height, width)
        return {"x_hat": x_hat, "bpp": bits_per_pixel(out["likelihoods"], x.shape[0] * height * width),
                "mse": torch.mean((x_hat.float() - target) ** 2)}

    def distortion(self, t: dict[str, torch.Tensor], target: torch.Tensor,
                   stats: dict[str, float]) -> torch.Tensor:
        """``lambda * D``: the paper's ``lambda * MSE`` on ``[-1, 1]``, or the ``rdp`` recipe's
        ``lambda * (255^2 * MSE + lpips_weight * LPIPS)``."""
        s = self.settings
        if not self.rdp:
            return s.lambda_mse * 4 * t["mse"]
        distortion = 255**2 * t["mse"]
        if self.lpips is not None and s.lpips_weight > 0:
            lpips = self.lpips.to(target.device)(t["x_hat"], target)
            distortion = distortion + s.lpips_weight * lpips
            stats["lpips"] = lpips.item()
        return s.lambda_mse * distortion

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        s = self.settings
        t = self.terms(batch, *batch.shape[-2:])
        stats = {"bpp": t["bpp"].item(), "psnr": psnr_from_mse(t["mse"].item())}
        loss = self.distortion(t, batch, stats)
        if self.rdp and s.stage == 1:
            multiplier = self.rate_controller.multiplier()
            loss = loss + multiplier.to(batch.device) * t["bpp"]
            stats["rate_multiplier"] = float(multiplier)
            self.rate_controller.update(stats["bpp"])  # the hard symbols' rate: what the coder spends
        elif not self.rdp:
            loss = loss + t["bpp"]  # trains the symbol model's tables only (beta = 0)
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
        """bpp (symbol model), PSNR, the bound; in the ``rdp`` recipe also LPIPS and ``bpp_coded``,
        the rANS coder's real bytes (stream only, without the ~40-byte container header)."""
        height, width = image.shape[-2:]
        x = pad_to_stride(image, self.stride)
        t = self.terms(x, height, width)
        stats = {"bpp": t["bpp"].item(), "psnr": psnr_from_mse(t["mse"].item()),
                 "bound_bpp": self.model.bound_bpp()}
        if self.rdp:
            self.model.update(force=True)
            strings = self.model.compress(x)["strings"][0]
            stats["bpp_coded"] = 8 * sum(len(s) for s in strings) / (image.shape[0] * height * width)
            if self.lpips is not None:
                stats["lpips"] = float(self.lpips.to(image.device)(t["x_hat"], image))
        return stats
