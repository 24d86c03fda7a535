"""The checkpoints the plugin ships: declared, small, verified by sha256, and coding real bytes."""

from __future__ import annotations

import pytest

from codecbench.learned import read_checkpoint
from codecbench.testing import check_checkpoint_manifest, check_damaged_streams, check_learned_codec, synthetic_image
from codecbench_otgan import GANCodec, GANFacesCodec, OTCodec, OTFacesCodec, OTGANCodec, OTGANFacesCodec


@pytest.mark.parametrize(("codec_class", "count"), [(OTGANCodec, 2), (GANCodec, 2), (OTCodec, 2)])
def test_shipped_checkpoints(codec_class: type, count: int) -> None:
    codec = codec_class()
    specs = codec.shipped_checkpoints()
    assert len(specs) >= count and codec.points == tuple(range(1, len(specs) + 1))
    for spec in specs:
        assert spec.file.stat().st_size < 5 * 2**20
        assert read_checkpoint(spec.file)["model_config"]["latent_channels"] == spec.extra["latent_channels"]
        assert spec.training_command.startswith(f"codecbench train {codec.name} ")
        assert "shared/datasets/train-photos " in spec.training_command  # never Kodak
    assert codec.unavailable_reason() is None
    check_checkpoint_manifest(codec)
    check_learned_codec(codec, synthetic_image(64, 96))
    check_damaged_streams(codec)


@pytest.mark.parametrize("codec_class", [OTGANFacesCodec, GANFacesCodec, OTFacesCodec])
def test_shipped_face_checkpoints(codec_class: type) -> None:
    codec = codec_class()
    (spec,) = codec.shipped_checkpoints()
    assert spec.file.stat().st_size < 5 * 2**20
    command = spec.training_command
    assert command.split()[:2] == ["codecbench", "train"] and command.split()[2] in (codec.name, codec.variant)
    assert "faces/celeba" in command and "faces/mtfl/lfw_5590" in command and "AFLW" not in command  # held out
    assert codec.unavailable_reason() is None
    check_checkpoint_manifest(codec)
    check_learned_codec(codec, synthetic_image(80, 80))
