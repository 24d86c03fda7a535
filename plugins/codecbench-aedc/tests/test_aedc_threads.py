"""AEDC codes the same bytes and decodes the same image on 1 and 2 torch threads, and a decoder
whose symbol tables differ from the encoder's raises ``BitstreamError`` instead of returning garbage."""

from __future__ import annotations

import pytest
import torch

from codecbench import BitstreamError
from codecbench.testing import check_thread_independence, synthetic_image

from aedc_tiny import save_tiny_checkpoint, tiny_codec


@pytest.fixture
def codec(tmp_path):
    return tiny_codec(save_tiny_checkpoint(tmp_path / "tiny.pt"))




def test_encode_on_one_thread_count_decode_on_another(codec):
    check_thread_independence(codec, synthetic_image(70, 100), 1)


def test_a_desynchronised_decoder_raises(codec):
    """Symbol tables rebuilt differently at decode (other arithmetic, simulated by swapping two
    channels' distributions) desynchronise the coder."""
    data = codec.encode(synthetic_image(70, 100), 1)
    entropy_model = codec.model_for_point(1).model.entropy_model
    with torch.no_grad():
        entropy_model.logits.copy_(entropy_model.logits.roll(1, dims=0))
    entropy_model.update(force=True)
    with pytest.raises(BitstreamError, match="on a machine whose arithmetic differs from the encoder's"):
        codec.decode(data)
