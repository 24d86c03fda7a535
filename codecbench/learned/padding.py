"""Pad images to a model's stride and crop reconstructions back, so any size can be coded.

Learned codecs downsample by a fixed factor (64 for Cheng2020: four stride-2 layers in the
analysis transform and two more in the hyper-analysis), so the input sides must be multiples of
it. Padding replicates the last row and column (cheaper to code than zeros) on the bottom and
right only, so cropping back is ``[..., :height, :width]``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def padded_size(height: int, width: int, stride: int) -> tuple[int, int]:
    """The smallest multiples of ``stride`` that are at least ``height`` and ``width``."""
    if stride < 1:
        raise ValueError(f"Invalid stride {stride}; expected a positive integer")
    return -(-height // stride) * stride, -(-width // stride) * stride


def pad_to_stride(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Pad an ``N x C x H x W`` tensor on the bottom and right to multiples of ``stride``."""
    height, width = x.shape[-2:]
    target_h, target_w = padded_size(height, width, stride)
    if (target_h, target_w) == (height, width):
        return x
    # "replicate" needs no minimum size, unlike "reflect", so 1-pixel-wide images work too.
    return F.pad(x, (0, target_w - width, 0, target_h - height), mode="replicate")


def crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Undo :func:`pad_to_stride`: keep the top-left ``height x width`` pixels."""
    return x[..., :height, :width]


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` ``uint8`` as a ``1 x 3 x H x W`` float tensor in ``[0, 1]``."""
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).unsqueeze(0)
    return x.float().div(255.0).contiguous()  # plain NCHW layout, not channels-last


def tensor_to_image(x: torch.Tensor) -> np.ndarray:
    """``1 x 3 x H x W`` float in ``[0, 1]`` as ``H x W x 3`` ``uint8`` (rounded, clipped)."""
    x = x.detach().to("cpu", torch.float32)[0].clamp(0, 1).mul(255.0).round()
    return x.to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
