"""AEDC as a codec: rANS-coded centre symbols that decode to the model's eval forward pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from codecbench import BitstreamError
from codecbench.learned import Bitstream, crop_to, image_to_tensor, pad_to_stride, tensor_to_image
from codecbench.testing import check_codec, synthetic_image
from codecbench_aedc.entropy import CategoricalEntropyModel
from codecbench_aedc.model import SoftToHardQuantizer

from aedc_tiny import save_tiny_checkpoint, tiny_codec


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("aedc") / "tiny.pt")


def test_contract(weights):
    check_codec(tiny_codec(weights))


@pytest.mark.parametrize("height, width", [(70, 100), (64, 64), (1, 1)])
def test_decoded_bytes_equal_eval_forward(weights, height, width):
    codec = tiny_codec(weights)
    image = synthetic_image(height, width)
    data = codec.encode(image, 1)
    model = codec.model_for_point(1).model
    with torch.no_grad():
        x_hat = model(pad_to_stride(image_to_tensor(image), 32))["x_hat"]
    assert np.array_equal(codec.decode(data), tensor_to_image(crop_to(x_hat, height, width)))
    assert Bitstream.from_bytes(data).latent_shape == codec.latent_shape(height, width)


def test_symbols_round_trip_through_the_coder():
    model = CategoricalEntropyModel(3, 5)
    with torch.no_grad():
        model.logits.copy_(torch.tensor([[4.0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 9.0]]))
    model.update(force=True)
    symbols = torch.randint(0, 5, (2, 3, 6, 7))
    strings = model.compress(symbols)
    assert len(strings) == 2 and all(isinstance(s, bytes) for s in strings)
    assert torch.equal(model.decompress(strings, (6, 7)), symbols)


def test_rate_follows_the_symbol_model():
    # Channel 0 almost always 0: coding its likely symbol costs far less than log2(5) bits.
    model = CategoricalEntropyModel(1, 5)
    with torch.no_grad():
        model.logits.copy_(torch.tensor([[8.0, 0, 0, 0, 0]]))
    model.update(force=True)
    likely, unlikely = torch.zeros(1, 1, 32, 32, dtype=torch.long), torch.full((1, 1, 32, 32), 3)
    assert len(model.compress(likely)[0]) < 1024 * math.log2(5) / 8 / 10
    assert len(model.compress(unlikely)[0]) > 1024 * math.log2(5) / 8
    assert model(likely).mean().item() == pytest.approx(math.exp(8) / (math.exp(8) + 4))


def test_quantizer_is_hard_forward_soft_backward():
    quantizer = SoftToHardQuantizer(5)
    assert quantizer.centres.tolist() == [-2, -1, 0, 1, 2]
    z = torch.tensor([-3.0, -0.6, 0.2, 1.49, 7.0], requires_grad=True)
    out, symbols, assignment = quantizer(z)
    assert out.tolist() == [-2, -1, 0, 1, 2] and symbols.tolist() == [0, 1, 2, 3, 4]
    out.sum().backward()
    assert z.grad.abs().sum() > 0  # the soft assignment passes gradients; rounding would not


def test_bound_bpp(weights):
    model = tiny_codec(weights).model_for_point(1).model
    assert model.bound_bpp() == pytest.approx(4 * math.log2(5) / 256)


def test_damaged_bitstreams_raise(weights):
    codec = tiny_codec(weights)
    data = codec.encode(synthetic_image(64, 64), 1)
    for damaged in (data[:-1], data[: len(data) // 2], data[:3], b"", data + b"\0",
                    data[:20] + bytes([data[20] ^ 0xFF]) + data[21:], data[:-5] + bytes([data[-5] ^ 1]) + data[-4:]):
        with pytest.raises(BitstreamError):
            codec.decode(damaged)


def test_wrong_stream_count_is_a_bitstream_error(weights):
    codec = tiny_codec(weights)
    bitstream = Bitstream.from_bytes(codec.encode(synthetic_image(64, 64), 1))
    forged = Bitstream(**{**bitstream.__dict__, "streams": bitstream.streams * 2}).to_bytes()
    with pytest.raises(BitstreamError, match="cannot decode"):
        codec.decode(forged)
