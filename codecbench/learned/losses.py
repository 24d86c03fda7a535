"""The losses learned codecs share: rate from likelihoods, PSNR from MSE, LPIPS, adversarial terms.

Every figure here is a *training signal*: bpp estimated from an entropy model's likelihoods is
never a benchmark figure (the harness measures real bytes).

* :func:`bits_per_pixel`: ``-sum(log2 likelihoods) / pixels`` (one tensor or a dict of them);
* :func:`psnr_from_mse`: PSNR in dB of images in ``[0, 1]``;
* :class:`LPIPSLoss`: LPIPS-Alex v0.1 as a differentiable, frozen loss on images in ``[0, 1]``,
  with the same verified local AlexNet trunk as the ``lpips`` metric (never random weights);
* :func:`generator_adversarial_loss` / :func:`discriminator_adversarial_loss`: the non-saturating
  GAN losses on logits.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LPIPSLoss",
    "bits_per_pixel",
    "discriminator_adversarial_loss",
    "generator_adversarial_loss",
    "psnr_from_mse",
]


def bits_per_pixel(likelihoods: torch.Tensor | Mapping[str, torch.Tensor], pixels: int) -> torch.Tensor:
    """The entropy model's bit estimate per pixel of ``likelihoods`` (summed over a dict's values).

    Computed in float32 whatever the autocast precision (a bf16 log would cost bits of rate)."""
    values = likelihoods.values() if isinstance(likelihoods, Mapping) else [likelihoods]
    return sum(torch.log2(lk.float()).sum() for lk in values) / -pixels


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of images in ``[0, 1]``."""
    return 10 * math.log10(1.0 / mse) if mse > 0 else float("inf")


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-log D(fake)``."""
    return F.softplus(-fake_logits.float()).mean()


def discriminator_adversarial_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``-log D(real) - log(1 - D(fake))``."""
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


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
