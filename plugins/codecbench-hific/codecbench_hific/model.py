"""HiFiC's networks (Mentzer et al. 2020, Fig. 2): encoder E, generator G, hyperprior entropy model.

* E: 7x7 conv, four stride-2 3x3 convs, 3x3 conv to ``M`` latent channels (``/16``); ChannelNorm
  and ReLU after every conv but the last. The paper's widths are 60-120-240-480-960, ``M`` = 220.
* G: 3x3 conv to ``16 * width`` channels, residual blocks (9 in the paper), four stride-2
  transposed convs back to full resolution, 7x7 conv to RGB; ChannelNorm throughout.
* Probability model: the mean-scale hyperprior of Minnen et al. 2018 as in the paper, here
  CompressAI's :class:`~compressai.models.MeanScaleHyperprior` (EntropyBottleneck for the
  hyper-latent ``z``, GaussianConditional for ``y``), whose ``compress``/``decompress`` write
  real range-coded bytes. ``g_a``/``g_s`` are replaced by E and G.

As in HiFiC, the rate is estimated with additive uniform noise while G sees the latent rounded
around the predicted means (straight-through gradient), so training and decoding feed G alike.
"""

from __future__ import annotations

import torch
from compressai.models import MeanScaleHyperprior
from compressai.ops import quantize_ste
from torch import nn


class ChannelNorm(nn.Module):
    """HiFiC's ChannelNorm: normalise each pixel over channels, then a per-channel affine map.

    Hand-written: neither torch nor CompressAI has it (LayerNorm normalises over C, H and W;
    GroupNorm(1, C) likewise). Unlike InstanceNorm it does not depend on the image size, which
    the paper found removes the darkening artefacts of instance norm on large images.
    """

    def __init__(self, channels: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, keepdim=True, unbiased=False)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


def conv_norm_relu(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, padding_mode="reflect"),
        ChannelNorm(cout), nn.ReLU(inplace=True))


class Encoder(nn.Module):
    """E: image in ``[0, 1]`` to the ``M``-channel latent at ``1/16`` resolution."""

    def __init__(self, width: int, latent_channels: int) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(5)]
        layers = [conv_norm_relu(3, widths[0], 7)]
        layers += [conv_norm_relu(a, b, 3, stride=2) for a, b in zip(widths, widths[1:])]
        layers.append(nn.Conv2d(widths[-1], latent_channels, 3, 1, 1, padding_mode="reflect"))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)  # HiFiC normalises images to [-1, 1]


class ResidualBlock(nn.Module):
    """conv-norm-ReLU-conv-norm plus the input (G's residual blocks)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_relu(channels, channels, 3),
            nn.Conv2d(channels, channels, 3, 1, 1, padding_mode="reflect"), ChannelNorm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    """G: quantized latent to an image in ``[0, 1]`` (tanh output, as HiFiC's ``[-1, 1]``)."""

    def __init__(self, latent_channels: int, width: int, res_blocks: int) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(5)][::-1]
        layers: list[nn.Module] = [
            nn.Conv2d(latent_channels, widths[0], 3, 1, 1, padding_mode="reflect"), ChannelNorm(widths[0])]
        layers += [ResidualBlock(widths[0]) for _ in range(res_blocks)]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1),
                       ChannelNorm(b), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(widths[-1], 3, 7, 1, 3, padding_mode="reflect"))
        self.net = nn.Sequential(*layers)

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(self.net(y_hat)) + 1) / 2


class HiFiCModel(MeanScaleHyperprior):
    """HiFiC's E, G and hyperprior; ``N`` hyper channels, ``M`` latent channels (total stride 64)."""

    def __init__(self, N: int, M: int, width: int, res_blocks: int) -> None:
        super().__init__(N=N, M=M)
        self.g_a = Encoder(width, M)
        self.g_s = Generator(M, width, res_blocks)

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        """``x_hat``, the likelihoods of ``y`` and ``z`` and ``y_hat`` (G's input, for D)."""
        y = self.g_a(x)
        z = self.h_a(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        scales_hat, means_hat = self.h_s(z_hat).chunk(2, 1)
        y_coded, y_likelihoods = self.gaussian_conditional(y, scales_hat, means=means_hat)
        # Eval mode: y_coded is already round(y - mean) + mean, exactly what decompress() yields.
        y_hat = quantize_ste(y - means_hat) + means_hat if self.training else y_coded
        return {"x_hat": self.g_s(y_hat), "y_hat": y_hat, "y": y, "z": z,
                "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    @torch.no_grad()
    def coded_likelihoods(self, y: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Likelihoods of the code ``compress`` writes for the latents ``y``, ``z`` (no gradient).

        ``z`` rounded around the bottleneck's medians, ``y`` around the means predicted from that
        ``z``: the rate the range coder spends, where the training forward's likelihoods are those
        of noisy latents (which overstate it at low rates)."""
        z_hat, z_likelihoods = self.entropy_bottleneck(z, training=False)
        scales_hat, means_hat = self.h_s(z_hat).chunk(2, 1)
        _, y_likelihoods = self.gaussian_conditional(y, scales_hat, means=means_hat, training=False)
        return {"y": y_likelihoods, "z": z_likelihoods}
