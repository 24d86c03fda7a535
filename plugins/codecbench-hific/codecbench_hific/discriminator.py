"""HiFiC's conditional PatchGAN discriminator D(x, y), here at several scales.

As in the paper, D sees the image together with the quantized latent ``y_hat``: a 3x3 conv maps
``y_hat`` to 12 channels, which are upsampled (nearest) to the image size and concatenated with
it; four spectrally normalised 4x4 stride-2 convs with LeakyReLU(0.2) and a 1x1 conv give a
grid of patch logits. The paper's widths are 64-128-256-512. Each further scale repeats this on
the image average-pooled by 2 (the multi-scale arrangement of pix2pixHD).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

CONTEXT_CHANNELS = 12


class PatchDiscriminator(nn.Module):
    """One scale: image and upsampled latent context to a grid of logits."""

    def __init__(self, latent_channels: int, width: int) -> None:
        super().__init__()
        self.context = nn.Conv2d(latent_channels, CONTEXT_CHANNELS, 3, 1, 1, padding_mode="reflect")
        widths = [3 + CONTEXT_CHANNELS] + [width * 2**i for i in range(4)]
        layers: list[nn.Module] = []
        for a, b in zip(widths, widths[1:]):
            layers += [spectral_norm(nn.Conv2d(a, b, 4, 2, 1, padding_mode="reflect")),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(widths[-1], 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        context = F.leaky_relu(self.context(y_hat), 0.2)
        context = F.interpolate(context, size=x.shape[-2:], mode="nearest")
        return self.net(torch.cat([x * 2 - 1, context], dim=1))


class MultiScaleDiscriminator(nn.Module):
    """``scales`` conditional patch discriminators on the image at 1, 1/2, ... resolution."""

    def __init__(self, latent_channels: int, width: int, scales: int) -> None:
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(latent_channels, width) for _ in range(scales))

    def forward(self, x: torch.Tensor, y_hat: torch.Tensor) -> list[torch.Tensor]:
        """The logits of every scale, finest first."""
        logits = []
        for index, scale in enumerate(self.scales):
            if index:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            logits.append(scale(x, y_hat))
        return logits
