"""The losses learned codecs share: rate from likelihoods, PSNR from MSE, perceptual and adversarial terms.

Every figure here is a *training signal*: bpp estimated from an entropy model's likelihoods is
never a benchmark figure (the harness measures real bytes).

* :func:`bits_per_pixel`: ``-sum(log2 likelihoods) / pixels`` (one tensor or a dict of them);
* :func:`psnr_from_mse`: PSNR in dB from an MSE (images in ``[0, 1]``, or another ``peak``);
* :class:`LPIPSLoss`: LPIPS-Alex v0.1 as a differentiable, frozen loss on images in ``[0, 1]``,
  with the same verified local AlexNet trunk as the ``lpips`` metric (never random weights);
  :class:`STLPIPSLoss`: ST-LPIPS with the weights ``stlpips-pytorch`` ships (works offline);
  :func:`perceptual_loss` builds either by name, :func:`resolve_perceptual` picks for ``auto``;
* :func:`generator_adversarial_loss` / :func:`discriminator_adversarial_loss`: the non-saturating
  GAN losses on logits (one tensor, or a multi-scale discriminator's list, averaged over scales);
* :class:`RateController`: the rate multiplier of ``target_bpp`` training (dual ascent).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from codecbench.errors import CodecbenchError, CodecError, MetricError

PERCEPTUAL_LOSSES = ("lpips", "st-lpips")
"""The names :func:`perceptual_loss` accepts (and ``auto``, see :func:`resolve_perceptual`)."""

Logits = torch.Tensor | Sequence[torch.Tensor]
"""A discriminator's logits: one tensor, or one per scale of a multi-scale discriminator."""

__all__ = [
    "PERCEPTUAL_LOSSES",
    "LPIPSLoss",
    "STLPIPSLoss",
    "RateController",
    "bits_per_pixel",
    "discriminator_adversarial_loss",
    "generator_adversarial_loss",
    "perceptual_loss",
    "psnr_from_mse",
    "resolve_perceptual",
]


def bits_per_pixel(likelihoods: torch.Tensor | Mapping[str, torch.Tensor], pixels: int) -> torch.Tensor:
    """The entropy model's bit estimate per pixel of ``likelihoods`` (summed over a dict's values).

    Computed in float32 whatever the autocast precision (a bf16 log would cost bits of rate)."""
    values = likelihoods.values() if isinstance(likelihoods, Mapping) else [likelihoods]
    return sum(torch.log2(lk.float()).sum() for lk in values) / -pixels


def psnr_from_mse(mse: float, peak: float = 1.0) -> float:
    """PSNR in dB, ``10 log10(peak^2 / mse)``: ``peak`` is 1 for images in ``[0, 1]``, 255 for an
    MSE on the ``[0, 255]`` scale, 2 for images in ``[-1, 1]``; ``inf`` for ``mse = 0``."""
    return 10 * math.log10(peak**2 / mse) if mse > 0 else float("inf")


def _scales(logits: Logits) -> list[torch.Tensor]:
    return [logits] if isinstance(logits, torch.Tensor) else list(logits)


def generator_adversarial_loss(fake_logits: Logits) -> torch.Tensor:
    """Non-saturating generator loss ``-log D(fake)``, averaged over patches and scales."""
    scales = _scales(fake_logits)
    return sum(F.softplus(-lg.float()).mean() for lg in scales) / len(scales)


def discriminator_adversarial_loss(real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
    """``-log D(real) - log(1 - D(fake))``, averaged over patches and scales."""
    pairs = list(zip(_scales(real_logits), _scales(fake_logits), strict=True))
    return sum(F.softplus(-r.float()).mean() + F.softplus(f.float()).mean() for r, f in pairs) / len(pairs)


class LPIPSLoss(nn.Module):
    """LPIPS-Alex (v0.1, ``lpips`` package) between images in ``[0, 1]``; differentiable, frozen.

    The trunk is the ``lpips`` metric's verified AlexNet file (``trunk`` or, by default, the one
    ``codecbench.metrics.lpips`` finds: ``$CODECBENCH_WEIGHTS/lpips/...``, the torch hub cache or a
    hash-checked download). Returns the batch mean. Its parameters never train (``requires_grad``
    off, always in eval mode), so it is not a module a task checkpoints.
    """

    name = "lpips-alex-0.1"

    def __init__(self, trunk: Path | None = None) -> None:
        super().__init__()
        import lpips

        from codecbench.metrics.lpips import LPIPSMetric, load_trunk

        path = Path(trunk) if trunk is not None else LPIPSMetric("alex").trunk_path()
        with warnings.catch_warnings():  # torchvision's "pretrained is deprecated" notices
            warnings.simplefilter("ignore", UserWarning)
            self.net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
        load_trunk(self.net, path)
        self.trunk = str(path)
        self.net.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> LPIPSLoss:
        return super().train(False)  # dropout-free, but keep the package's modules in eval

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.net(x_hat * 2 - 1, x * 2 - 1).float().mean()


class STLPIPSLoss(nn.Module):
    """ST-LPIPS (shift-tolerant LPIPS, AlexNet) between images in ``[0, 1]``; differentiable, frozen.

    The network and weights are the ``st-lpips`` metric's (shipped inside ``stlpips-pytorch``, so
    it needs no download). Returns the batch mean; never trains, like :class:`LPIPSLoss`.
    """

    name = "st-lpips-alex"

    def __init__(self) -> None:
        super().__init__()
        from codecbench.metrics.stlpips import STLPIPSMetric

        self.net = STLPIPSMetric().model()
        self.net.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> STLPIPSLoss:
        return super().train(False)

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.net(x_hat * 2 - 1, x * 2 - 1).float().mean()


def resolve_perceptual(name: str) -> str:
    """``name`` checked against :data:`PERCEPTUAL_LOSSES`; ``auto`` is ``lpips`` when its AlexNet
    trunk is found, else ``st-lpips``."""
    if name not in ("auto", *PERCEPTUAL_LOSSES):
        raise CodecError(f'Invalid perceptual loss "{name}"; expected one of auto, {", ".join(PERCEPTUAL_LOSSES)}')
    if name != "auto":
        return name
    from codecbench.metrics.lpips import LPIPSMetric

    try:
        LPIPSMetric("alex").load()  # found locally, or downloaded
    except MetricError:
        return "st-lpips"
    return "lpips"


def perceptual_loss(name: str) -> nn.Module:
    """The frozen perceptual loss ``name`` (``lpips`` or ``st-lpips``): ``loss(x_hat, x)`` on images
    in ``[0, 1]``, the batch mean. ``CodecError`` when its weights are missing."""
    losses = {"lpips": LPIPSLoss, "st-lpips": STLPIPSLoss}
    if name not in losses:
        raise CodecError(f'Invalid perceptual loss "{name}"; expected one of {", ".join(PERCEPTUAL_LOSSES)}')
    try:
        return losses[name]()
    except CodecbenchError as exc:
        raise CodecError(f"Perceptual loss {name} unavailable: {exc}") from exc


class RateController(nn.Module):
    """The rate multiplier ``m`` of ``lmbda * D + m * R`` training that holds the rate at ``target_bpp``.

    Dual ascent: after each step ``log m += step_size * log(bpp / target_bpp)`` (with the rate
    twice the target and the default step, ``m`` grows e-fold in about 720 steps), kept within
    ``[exp(-max_log), exp(max_log)]``. ``log m`` is a buffer, so a task that checkpoints the
    controller resumes it. ``target_bpp = 0`` means no control (``m = 1``).
    """

    def __init__(self, target_bpp: float, step_size: float = 0.002, max_log: float = 4.6) -> None:
        super().__init__()
        if target_bpp < 0:
            raise ValueError(f"Invalid target_bpp {target_bpp}; expected >= 0 (0: no rate control)")
        self.target_bpp, self.step_size, self.max_log = target_bpp, step_size, max_log
        self.register_buffer("log_multiplier", torch.zeros(()))

    def multiplier(self) -> torch.Tensor:
        return self.log_multiplier.exp() if self.target_bpp > 0 else torch.ones(())

    @torch.no_grad()
    def update(self, bpp: float) -> None:
        """One dual-ascent step from the rate ``bpp`` the last batch spent."""
        if self.target_bpp > 0 and bpp > 0:
            self.log_multiplier.add_(self.step_size * math.log(bpp / self.target_bpp))
            self.log_multiplier.clamp_(-self.max_log, self.max_log)
