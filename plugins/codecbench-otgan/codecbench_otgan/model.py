"""The OT+GAN codec's networks: a low-dimensional latent autoencoder and a latent-conditioned critic.

``LatentAutoencoder`` (the paper's encoder f and decoder/generator g):

* the encoder downsamples by ``stride`` = 16 to ``latent_channels`` channels (4, 8 or 16: the
  "low-dimensional" latent: a 64x64 crop becomes a ``C x 4 x 4`` code of 64 to 256 numbers, a
  768x512 Kodak image a ``C x 32 x 48`` grid whose spatial size follows the image);
* it bounds each latent with ``half * tanh`` (``half = (levels - 1) / 2``) and quantizes it to
  integers (offset by CompressAI's median), so each number takes at most ``levels + 1`` values
  (bounded codes are what ``codecbench fit-ot`` maps). With ``recipe="fixed"`` (the shipped
  ablation models) the rate is set by the latent size and this quantization, with no rate term on
  the encoder; with ``recipe="rdp"`` the encoder also gets the rate gradient
  (:mod:`codecbench_otgan.training`);
* CompressAI's ``EntropyBottleneck`` learns the latents' distribution and range-codes them, so the
  bitstream is real;
* the decoder (the generator) maps a latent grid back to pixels; it also decodes latent codes the
  extended OT map generates, which have no image behind them. ``upsample="transpose"`` (the
  shipped models: stride-2 5x5 transposed convolutions, which leave a 16-px periodic pattern) or
  ``"subpixel"`` (3x3 conv + PixelShuffle with ICNR initialisation: no checkerboard at init).

``recipe``, ``lpips_weight``, ``target_bpp``, ``ot_map``, ``adversarial_weight``, ``cycle_weight``,
``anchor_weight`` and ``anchor`` are training settings (recorded in the checkpoint's model config, never used to
code).

``LatentConditionedDiscriminator`` is HiFiC's idea at a small size: the latent grid is projected,
upsampled to the image and concatenated with it, so the critic judges whether ``x`` is a real
image *for this latent*.
"""

from __future__ import annotations

from typing import Any

import torch
from compressai.entropy_models import EntropyBottleneck
from compressai.layers import GDN
from torch import nn

STRIDE = 16


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient in the backward pass (straight-through)."""
    return x + (torch.round(x) - x).detach()


def _down(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 5, stride=2, padding=2)


def _up(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)


class SubpixelUp(nn.Sequential):
    """2x upsampling without checkerboard: a 3x3 conv to ``4 * cout`` channels and PixelShuffle.

    ICNR initialisation (Aitken et al. 2017): the four sub-pixel kernels start equal, so the
    freshly initialised layer is a conv followed by nearest-neighbour upsampling (no grid at
    step 0); training then differentiates them.
    """

    def __init__(self, cin: int, cout: int) -> None:
        conv = nn.Conv2d(cin, 4 * cout, 3, padding=1)
        with torch.no_grad():
            base = nn.Conv2d(cin, cout, 3, padding=1)
            conv.weight.copy_(base.weight.repeat_interleave(4, dim=0))
            conv.bias.copy_(base.bias.repeat_interleave(4))
        super().__init__(conv, nn.PixelShuffle(2))


UPSAMPLERS = {"transpose": _up, "subpixel": SubpixelUp}
RECIPES = ("fixed", "rdp")


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip: generator capacity at the latent resolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class LatentAutoencoder(nn.Module):
    """Encoder f, quantizer, entropy model and decoder g with CompressAI's coding interface.

    ``ot_map`` and ``adversarial_weight`` are training settings: they are kept (as
    :attr:`training_options`) so the exported checkpoint records how it was trained, and never used
    to code.
    """

    stride = STRIDE

    def __init__(self, N: int = 64, latent_channels: int = 4, levels: int = 7,
                 ot_map: str = "", adversarial_weight: float = 0.1, upsample: str = "transpose",
                 recipe: str = "fixed", lpips_weight: float = 0.0, target_bpp: float = 0.0,
                 cycle_weight: float = 0.0, anchor_weight: float = 0.0, anchor: str = "") -> None:
        super().__init__()
        if latent_channels < 1 or levels < 2 or N < 1:
            raise ValueError(f"need N >= 1, latent_channels >= 1, levels >= 2; got {N}, "
                             f"{latent_channels}, {levels}")
        if upsample not in UPSAMPLERS:
            raise ValueError(f'Invalid upsample "{upsample}"; expected one of {", ".join(UPSAMPLERS)}')
        if recipe not in RECIPES:
            raise ValueError(f'Invalid recipe "{recipe}"; expected one of {", ".join(RECIPES)}')
        self.latent_channels, self.levels, self.upsample = latent_channels, levels, upsample
        self.half = (levels - 1) / 2
        self.training_options: dict[str, Any] = {
            "ot_map": ot_map, "adversarial_weight": adversarial_weight, "recipe": recipe,
            "lpips_weight": lpips_weight, "target_bpp": target_bpp, "cycle_weight": cycle_weight,
            "anchor_weight": anchor_weight, "anchor": anchor}
        self.encoder = nn.Sequential(
            _down(3, N), GDN(N), _down(N, N), GDN(N), _down(N, N), GDN(N), _down(N, latent_channels))
        up = UPSAMPLERS[upsample]
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, N, 3, padding=1), ResidualBlock(N), ResidualBlock(N),
            up(N, N), GDN(N, inverse=True), up(N, N), GDN(N, inverse=True),
            up(N, N), GDN(N, inverse=True), up(N, 3))
        self.entropy_bottleneck = EntropyBottleneck(latent_channels)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """The bounded, not yet quantized latent of ``x``."""
        return self.half * torch.tanh(self.encoder(x) / self.half)

    def medians(self) -> torch.Tensor:
        """The entropy model's per-channel medians, shaped to broadcast over a latent grid."""
        return self.entropy_bottleneck._get_medians().detach().reshape(1, -1, 1, 1)

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """What the range coder reproduces: ``round(y - median) + median`` (straight-through)."""
        medians = self.medians()
        return ste_round(y - medians) + medians

    def decode(self, y_hat: torch.Tensor) -> torch.Tensor:
        """The generator: a latent grid (coded or OT-generated) to an image in ``[0, 1]``."""
        x_hat = self.decoder(y_hat)
        return x_hat if self.training else x_hat.clamp(0, 1)

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        y = self.latent(x)
        _, likelihoods = self.entropy_bottleneck(y.detach())  # trains the density only
        y_hat = self.quantize(y)
        return {"x_hat": self.decode(y_hat), "y_hat": y_hat, "likelihoods": {"y": likelihoods}}

    def aux_loss(self) -> torch.Tensor:
        return self.entropy_bottleneck.loss()

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        # The coder's CDF tables are buffers whose size depends on the weights: resize them first
        # (CompressAI's CompressionModel does the same).
        from compressai.models.utils import update_registered_buffers

        state_dict = dict(state_dict)
        update_registered_buffers(self.entropy_bottleneck, "entropy_bottleneck",
                                  ["_quantized_cdf", "_offset", "_cdf_length"], state_dict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def update(self, force: bool = False) -> bool:
        return self.entropy_bottleneck.update(force=force)

    def compress(self, x: torch.Tensor) -> dict[str, Any]:
        y = self.latent(x)
        return {"strings": [self.entropy_bottleneck.compress(y)], "shape": y.size()[-2:]}

    def decompress(self, strings: list[list[bytes]], shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        y_hat = self.entropy_bottleneck.decompress(strings[0], shape)
        return {"x_hat": self.decode(y_hat)}


class LatentConditionedDiscriminator(nn.Module):
    """A patch critic on ``(x, y_hat)``: logits, one per patch (HiFiC's conditioning, small)."""

    def __init__(self, latent_channels: int, width: int = 32, stride: int = STRIDE) -> None:
        super().__init__()
        self.condition = nn.Sequential(nn.Conv2d(latent_channels, 12, 3, padding=1), nn.LeakyReLU(0.2),
                                       nn.Upsample(scale_factor=stride, mode="nearest"))
        layers: list[nn.Module] = []
        cin = 3 + 12
        for cout in (width, 2 * width, 4 * width):
            layers += [nn.utils.spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([x, self.condition(y_hat)], dim=1))
