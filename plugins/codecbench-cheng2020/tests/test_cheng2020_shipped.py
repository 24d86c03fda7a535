"""The checkpoints the plugin ships: declared, small, verified by sha256, coding real bytes, and
coding the latent in as many bits as their Gaussian-mixture likelihood says."""

from __future__ import annotations

import pytest
import torch

from codecbench.learned.bitstream import Bitstream
from codecbench.files import sha256_of
from codecbench.learned.padding import image_to_tensor, pad_to_stride
from codecbench.testing import check_codec, synthetic_image
from codecbench_cheng2020 import Cheng2020Anchor, Cheng2020Attention

CODECS = [Cheng2020Anchor, Cheng2020Attention]


@pytest.mark.parametrize("codec_class", CODECS)
def test_shipped_checkpoints(codec_class):
    codec = codec_class()
    specs = codec.shipped_checkpoints()
    assert len(specs) >= 3 and codec.points == tuple(range(1, len(specs) + 1))
    assert [s.lmbda for s in specs] == sorted(s.lmbda for s in specs)  # points ordered by rate
    for spec in specs:
        assert spec.file.stat().st_size < 25 * 2**20
        assert sha256_of(spec.file) == spec.sha256
        assert spec.training_command.startswith(f"codecbench train {codec.name} ")
        assert "--data /work/shared/datasets/train-photos" in spec.training_command  # never Kodak
    assert codec.unavailable_reason() is None
    check_codec(codec, synthetic_image(64, 96))


@pytest.mark.parametrize("codec_class", CODECS)
def test_latent_bytes_match_the_mixture_likelihood(codec_class):
    codec = codec_class()
    image = synthetic_image(64, 96)
    for point in codec.points:
        model = codec.model_for_point(point).model
        assert model.mixtures == 3
        y_string = Bitstream.from_bytes(codec.encode(image, point)).streams[0]
        with torch.no_grad():
            likelihoods = model(pad_to_stride(image_to_tensor(image), codec.stride))["likelihoods"]["y"]
        estimate = -torch.log2(likelihoods).sum().item()
        assert abs(8 * len(y_string) - estimate) < 0.05 * estimate + 64, (point, 8 * len(y_string), estimate)
