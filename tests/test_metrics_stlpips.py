"""ST-LPIPS: works offline from the weights shipped in the stlpips-pytorch wheel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codecbench import plugins
from codecbench.metrics.stlpips import STLPIPSMetric, shipped_weights
from codecbench.testing import synthetic_image


def test_available_without_a_weights_dir() -> None:
    assert plugins.metrics().get("st-lpips").unavailable_reason() is None


def test_model_holds_the_shipped_weights() -> None:
    model = STLPIPSMetric().model()
    state = torch.load(shipped_weights(), map_location="cpu")
    own = model.state_dict()
    for key, value in state.items():
        assert torch.equal(own[key], value), key


def test_zero_for_identical_and_more_for_more_noise() -> None:
    metric = STLPIPSMetric()
    image = synthetic_image(96, 128, seed=4)
    assert metric.compute(image, image) == {"st-lpips": 0.0}
    rng = np.random.default_rng(0)
    values = []
    for sigma in (4, 16, 48):
        noisy = np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)
        values.append(metric.compute(image, noisy)["st-lpips"])
    assert 0 < values[0] < values[1] < values[2]


def test_tolerates_a_one_pixel_shift_better_than_noise_of_the_same_psnr() -> None:
    metric = STLPIPSMetric()
    image = synthetic_image(96, 128, seed=5)
    shifted = np.roll(image, 1, axis=1)
    mse = np.mean((image.astype(float) - shifted) ** 2)
    rng = np.random.default_rng(1)
    noisy = np.clip(image + rng.normal(0, np.sqrt(mse), image.shape), 0, 255).astype(np.uint8)
    assert metric.compute(image, shifted)["st-lpips"] < metric.compute(image, noisy)["st-lpips"]


def test_rejects_mismatched_shapes() -> None:
    from codecbench.errors import MetricError

    with pytest.raises(MetricError, match="shape mismatch"):
        STLPIPSMetric().compute(synthetic_image(64, 64), synthetic_image(64, 96))
