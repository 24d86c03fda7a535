"""AEDC's multi-scale discriminator: pix2pixHD's (Wang et al. 2018), as the paper uses.

Each scale is a PatchGAN ``C64-C128-C256-C512`` (4x4 convs, stride 2 for the first three,
instance norm from the second, LeakyReLU(0.2)) and a 4x4 conv to one logit per patch; scale
``k`` sees the image average-pooled ``k`` times. Every layer's output is returned so that the
generator can use pix2pixHD's feature matching loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDiscriminator(nn.Module):
    """One scale: the image to its layers' feature maps, the last being the patch logits."""

    def __init__(self, width: int) -> None:
        super().__init__()
        widths = [3] + [width * 2**i for i in range(4)]
        layers = []
        for index, (a, b) in enumerate(zip(widths, widths[1:])):
            stride = 2 if index < 3 else 1
            norm: list[nn.Module] = [nn.InstanceNorm2d(b)] if index else []
            layers.append(nn.Sequential(nn.Conv2d(a, b, 4, stride, 2), *norm, nn.LeakyReLU(0.2, inplace=True)))
        layers.append(nn.Sequential(nn.Conv2d(widths[-1], 1, 4, 1, 2)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiScaleDiscriminator(nn.Module):
    """``scales`` patch discriminators on the image at 1, 1/2, 1/4... resolution."""

    def __init__(self, width: int, scales: int) -> None:
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(width) for _ in range(scales))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per scale (finest first), every layer's output; ``[-1]`` is the logits."""
        x = x * 2 - 1
        outputs = []
        for index, scale in enumerate(self.scales):
            if index:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(scale(x))
        return outputs
