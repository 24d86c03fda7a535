"""Padding to a model's stride and cropping back, for any image size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codecbench.learned.padding import crop_to, image_to_tensor, pad_to_stride, padded_size, tensor_to_image
from codecbench.testing import synthetic_image


@pytest.mark.parametrize("size, expected", [
    ((512, 768), (512, 768)), ((768, 512), (768, 512)), ((33, 57), (64, 64)), ((1, 1), (64, 64)),
    ((65, 128), (128, 128)),
])
def test_padded_size(size, expected):
    assert padded_size(*size, stride=64) == expected


def test_invalid_stride():
    with pytest.raises(ValueError, match="stride 0"):
        padded_size(10, 10, 0)


@pytest.mark.parametrize("height, width", [(512, 768), (768, 512), (33, 57), (1, 1), (64, 65)])
def test_pad_then_crop_is_identity(height, width):
    image = synthetic_image(height, width)
    x = image_to_tensor(image)
    padded = pad_to_stride(x, 64)
    assert padded.shape[-2] % 64 == 0 and padded.shape[-1] % 64 == 0
    assert np.array_equal(tensor_to_image(crop_to(padded, height, width)), image)


def test_padding_replicates_the_edges():
    x = image_to_tensor(synthetic_image(33, 57))
    padded = pad_to_stride(x, 64)
    assert torch.equal(padded[..., 40, :57], padded[..., 32, :57])
    assert torch.equal(padded[..., :33, 60], padded[..., :33, 56])


def test_tensor_layout_is_plain_nchw():
    # A permuted (channels-last) tensor made CPU convolution backward crash; keep NCHW.
    x = image_to_tensor(synthetic_image(16, 24))
    assert x.shape == (1, 3, 16, 24) and x.is_contiguous() and x.dtype == torch.float32


def test_tensor_to_image_rounds_and_clips():
    x = torch.tensor([-0.5, 0.5 / 255, 1.6 / 255, 2.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    assert tensor_to_image(x)[0, :, 0].tolist() == [0, 0, 2, 255]
