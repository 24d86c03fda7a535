"""``LearnedCodec``: real CompressAI bitstreams, any image size, checkpoints, decoding errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codecbench import BitstreamError, CodecError, CodecUnavailableError
from codecbench.learned.bitstream import Bitstream
from codecbench.learned.padding import crop_to, image_to_tensor, pad_to_stride, tensor_to_image
from codecbench.testing import check_codec, synthetic_image

from learned_toy import ToyLearnedCodec, save_toy_checkpoint, toy_codec


@pytest.fixture
def weights(tmp_path):
    return save_toy_checkpoint(tmp_path / "toy.pt")


def test_contract(weights):
    check_codec(toy_codec(weights))


@pytest.mark.parametrize("height, width", [(512, 768), (768, 512), (33, 57)])
def test_any_size_round_trips(weights, height, width):
    codec = toy_codec(weights)
    image = synthetic_image(height, width)
    data = codec.encode(image, 1)
    bitstream = Bitstream.from_bytes(data, codec="toy-learned")
    assert (bitstream.height, bitstream.width) == (height, width)
    assert codec.decode(data).shape == image.shape


def test_decoded_image_equals_forward_pass(weights):
    # The scale hyperprior quantizes y and z the same way in eval-mode forward (round(y),
    # round(z - median) + median) and in compress, so decoding must reproduce forward's x_hat.
    codec = toy_codec(weights)
    image = synthetic_image(33, 57)
    decoded = codec.decode(codec.encode(image, 1))
    model = codec.model_for_point(1).model
    with torch.no_grad():
        x_hat = model(pad_to_stride(image_to_tensor(image), 64))["x_hat"]
    assert np.array_equal(decoded, tensor_to_image(crop_to(x_hat, 33, 57)))


def test_bytes_are_the_entropy_coded_streams(weights):
    codec = toy_codec(weights)
    image = synthetic_image(64, 64)
    model = codec.model_for_point(1).model
    with torch.no_grad():
        strings = model.compress(image_to_tensor(image))["strings"]
    data = codec.encode(image, 1)
    assert Bitstream.from_bytes(data).streams == tuple(s[0] for s in strings)
    assert len(data) < sum(len(s[0]) for s in strings) + 48


def test_damaged_bitstreams_raise(weights, tmp_path):
    codec = toy_codec(weights)
    data = codec.encode(synthetic_image(64, 64), 1)
    for damaged in (data[:-1], data[: len(data) // 2], data[:3], b"", data + b"\0",
                    data[:20] + bytes([data[20] ^ 0xFF]) + data[21:]):
        with pytest.raises(BitstreamError):
            codec.decode(damaged)
    other = toy_codec(save_toy_checkpoint(tmp_path / "other.pt", seed=1))
    with pytest.raises(BitstreamError, match="not loaded"):
        other.decode(data)


def test_inconsistent_latent_shape_rejected(weights):
    codec = toy_codec(weights)
    bitstream = Bitstream.from_bytes(codec.encode(synthetic_image(64, 64), 1))
    forged = Bitstream(**{**bitstream.__dict__, "latent_shape": (4, 4)}).to_bytes()
    with pytest.raises(BitstreamError, match="latent shape"):
        codec.decode(forged)


def test_bare_state_dict_is_accepted(weights, tmp_path):
    exported = toy_codec(weights)
    bare_path = tmp_path / "bare.pth.tar"
    torch.save(exported.model_for_point(1).model.state_dict(), bare_path)
    image = synthetic_image(64, 64)
    bare = toy_codec(bare_path)
    # Same weights, so the same streams; only the checkpoint id (a file hash) differs.
    assert Bitstream.from_bytes(bare.encode(image, 1)).streams == \
        Bitstream.from_bytes(exported.encode(image, 1)).streams


def test_several_weights_are_points(weights, tmp_path):
    codec = toy_codec(weights, save_toy_checkpoint(tmp_path / "b.pt", seed=1))
    assert codec.points == (1, 2)
    image = synthetic_image(64, 64)
    for point in (1, 2):
        assert codec.decode(codec.encode(image, point)).shape == image.shape
    assert codec.version().count("+") == 1


def test_unavailable_without_checkpoints(tmp_path):
    codec = ToyLearnedCodec()
    assert codec.points == ()
    assert "codecbench train toy-learned" in codec.unavailable_reason()
    codec.configure(weights=str(tmp_path / "absent.pt"))
    assert "not found" in codec.unavailable_reason()
    with pytest.raises(CodecUnavailableError):
        codec.load()


def test_checkpoint_of_another_codec_rejected(tmp_path):
    from codecbench.learned.checkpoints import export_payload, write_atomic

    path = tmp_path / "x.pt"
    write_atomic(export_payload("cheng2020-anchor", {}, {}), path)
    with pytest.raises(CodecError, match="trained for codec 'cheng2020-anchor'"):
        toy_codec(path).load()


def test_checkpoint_codecs_lets_a_codec_load_another_names_checkpoint(tmp_path):
    class Renamed(ToyLearnedCodec):
        name = "toy-renamed"
        checkpoint_codecs = ("toy-learned",)

    codec = Renamed()
    codec.configure(weights=str(save_toy_checkpoint(tmp_path / "toy.pt")))
    image = synthetic_image(32, 48)
    assert codec.decode(codec.encode(image, 1)).shape == image.shape
