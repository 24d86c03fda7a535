"""The ot_gan / gan / ot codecs: real bitstreams that decode to the model's own reconstruction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from codecbench.errors import BitstreamError
from codecbench.learned.padding import crop_to, image_to_tensor, pad_to_stride, tensor_to_image
from codecbench_otgan import GANCodec, OTCodec, OTGANCodec
from otgan_tiny import save_exported, tiny_model


def image(height: int = 40, width: int = 50) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("codec_class", [OTGANCodec, GANCodec, OTCodec])
def test_bitstream_round_trip_equals_the_models_eval_forward(codec_class: type, tmp_path: Path) -> None:
    codec = codec_class()
    codec.configure(weights=str(save_exported(codec.name, tmp_path / "model.pt")))
    img = image()
    data = codec.encode(img, 1)
    decoded = codec.decode(data)
    model = tiny_model()
    with torch.no_grad():
        x_hat = model(pad_to_stride(image_to_tensor(img), model.stride))["x_hat"]
    np.testing.assert_array_equal(decoded, tensor_to_image(crop_to(x_hat, *img.shape[:2])))
    assert decoded.shape == img.shape


def test_latent_grid_follows_the_image_and_rate_follows_the_latent(tmp_path: Path) -> None:
    codec = OTGANCodec()
    codec.configure(weights=str(save_exported(codec.name, tmp_path / "model.pt")))
    small, large = codec.encode(image(40, 50), 1), codec.encode(image(120, 150), 1)
    assert codec.latent_shape(40, 50) == (3, 4)
    assert len(large) > len(small)


def test_a_bitstream_of_another_codec_is_refused(tmp_path: Path) -> None:
    gan, ot_gan = GANCodec(), OTGANCodec()
    gan.configure(weights=str(save_exported(gan.name, tmp_path / "gan.pt")))
    ot_gan.configure(weights=str(save_exported(ot_gan.name, tmp_path / "ot_gan.pt")))
    with pytest.raises(BitstreamError, match="not 'ot_gan'"):
        ot_gan.decode(gan.encode(image(), 1))


def test_training_settings_are_recorded_but_not_needed_to_code() -> None:
    model = tiny_model(ot_map="/nowhere/ot_map.pt", adversarial_weight=0.5)
    assert model.training_options == {"ot_map": "/nowhere/ot_map.pt", "adversarial_weight": 0.5,
                                      "recipe": "fixed", "lpips_weight": 0.0, "target_bpp": 0.0,
                                      "cycle_weight": 0.0, "anchor_weight": 0.0,
                                      "anchor": ""}
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        out = model.compress(x)
        assert model.decompress(out["strings"], out["shape"])["x_hat"].shape == x.shape
