"""The paper's K-component discretized Gaussian mixture entropy model on CompressAI's Cheng2020.

CompressAI's ``Cheng2020Anchor``/``Cheng2020Attention`` model each latent with one Gaussian.
Cheng et al. 2020 use a mixture of K=3: for every latent, the entropy-parameter network predicts
K scales, K means and K weights (softmax over K). CompressAI has the likelihood
(``GaussianMixtureConditional``) but no model using it, and its ``compress`` codes a whole tensor
at once, which a context model cannot (the decoder learns each parameter only after decoding the
latents before it). :class:`GaussianMixtureContextModel` adds the mixture to CompressAI's classes
and codes the latent position by position, in raster order, with CompressAI's rANS coder:

* ``y`` is quantized by rounding (as in the paper), ``y_hat = round(y)``;
* at each position, the 5x5 masked context convolution and the entropy-parameter network give the
  mixture of every non-zero channel, from which ``GaussianMixtureConditional._build_cdf`` builds one
  CDF per symbol over ``[-abs_max, abs_max]`` (values outside use rANS's escape code);
* encoder and decoder run the same per-position computation on tensors of the same shapes, on
  one torch thread (:func:`~codecbench.learned.codec.single_threaded`), so they build
  bit-identical CDFs (a whole-tensor convolution in the encoder, or the same one on 2 threads,
  can round differently in the last bit, and one different CDF entry desynchronises the rANS
  decoder: kodim01 coded on 1 thread decoded to 9.5 dB on 2); when coding, the hyper-synthesis,
  the context convolution, the entropy parameters and the mixture's CDFs are computed in float64
  (the codec's ``float64_modules``), so that a CPU with another instruction set builds them too;
* a third stream holds what the decoder needs besides the rANS bytes: ``abs_max`` and the bitmap
  of channels that are zero everywhere (not coded), as in ``GaussianMixtureConditional.compress``;
* both loops report the latent's symbols for the container's symbol digest
  (:func:`~codecbench.learned.bitstream.record_symbols`), which catches what remains (another library
  version rounding a CDF differently).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from compressai.ans import BufferedRansEncoder, RansDecoder
from compressai.entropy_models import GaussianMixtureConditional
from torch import nn

from codecbench import BitstreamError, CodecError
from codecbench.learned import record_symbols, single_threaded

KERNEL = 5  # CompressAI's context prediction kernel
PADDING = (KERNEL - 1) // 2
LATENT_PER_HYPER = 4  # y is 4x the size of z on each side
# The largest |latent| coded; the decoder refuses a side stream declaring more. Every position
# builds CDFs over [-abs_max, abs_max] for every channel: a forged abs_max of 32767 made one
# position take seconds (a Kodak-sized stream, hours). 255 costs a position no more than the
# shipped checkpoints' 5..25 on Kodak, noise and a checkerboard; larger latents are refused.
MAX_ABS = 255
SIDE_HEADER = ">H"
SCALE_SPREAD = 1.1  # ratio between the initial scales of successive mixture components
SYMBOLS_KEY = "y"  # the context-coded latent, in the container's symbol digest


class GaussianMixtureContextModel:
    """Mixin for a CompressAI ``Cheng2020Anchor``-like class: a ``mixtures``-component GMM.

    The last layer of ``entropy_parameters`` outputs ``3 * mixtures * M`` channels: scales, means
    and mixture logits, each ``mixtures`` blocks of ``M`` channels (component ``k`` in channels
    ``k*M..(k+1)*M``, the layout ``GaussianMixtureConditional`` reads). Everything else is
    CompressAI's: ``g_a``, ``g_s``, ``h_a``, ``h_s``, ``context_prediction``, the hyperprior.
    """

    M: int
    g_a: nn.Module
    g_s: nn.Module
    h_a: nn.Module
    h_s: nn.Module
    entropy_bottleneck: Any
    context_prediction: nn.Conv2d
    entropy_parameters: nn.Sequential
    gaussian_conditional: GaussianMixtureConditional

    def __init__(self, N: int = 192, mixtures: int = 3, **kwargs: Any) -> None:
        super().__init__(N=N, **kwargs)
        last = self.entropy_parameters[-1]
        self.entropy_parameters[-1] = nn.Conv2d(last.in_channels, 3 * mixtures * self.M, 1)
        self.gaussian_conditional = GaussianMixtureConditional(K=mixtures)
        self.mixtures = mixtures

    def mixture_parameters(self, params: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Scales, means and weights (``B x K*M x H x W`` each) from hyperprior and context."""
        # In the coding loops ``context`` is float64 (``float64_modules``): the softmax and the CDFs
        # built from these parameters stay in float64, so that another CPU builds the same CDFs.
        parameters = self.entropy_parameters(torch.cat((params, context), dim=1)).to(context.dtype)
        scales, means, logits = parameters.chunk(3, 1)
        b, _, h, w = logits.shape
        weights = logits.reshape(b, self.mixtures, self.M, h, w).softmax(1).reshape(logits.shape)
        return scales, means, weights

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        y = self.g_a(x)
        z_hat, z_likelihoods = self.entropy_bottleneck(self.h_a(y))
        params = self.h_s(z_hat)
        y_hat = self.gaussian_conditional.quantize(y, "noise" if self.training else "dequantize")
        scales, means, weights = self.mixture_parameters(params, self.context_prediction(y_hat))
        _, y_likelihoods = self.gaussian_conditional(y, scales, means, weights)
        return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def compress(self, x: torch.Tensor) -> dict[str, Any]:
        y = self.g_a(x)
        z = self.h_a(y)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        params = self.h_s(z_hat)
        y_strings, side_strings = [], []
        for i in range(y.size(0)):
            y_string, side = self._compress_ar(torch.round(y[i : i + 1]), params[i : i + 1])
            y_strings.append(y_string)
            side_strings.append(side)
        return {"strings": [y_strings, z_strings, side_strings], "shape": z.size()[-2:]}

    def decompress(self, strings: list[list[bytes]], shape: tuple[int, int]) -> dict[str, torch.Tensor]:
        if len(strings) != 3:
            raise BitstreamError(f"a Gaussian-mixture Cheng2020 bitstream has 3 streams, not {len(strings)}")
        z_hat = self.entropy_bottleneck.decompress(strings[1], shape)
        params = self.h_s(z_hat)
        height, width = z_hat.size(2) * LATENT_PER_HYPER, z_hat.size(3) * LATENT_PER_HYPER
        y_hats = [self._decompress_ar(y_string, side, params[i : i + 1], height, width)
                  for i, (y_string, side) in enumerate(zip(strings[0], strings[2], strict=True))]
        return {"x_hat": self.g_s(torch.cat(y_hats)).clamp_(0, 1)}

    def _position_cdfs(self, y_hat: torch.Tensor, params: torch.Tensor, weight: torch.Tensor,
                       h: int, w: int, nonzero: list[int], abs_max: int) -> list[list[int]]:
        """CDFs of the non-zero channels at latent position ``(h, w)`` of the padded ``y_hat``."""
        context = F.conv2d(y_hat[:, :, h : h + KERNEL, w : w + KERNEL].to(weight.dtype), weight,
                           bias=self.context_prediction.bias)
        mixture = self.mixture_parameters(params[:, :, h : h + 1, w : w + 1], context)
        gc = self.gaussian_conditional
        return gc._build_cdf(*gc.reshape_entropy_parameters(*mixture, nonzero), abs_max).tolist()

    def _masked_weight(self) -> torch.Tensor:
        return self.context_prediction.weight * self.context_prediction.mask

    def _compress_ar(self, y_hat: torch.Tensor, params: torch.Tensor) -> tuple[bytes, bytes]:
        channels = y_hat.abs().amax(dim=(0, 2, 3))
        abs_max = max(1, int(channels.max()))
        if abs_max > MAX_ABS:
            raise CodecError(f"latent value {abs_max} exceeds the {MAX_ABS} this codec codes "
                             "(the bound its decoder enforces)")
        nonzero = torch.nonzero(channels).flatten().tolist()
        side = struct.pack(SIDE_HEADER, abs_max) + np.packbits((channels > 0).numpy()).tobytes()
        if not nonzero:
            return b"", side  # (flushing an rANS encoder that coded nothing crashes CompressAI)
        with single_threaded():
            return self._compress_nonzero(y_hat, params, nonzero, abs_max), side

    def _compress_nonzero(self, y_hat: torch.Tensor, params: torch.Tensor, nonzero: list[int],
                          abs_max: int) -> bytes:
        encoder = BufferedRansEncoder()
        height, width = y_hat.shape[-2:]
        padded = F.pad(y_hat, (PADDING, PADDING, PADDING, PADDING))
        weight = self._masked_weight()
        symbols = y_hat[0, nonzero].int()
        record_symbols(SYMBOLS_KEY, symbols.permute(1, 2, 0), decoded=False)  # raster order, as decoded
        indexes, offsets = list(range(len(nonzero))), [-abs_max] * len(nonzero)
        for h in range(height):
            for w in range(width):
                cdfs = self._position_cdfs(padded, params, weight, h, w, nonzero, abs_max)
                encoder.encode_with_indexes(symbols[:, h, w].tolist(), indexes, cdfs,
                                            [len(c) for c in cdfs], offsets)
        return encoder.flush()

    def _decompress_ar(self, y_string: bytes, side: bytes, params: torch.Tensor, height: int,
                       width: int) -> torch.Tensor:
        abs_max, nonzero = self.read_side(side)
        y_hat = torch.zeros((1, self.M, height + 2 * PADDING, width + 2 * PADDING))
        if not nonzero and y_string:
            raise BitstreamError("bitstream corrupted: latent bytes for an all-zero latent")
        if nonzero:
            with single_threaded():
                self._decompress_nonzero(y_string, y_hat, params, nonzero, abs_max)
        return y_hat[:, :, PADDING : PADDING + height, PADDING : PADDING + width]

    def _decompress_nonzero(self, y_string: bytes, y_hat: torch.Tensor, params: torch.Tensor,
                            nonzero: list[int], abs_max: int) -> None:
        weight = self._masked_weight()
        indexes, offsets = list(range(len(nonzero))), [-abs_max] * len(nonzero)
        decoder = RansDecoder()
        decoder.set_stream(y_string)
        height, width = y_hat.shape[-2] - 2 * PADDING, y_hat.shape[-1] - 2 * PADDING
        for h in range(height):
            for w in range(width):
                cdfs = self._position_cdfs(y_hat, params, weight, h, w, nonzero, abs_max)
                values = decoder.decode_stream(indexes, cdfs, [len(c) for c in cdfs], offsets)
                record_symbols(SYMBOLS_KEY, values, decoded=True)
                y_hat[0, nonzero, h + PADDING, w + PADDING] = torch.tensor(values, dtype=y_hat.dtype)

    def read_side(self, side: bytes) -> tuple[int, list[int]]:
        """``abs_max`` and the non-zero channels from the side stream; damage is a ``BitstreamError``."""
        header = struct.calcsize(SIDE_HEADER)
        expected = header + (self.M + 7) // 8
        if len(side) != expected:
            raise BitstreamError(f"side stream has {len(side)} bytes, expected {expected}")
        (abs_max,) = struct.unpack(SIDE_HEADER, side[:header])
        bits = np.unpackbits(np.frombuffer(side[header:], dtype=np.uint8))
        if not 1 <= abs_max <= MAX_ABS:
            raise BitstreamError(f"side stream declares latent values up to {abs_max}, outside the "
                                 f"1..{MAX_ABS} this codec writes")
        if bits[self.M :].any():
            raise BitstreamError("side stream corrupted (channel bitmap out of range)")
        return abs_max, np.flatnonzero(bits[: self.M]).tolist()


def mixture_head_from_single(state_dict: Mapping[str, torch.Tensor], model: Any) -> dict[str, torch.Tensor]:
    """``state_dict`` of a single-Gaussian Cheng2020 with its head widened to ``model``'s mixture.

    Every component starts from the single Gaussian's mean; their scales are the single scale
    times factors spread around 1 (about 0.91, 1, 1.1 for K=3: identical components would get identical
    gradients and never separate), with equal weights (zero logits). So the mixture starts close
    to the old model and training only has to improve it. Other state dicts are returned as given.
    """
    prefix = f"entropy_parameters.{len(model.entropy_parameters) - 1}."
    out = dict(state_dict)
    weight, bias = out.get(prefix + "weight"), out.get(prefix + "bias")
    if weight is None or bias is None or weight.shape[0] != 2 * model.M:
        return out
    factors = [SCALE_SPREAD ** (k - (model.mixtures - 1) / 2) for k in range(model.mixtures)]
    for name, tensor in (("weight", weight), ("bias", bias)):
        scales, means = tensor.chunk(2, 0)
        out[prefix + name] = torch.cat([scales * f for f in factors] + [means] * model.mixtures
                                       + [torch.zeros_like(scales)] * model.mixtures)
    return out


@cache
def with_mixture(model_class: type) -> type:
    """``model_class`` (CompressAI's ``Cheng2020Anchor`` or a subclass) with a Gaussian mixture."""
    return type(model_class.__name__ + "GMM", (GaussianMixtureContextModel, model_class),
                {"__module__": __name__})
