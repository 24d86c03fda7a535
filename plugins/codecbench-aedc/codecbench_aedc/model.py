"""AEDC's networks (Agustsson et al. 2019, "GANs for Extreme Learned Image Compression"), GC setting.

* E: ``c7s1-60, d120, d240, d480, d960, c3s1-C`` (instance norm and ReLU after each layer but
  the last): ``C`` channels at ``1/16`` resolution;
* q: soft-to-hard vector quantization (Mentzer et al. 2018) of each entry to one of ``L``
  centres, fixed at ``{-2, -1, 0, 1, 2}`` for ``L = 5`` as in the paper (or learned);
* G: ``c3s1-960, R960 x 9, u480, u240, u120, u60, c7s1-3`` with instance norm, tanh output;
* the symbols are coded with a learned categorical model per channel and CompressAI's rANS
  coder (:mod:`codecbench_aedc.entropy`). Their fixed-length bound is ``C * log2(L) / 256`` bpp.

Widths scale with ``width`` (60 in the paper), residual blocks with ``res_blocks`` (9).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from codecbench_aedc.entropy import CategoricalEntropyModel


def conv_norm_relu(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, padding_mode="reflect"),
                         nn.InstanceNorm2d(cout), nn.ReLU(inplace=True))


class SoftToHardQuantizer(nn.Module):
    """Nearest of ``levels`` centres forward; the soft assignment's gradient backward.

    Hand-written (no library has it): ``soft = sum_j softmax(-sigma |z - c_j|^2)_j c_j``,
    ``hard = argmin_j |z - c_j|``, output ``soft + (hard - soft).detach()``.
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

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(quantized z, symbols)``."""
        distances = (z.unsqueeze(-1) - self.centres) ** 2
        soft = (torch.softmax(-self.sigma * distances, dim=-1) * self.centres).sum(-1)
        symbols = distances.argmin(dim=-1)
        hard = self.centres[symbols]
        return soft + (hard - soft).detach(), symbols


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_norm_relu(channels, channels, 3),
                                  nn.Conv2d(channels, channels, 3, 1, 1, padding_mode="reflect"),
                                  nn.InstanceNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AEDCModel(nn.Module):
    """E, q, G and the symbol model; the interface of a CompressAI model (compress/decompress)."""

    def __init__(self, C: int, L: int, width: int, res_blocks: int, learned_centres: bool = False) -> None:
        super().__init__()
        self.C, self.L = C, L
        widths = [width * 2**i for i in range(5)]
        encoder = [conv_norm_relu(3, widths[0], 7)]
        encoder += [conv_norm_relu(a, b, 3, stride=2) for a, b in zip(widths, widths[1:])]
        encoder.append(nn.Conv2d(widths[-1], C, 3, 1, 1, padding_mode="reflect"))
        self.encoder = nn.Sequential(*encoder)
        self.quantizer = SoftToHardQuantizer(L, learned=bool(learned_centres))
        rev = widths[::-1]
        generator: list[nn.Module] = [conv_norm_relu(C, rev[0], 3)]
        generator += [ResidualBlock(rev[0]) for _ in range(res_blocks)]
        for a, b in zip(rev, rev[1:]):
            generator += [nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1),
                          nn.InstanceNorm2d(b), nn.ReLU(inplace=True)]
        generator.append(nn.Conv2d(rev[-1], 3, 7, 1, 3, padding_mode="reflect"))
        self.generator = nn.Sequential(*generator)
        self.entropy_model = CategoricalEntropyModel(C, L)

    def bound_bpp(self) -> float:
        """The fixed-length bound of the paper: ``C * log2(L)`` bits per 16x16 pixels."""
        return self.C * math.log2(self.L) / 256

    def encode_latent(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.quantizer(self.encoder(x * 2 - 1))

    def generate(self, w_hat: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(self.generator(w_hat)) + 1) / 2

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        """``x_hat``, ``w_hat`` (G's input) and the likelihoods of the coded symbols."""
        w_hat, symbols = self.encode_latent(x)
        return {"x_hat": self.generate(w_hat), "w_hat": w_hat,
                "likelihoods": {"w": self.entropy_model(symbols)}}

    def update(self, force: bool = False) -> bool:
        return self.entropy_model.update(force=force)

    def compress(self, x: torch.Tensor) -> dict[str, object]:
        _, symbols = self.encode_latent(x)
        return {"strings": [self.entropy_model.compress(symbols)], "shape": symbols.shape[-2:]}

    def decompress(self, strings: list[list[bytes]], shape: tuple[int, int]) -> dict[str, torch.Tensor]:
        if len(strings) != 1:
            raise ValueError(f"AEDC bitstreams hold 1 stream, not {len(strings)}")
        symbols = self.entropy_model.decompress(strings[0], tuple(shape))
        if symbols.min() < 0 or symbols.max() >= self.L:
            raise ValueError("decoded symbols outside the centre range")
        return {"x_hat": self.generate(self.quantizer.centres[symbols])}
