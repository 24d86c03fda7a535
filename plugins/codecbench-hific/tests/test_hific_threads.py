"""HiFiC codes the same bytes and decodes the same image on 1 and 2 torch threads, and a decoder
whose arithmetic differs from the encoder's raises ``BitstreamError`` instead of returning garbage."""

from __future__ import annotations

import pytest
import torch

from codecbench import BitstreamError
from codecbench.testing import check_thread_independence, synthetic_image

from hific_tiny import save_tiny_checkpoint, tiny_codec


@pytest.fixture
def codec(tmp_path):
    """The tiny untrained model, its latent scaled up 20x (a fresh encoder's latents all round to 0)."""
    codec = tiny_codec(save_tiny_checkpoint(tmp_path / "tiny.pt"))
    last = codec.model_for_point(1).model.g_a.net[-1]
    with torch.no_grad():
        last.weight.mul_(20)
        last.bias.mul_(20)
    return codec




def test_encode_on_one_thread_count_decode_on_another(codec):
    check_thread_independence(codec, synthetic_image(70, 100), 1)


def test_a_desynchronised_decoder_raises(codec, monkeypatch):
    """Scales and means off by one at decode (other arithmetic, simulated) pick other CDFs (the
    untrained model's scales are all below CompressAI's 0.11 bound: a relative change would not)."""
    data = codec.encode(synthetic_image(70, 100), 1)
    h_s = codec.model_for_point(1).model.h_s
    monkeypatch.setattr(h_s, "forward", lambda z, forward=h_s.forward: forward(z) + 1)
    with pytest.raises(BitstreamError, match="on a machine whose arithmetic differs from the encoder's"):
        codec.decode(data)
