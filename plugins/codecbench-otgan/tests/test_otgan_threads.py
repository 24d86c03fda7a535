"""The OT+GAN codecs code the same bytes and decode the same image on 1 and 2 torch threads, and
a decoder whose CDF tables differ from the encoder's raises ``BitstreamError`` instead of
returning garbage."""

from __future__ import annotations

import pytest
import torch

from codecbench import BitstreamError
from codecbench.testing import check_thread_independence, synthetic_image
from codecbench_otgan import OTGANCodec

from otgan_tiny import save_exported


@pytest.fixture
def codec(tmp_path):
    codec = OTGANCodec()
    codec.configure(weights=str(save_exported(codec.name, tmp_path / "model.pt")))
    return codec




def test_encode_on_one_thread_count_decode_on_another(codec):
    check_thread_independence(codec, synthetic_image(70, 100), 1)


def test_a_desynchronised_decoder_raises(codec):
    """CDF tables rebuilt differently at decode (other arithmetic, simulated by a shifted learned
    density) desynchronise the coder."""
    data = codec.encode(synthetic_image(70, 100), 1)
    entropy_bottleneck = codec.model_for_point(1).model.entropy_bottleneck
    with torch.no_grad():
        entropy_bottleneck.quantiles.add_(0.7)  # every channel's median moves by 0.7
    entropy_bottleneck.update(force=True)
    with pytest.raises(BitstreamError, match="on a machine whose arithmetic differs from the encoder's"):
        codec.decode(data)
