"""AEDC's networks (Agustsson et al. 2019, "GANs for Extreme Learned Image Compression"), GC setting.

* E: ``c7s1-60, d120, d240, d480, d960, c3s1-C`` (instance norm and ReLU after each layer but
  the last): ``C`` channels at ``1/16`` resolution;
* q: soft-to-hard vector quantization (Mentzer et al. 2018) of each entry to one of ``L``
  centres, fixed at ``{-2, -1, 0, 1, 2}`` for ``L = 5`` as in the paper (or learned);
* G: ``c3s1-960, R960 x 9, u480, u240, u120, u60, c7s1-3`` with instance norm, tanh output;
* the symbols are coded with a learned categorical model per channel and CompressAI's rANS
  coder (:mod:`codecbench_aedc.entropy`). Their fixed-length bound is ``C * log2(L) / 256`` bpp.

Widths scale with ``width`` (60 in the paper), residual blocks with ``res_blocks`` (9).
``norm="instance"`` is the paper's normalisation; ``norm="channel"`` is HiFiC's ChannelNorm (a
deviation, see :class:`ChannelNorm` and the README: instance norm's per-image statistics make the
decoded colours depend on the image size).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from codecbench_aedc.entropy import CategoricalEntropyModel


class ChannelNorm(nn.Module):
    """HiFiC's ChannelNorm (Mentzer et al. 2020): each pixel's feature vector normalised over the
    channels, then a learned per-channel scale and offset.

    Unlike instance norm it uses no statistics over the image, so a feature means the same on a
    128x128 training crop and on a 768x512 image (instance norm subtracts each channel's mean over
    the image: the decoder cannot carry an image's mean colour through it).
    """

    def __init__(self, channels: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # layer norm over the channels of each pixel: a contiguous last axis in channels-last.
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


NORMS = {"instance": nn.InstanceNorm2d, "channel": ChannelNorm}


def conv_norm_relu(cin: int, cout: int, kernel: int, norm: str, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, padding_mode="reflect"),
                         NORMS[norm](cout), nn.ReLU(inplace=True))


class SoftToHardQuantizer(nn.Module):
    """Nearest of ``levels`` centres forward; the soft assignment's gradient backward.

    Hand-written (no library has it): ``a_j = softmax(-sigma |z - c_j|^2)_j`` (the soft
    assignment), ``soft = sum_j a_j c_j``, ``hard = argmin_j |z - c_j|``, output
    ``soft + (hard - soft).detach()``. The soft assignment is also returned: the rate term of the
    ``rdp`` recipe reaches the encoder through it (:meth:`CategoricalEntropyModel.forward`).
    """

    def __init__(self, levels: int, sigma: float = 1.0, learned: bool = False) -> None:
        super().__init__()
        centres = torch.arange(levels, dtype=torch.float32) - (levels - 1) / 2
        if learned:
            self.centres = nn.Parameter(centres)
        else:
            self.register_buffer("centres", centres)
        self.sigma = sigma

    def symbols(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest centre of every entry."""
        return (z.unsqueeze(-1) - self.centres).abs().argmin(dim=-1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(quantized z, symbols, soft assignment)``; the assignment has a last axis of ``levels``."""
        distances = (z.float().unsqueeze(-1) - self.centres) ** 2
        assignment = torch.softmax(-self.sigma * distances, dim=-1)
        soft = (assignment * self.centres).sum(-1)
        symbols = distances.argmin(dim=-1)
        hard = self.centres[symbols]
        return soft + (hard - soft).detach(), symbols, assignment


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_norm_relu(channels, channels, 3, norm),
                                  nn.Conv2d(channels, channels, 3, 1, 1, padding_mode="reflect"),
                                  NORMS[norm](channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AEDCModel(nn.Module):
    """E, q, G and the symbol model; the interface of a CompressAI model (compress/decompress)."""

    def __init__(self, C: int, L: int, width: int, res_blocks: int, learned_centres: bool = False,
                 norm: str = "instance") -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f'Invalid norm "{norm}"; expected one of {", ".join(NORMS)}')
        self.C, self.L = C, L
        widths = [width * 2**i for i in range(5)]
        encoder = [conv_norm_relu(3, widths[0], 7, norm)]
        encoder += [conv_norm_relu(a, b, 3, norm, stride=2) for a, b in zip(widths, widths[1:])]
        encoder.append(nn.Conv2d(widths[-1], C, 3, 1, 1, padding_mode="reflect"))
        self.encoder = nn.Sequential(*encoder)
        self.quantizer = SoftToHardQuantizer(L, learned=bool(learned_centres))
        rev = widths[::-1]
        generator: list[nn.Module] = [conv_norm_relu(C, rev[0], 3, norm)]
        generator += [ResidualBlock(rev[0], norm) for _ in range(res_blocks)]
        for a, b in zip(rev, rev[1:]):
            generator += [nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1),
                          NORMS[norm](b), nn.ReLU(inplace=True)]
        generator.append(nn.Conv2d(rev[-1], 3, 7, 1, 3, padding_mode="reflect"))
        self.generator = nn.Sequential(*generator)
        self.entropy_model = CategoricalEntropyModel(C, L)

    def bound_bpp(self) -> float:
        """The fixed-length bound of the paper: ``C * log2(L)`` bits per 16x16 pixels."""
        return self.C * math.log2(self.L) / 256

    def encode_latent(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(w_hat, symbols, soft assignment)`` of images ``x`` in ``[0, 1]``."""
        return self.quantizer(self.encoder(x * 2 - 1))

    def generate(self, w_hat: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(self.generator(w_hat)) + 1) / 2

    def forward(self, x: torch.Tensor, rate_gradient: bool = False) -> dict[str, object]:
        """``x_hat``, ``w_hat`` (G's input) and the likelihoods of the coded symbols.

        With ``rate_gradient`` the likelihoods pass the rate's gradient to the encoder through
        the soft assignment; without it only the symbol model's logits receive it (the paper's
        ``beta = 0``)."""
        w_hat, symbols, assignment = self.encode_latent(x)
        likelihoods = self.entropy_model(symbols, assignment if rate_gradient else None)
        return {"x_hat": self.generate(w_hat), "w_hat": w_hat, "likelihoods": {"w": likelihoods}}

    def update(self, force: bool = False) -> bool:
        return self.entropy_model.update(force=force)

    def compress(self, x: torch.Tensor) -> dict[str, object]:
        _, symbols, _ = self.encode_latent(x)
        return {"strings": [self.entropy_model.compress(symbols)], "shape": symbols.shape[-2:]}

    def decompress(self, strings: list[list[bytes]], shape: tuple[int, int]) -> dict[str, torch.Tensor]:
        if len(strings) != 1:
            raise ValueError(f"AEDC bitstreams hold 1 stream, not {len(strings)}")
        symbols = self.entropy_model.decompress(strings[0], tuple(shape))
        if symbols.min() < 0 or symbols.max() >= self.L:
            raise ValueError("decoded symbols outside the centre range")
        return {"x_hat": self.generate(self.quantizer.centres[symbols])}
