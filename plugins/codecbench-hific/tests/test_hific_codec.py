"""HiFiC as a codec: real range-coded bytes that decode to the model's eval forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codecbench import BitstreamError
from codecbench.learned.bitstream import Bitstream
from codecbench.learned.padding import crop_to, image_to_tensor, pad_to_stride, tensor_to_image
from codecbench.testing import check_codec, synthetic_image

from hific_tiny import save_tiny_checkpoint, tiny_codec


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("hific") / "tiny.pt")


def test_contract(weights):
    check_codec(tiny_codec(weights))


@pytest.mark.parametrize("height, width", [(70, 100), (64, 64), (17, 9)])
def test_decoded_bytes_equal_eval_forward(weights, height, width):
    codec = tiny_codec(weights)
    image = synthetic_image(height, width)
    data = codec.encode(image, 1)
    model = codec.model_for_point(1).model
    with torch.no_grad():
        out = model(pad_to_stride(image_to_tensor(image), 64))
        strings = model.compress(pad_to_stride(image_to_tensor(image), 64))["strings"]
    assert Bitstream.from_bytes(data).streams == tuple(s[0] for s in strings)  # y then z
    assert np.array_equal(codec.decode(data), tensor_to_image(crop_to(out["x_hat"], height, width)))


def test_damaged_bitstreams_raise(weights):
    codec = tiny_codec(weights)
    data = codec.encode(synthetic_image(64, 64), 1)
    for damaged in (data[:-1], data[: len(data) // 2], data[:3], b"", data + b"\0",
                    data[:20] + bytes([data[20] ^ 0xFF]) + data[21:], data[:-5] + bytes([data[-5] ^ 1]) + data[-4:]):
        with pytest.raises(BitstreamError):
            codec.decode(damaged)


def test_one_stream_missing_is_a_bitstream_error(weights):
    codec = tiny_codec(weights)
    bitstream = Bitstream.from_bytes(codec.encode(synthetic_image(64, 64), 1))
    forged = Bitstream(**{**bitstream.__dict__, "streams": bitstream.streams[:1]}).to_bytes()
    with pytest.raises(BitstreamError, match="cannot decode"):
        codec.decode(forged)

