"""Cheng2020 codes the same bytes and decodes the same image on 1 and 2 torch threads, and a
decoder whose arithmetic differs from the encoder's raises ``BitstreamError`` instead of
returning garbage (issue 13: kodim01 coded on 1 thread decoded to 9.5 dB on 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from codecbench import BitstreamError
from codecbench.image import read_image
from codecbench.learned.bitstream import Bitstream
from codecbench.testing import on_threads, synthetic_image
from codecbench_cheng2020 import Cheng2020Anchor, Cheng2020Attention

from cheng2020_tiny import SINGLE, TINY, configured, save_exported

CODECS = [Cheng2020Anchor, Cheng2020Attention]
CONFIGS = pytest.mark.parametrize("config", [TINY, SINGLE], ids=["mixture", "single-gaussian"])
KODIM01 = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "kodak" / "kodim01.png"
MISMATCH = "decoded on a machine whose arithmetic differs from the encoder's"




def assert_thread_independent(codec, image, point=1):
    """Encode on 1 and 2 threads (same bytes), decode each on 2 and 1 (same image); the image."""
    data = {threads: on_threads(threads, codec.encode, image, point) for threads in (1, 2)}
    assert data[1] == data[2]
    assert Bitstream.from_bytes(data[1]).symbol_digest is not None
    decoded = [on_threads(dec, codec.decode, data[enc]) for enc in (2, 1) for dec in (1, 2)]
    for other in decoded[1:]:
        np.testing.assert_array_equal(other, decoded[0])
    return data[1], decoded[0]


def perturb_from(module, first_call, factor=1.1):
    """Make ``module``'s output ``factor`` times larger from its ``first_call``-th call on (a
    decoder whose floats differ from the encoder's, from the middle of the latent on)."""
    forward, calls = module.forward, [0]

    def perturbed(x):
        calls[0] += 1
        out = forward(x)
        return out * factor if calls[0] >= first_call else out

    return perturbed


@pytest.mark.parametrize("codec_class", CODECS)
@CONFIGS
def test_coding_does_not_depend_on_the_thread_count(codec_class, config, tmp_path):
    codec = configured(codec_class, save_exported(codec_class(), tmp_path / "model.pt", config=config))
    assert_thread_independent(codec, synthetic_image(64, 96))


@pytest.mark.parametrize("codec_class", CODECS)
@CONFIGS
def test_a_desynchronised_decoder_raises(codec_class, config, tmp_path, monkeypatch):
    codec = configured(codec_class, save_exported(codec_class(), tmp_path / "model.pt", config=config))
    data = codec.encode(synthetic_image(64, 96), 1)  # a 4 x 8 latent, coded position by position
    entropy_parameters = codec.model_for_point(1).model.entropy_parameters
    monkeypatch.setattr(entropy_parameters, "forward", perturb_from(entropy_parameters, 16))
    with pytest.raises(BitstreamError, match=MISMATCH):
        codec.decode(data)


@pytest.mark.parametrize("codec_class", CODECS)
@CONFIGS
def test_the_cdfs_are_chosen_on_one_thread(codec_class, config, tmp_path, monkeypatch):
    """Whatever the caller's thread count, the context model runs on one thread (this is what
    kept kodim01 from decoding: 2 threads round its per-position convolutions differently)."""
    codec = configured(codec_class, save_exported(codec_class(), tmp_path / "model.pt", config=config))
    model = codec.model_for_point(1).model
    seen = []
    for name in ("h_s", "entropy_parameters"):
        module = getattr(model, name)
        monkeypatch.setattr(module, "forward", lambda x, forward=module.forward: (
            seen.append(torch.get_num_threads()), forward(x))[1])
    image = synthetic_image(64, 96)
    on_threads(2, codec.decode, on_threads(2, codec.encode, image, 1))
    assert len(seen) > 2 * 32 and set(seen) == {1}


@pytest.mark.slow
def test_shipped_checkpoint_on_kodim01_decodes_on_another_thread_count():
    """Issue 13's case: kodim01 coded by the shipped q1 anchor on 1 thread decoded to 9.5 dB on 2
    threads (and coded on 2, to 9.8 dB on 1) instead of 22.30 dB. (Crops of it did not show it.)"""
    if not KODIM01.is_file():
        pytest.skip(f"Kodak image not found at {KODIM01}")
    codec = Cheng2020Anchor()
    image = read_image(KODIM01)
    data = {threads: on_threads(threads, codec.encode, image, 1) for threads in (1, 2)}
    assert data[1] == data[2]
    decoded = [on_threads(2, codec.decode, data[1]), on_threads(1, codec.decode, data[2])]
    np.testing.assert_array_equal(decoded[0], decoded[1])
    psnr = 10 * np.log10(255**2 / np.mean((decoded[0].astype(float) - image.astype(float)) ** 2))
    assert 22.2 < psnr < 22.4, psnr
