"""``LearnedCodec``: real CompressAI bitstreams, any image size, checkpoints, decoding errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codecbench import BitstreamError, CodecError, CodecUnavailableError
from codecbench.learned.bitstream import Bitstream
from codecbench.learned.padding import crop_to, image_to_tensor, pad_to_stride, tensor_to_image
from codecbench.testing import check_codec, check_thread_independence, on_threads, synthetic_image

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
    assert len(data) < sum(len(s[0]) for s in strings) + 52  # header, symbol digest and CRC


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




def coding_toy(weights):
    """The toy codec with its latent scaled up 20x: a fresh ``g_a`` gives latents that all round to 0."""
    codec = toy_codec(weights)
    last = codec.model_for_point(1).model.g_a[-1]
    with torch.no_grad():
        last.weight.mul_(20)
        last.bias.mul_(20)
    return codec


def test_bytes_and_images_do_not_depend_on_the_thread_count(weights):
    codec = coding_toy(weights)
    check_thread_independence(codec, synthetic_image(96, 128), 1)


def test_the_container_carries_a_digest_of_the_coded_symbols(weights):
    codec = toy_codec(weights)
    data = codec.encode(synthetic_image(64, 64), 1)
    bitstream = Bitstream.from_bytes(data)
    assert data[4] == 2 and bitstream.symbol_digest is not None
    # A version-1 stream (no digest) of the same symbols still decodes, to the same image.
    old = Bitstream(**{**bitstream.__dict__, "symbol_digest": None}).to_bytes()
    assert old[4] == 1 and np.array_equal(codec.decode(old), codec.decode(data))


def test_a_desynchronised_decoder_raises_instead_of_returning_garbage(weights, monkeypatch):
    """Other arithmetic in the decoder (simulated: scales 10% larger) picks other CDFs: the
    symbols differ from the encoder's, and the digest turns the wrong image into an error."""
    codec = coding_toy(weights)
    image = synthetic_image(64, 96)
    data = codec.encode(image, 1)
    h_s = codec.model_for_point(1).model.h_s
    forward = h_s.forward
    monkeypatch.setattr(h_s, "forward", lambda z: forward(z) * 1.1)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(BitstreamError, match="decoded on a machine whose arithmetic differs"):
            codec.decode(data)
        assert torch.get_num_threads() == 2  # the caller's count is restored after an error too
    finally:
        torch.set_num_threads(previous)
    # Without the digest (a version-1 stream), the same decoder silently returns a wrong image.
    old = Bitstream(**{**Bitstream.from_bytes(data).__dict__, "symbol_digest": None}).to_bytes()
    wrong = codec.decode(old)
    monkeypatch.undo()
    assert wrong.shape == image.shape and not np.array_equal(wrong, codec.decode(data))


def test_coding_runs_on_one_thread_and_restores_the_callers_count(weights, monkeypatch):
    codec = coding_toy(weights)
    seen = []
    h_s = codec.model_for_point(1).model.h_s
    monkeypatch.setattr(h_s, "forward", lambda z, forward=h_s.forward: (seen.append(torch.get_num_threads()),
                                                                           forward(z))[1])
    on_threads(2, codec.decode, on_threads(2, codec.encode, synthetic_image(64, 64), 1))
    assert seen == [1, 1]  # the hyper-synthesis that chooses the CDFs, in the encoder and the decoder
