"""The K=3 Gaussian-mixture Cheng2020 on tiny models: real bytes decode to the model's own
reconstruction from round(y), the likelihood is a distribution, damaged streams are refused, and
``--init`` turns a single-Gaussian checkpoint into a mixture that starts where it was."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from codecbench import BitstreamError
from codecbench.learned.bitstream import Bitstream
from codecbench.learned.checkpoints import export_payload
from codecbench.learned.padding import crop_to, image_to_tensor, pad_to_stride, tensor_to_image
from codecbench.testing import synthetic_image
from codecbench_cheng2020 import Cheng2020Anchor, Cheng2020Attention
from codecbench_cheng2020.mixture import GaussianMixtureContextModel

from cheng2020_tiny import SINGLE, TINY, configured, save_exported, tiny_model

CODECS = [Cheng2020Anchor, Cheng2020Attention]


@pytest.mark.parametrize("codec_class", CODECS)
@pytest.mark.parametrize("height, width", [(64, 96), (37, 71)])
def test_decoded_bytes_equal_the_eval_forward(codec_class, height, width, tmp_path):
    codec = configured(codec_class, save_exported(codec_class(), tmp_path / "model.pt"))
    image = synthetic_image(height, width)
    data = codec.encode(image, 1)
    y_string, z_string, side = Bitstream.from_bytes(data, codec=codec.name).streams
    model = tiny_model(codec_class())
    assert isinstance(model, GaussianMixtureContextModel) and model.mixtures == 3
    abs_max, nonzero = model.read_side(side)
    assert y_string and z_string and nonzero and abs_max > 1  # a real latent was coded

    x = pad_to_stride(image_to_tensor(image), codec.stride)
    with torch.no_grad():
        expected = tensor_to_image(crop_to(model(x)["x_hat"].clamp(0, 1), height, width))
    assert np.array_equal(codec.decode(data), expected)  # g_s(round(y)), bit for bit


def test_likelihood_is_a_distribution_over_symbols():
    model = tiny_model(Cheng2020Anchor())
    x = pad_to_stride(image_to_tensor(synthetic_image(64, 64)), 64)
    with torch.no_grad():
        y = model.g_a(x)
        z_hat, _ = model.entropy_bottleneck(model.h_a(y))
        scales, means, weights = model.mixture_parameters(
            model.h_s(z_hat), model.context_prediction(torch.round(y)))
        assert torch.allclose(weights.reshape(1, 3, -1).sum(1), torch.ones(1))
        reach = int(means.abs().max() + 12 * scales.abs().max().clamp(min=1)) + 1
        total = sum(model.gaussian_conditional._likelihood(torch.full_like(y, v), scales, means, weights)
                    for v in range(-reach, reach + 1))
    assert torch.allclose(total, torch.ones_like(total), atol=1e-4)


def encoded(tmp_path) -> tuple[Cheng2020Anchor, Bitstream]:
    codec = configured(Cheng2020Anchor, save_exported(Cheng2020Anchor(), tmp_path / "model.pt"))
    return codec, Bitstream.from_bytes(codec.encode(synthetic_image(64, 64), 1))


def test_damaged_bytes_are_refused(tmp_path):
    codec, bitstream = encoded(tmp_path)
    data = bytearray(bitstream.to_bytes())
    data[len(data) // 2] ^= 0x10
    with pytest.raises(BitstreamError, match="CRC"):
        codec.decode(bytes(data))


@pytest.mark.parametrize("streams, message", [
    (lambda y, z, side: (y, z), "3 streams"),
    (lambda y, z, side: (y, z, side[:-1]), "side stream has"),
    (lambda y, z, side: (y, z, struct.pack(">H", 0) + side[2:]), "up to 0, outside the 1..255"),
    # The old bound: CDFs over 65,535 values for every channel made one position take seconds.
    (lambda y, z, side: (y, z, struct.pack(">H", 32767) + side[2:]), "latent values up to 32767, outside"),
    (lambda y, z, side: (y[:-1], z, side), "stream 0 has .* bytes, not an rANS string"),
    (lambda y, z, side: (y, z[:4], side), "stream 1 has 4 bytes, not an rANS string"),
    (lambda y, z, side: (y, z, side[:2] + b"\x00"), "all-zero latent"),
])
def test_inconsistent_streams_are_refused(tmp_path, streams, message):
    """Containers whose CRC is right but whose streams do not fit together."""
    codec, bitstream = encoded(tmp_path)
    y, z, side = bitstream.streams
    forged = Bitstream(bitstream.codec, bitstream.checkpoint, bitstream.height, bitstream.width,
                       bitstream.latent_shape, streams(y, z, side))
    with pytest.raises(BitstreamError, match=message):
        codec.decode(forged.to_bytes())


def bits(likelihoods: torch.Tensor) -> torch.Tensor:
    """Information content, with likelihoods bounded as in training (CompressAI's 1e-9)."""
    return -torch.log2(likelihoods.clamp(min=1e-9)).sum()


@pytest.mark.parametrize("codec_class", CODECS)
def test_init_widens_a_single_gaussian_checkpoint(codec_class):
    single = tiny_model(codec_class(), seed=1, config=SINGLE)
    mixture = tiny_model(codec_class(), seed=2)
    codec_class().load_init_weights(mixture, export_payload(codec_class.name, SINGLE, single.state_dict()))
    head = f"entropy_parameters.{len(mixture.entropy_parameters) - 1}."
    single_state = single.state_dict()
    for key, value in mixture.state_dict().items():
        if not key.startswith(head):
            assert torch.equal(value, single_state[key]), key

    x = pad_to_stride(image_to_tensor(synthetic_image(64, 64)), 64)
    with torch.no_grad():
        y = torch.round(single.g_a(x))
        params = single.h_s(single.entropy_bottleneck(single.h_a(y))[0])
        scales, means = single.entropy_parameters(
            torch.cat((params, single.context_prediction(y)), dim=1)).chunk(2, 1)
        single_bits = bits(single.gaussian_conditional._likelihood(y, scales, means))
        mixture_bits = bits(mixture.gaussian_conditional._likelihood(
            y, *mixture.mixture_parameters(params, mixture.context_prediction(y))))
        assert torch.equal(single(x)["x_hat"], mixture(x)["x_hat"])
    assert abs(mixture_bits / single_bits - 1) < 0.02  # starts as (nearly) the single Gaussian
