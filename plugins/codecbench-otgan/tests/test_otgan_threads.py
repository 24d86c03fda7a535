"""The OT+GAN codecs code the same bytes and decode the same image on 1 and 2 torch threads, and
a decoder whose CDF tables differ from the encoder's raises ``BitstreamError`` instead of
returning garbage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codecbench import BitstreamError
from codecbench.learned.bitstream import Bitstream
from codecbench.testing import synthetic_image
from codecbench_otgan import OTGANCodec

from otgan_tiny import save_exported


@pytest.fixture
def codec(tmp_path):
    codec = OTGANCodec()
    codec.configure(weights=str(save_exported(codec.name, tmp_path / "model.pt")))
    return codec


def on_threads(threads, call, *args):
    """``call(*args)`` with torch on ``threads`` intra-op threads; checks that the count survives it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result = call(*args)
        assert torch.get_num_threads() == threads  # the codec restores the caller's count
        return result
    finally:
        torch.set_num_threads(previous)


def test_encode_on_one_thread_count_decode_on_another(codec):
    image = synthetic_image(70, 100)
    data = {threads: on_threads(threads, codec.encode, image, 1) for threads in (1, 2)}
    assert data[1] == data[2] and Bitstream.from_bytes(data[1]).symbol_digest is not None
    decoded = [on_threads(dec, codec.decode, data[enc]) for enc in (2, 1) for dec in (1, 2)]
    for other in decoded[1:]:
        np.testing.assert_array_equal(other, decoded[0])


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
