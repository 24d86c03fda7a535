"""Where an AEDC checkpoint loses PSNR: coding vs model, whole images vs training-size tiles, colour.

For each Kodak image it prints the real bpp, PSNR of the decoded bytes and of the eval forward
pass (equal unless coding is broken), PSNR when 128x128 tiles go through the model independently
(the training crop size: differs from the whole image when the model depends on image size, as
instance norm does), the mean error per channel (R/G/B, 8-bit levels) both ways, and the symbol
frequencies. Example::

    python plugins/codecbench-aedc/benchmarks/colour_diagnosis.py                 # shipped point 1
    python plugins/codecbench-aedc/benchmarks/colour_diagnosis.py --weights OUT/model.pt
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from codecbench.image import read_image
from codecbench.learned import crop_to, image_to_tensor, pad_to_stride, tensor_to_image
from codecbench_aedc import AEDCCodec


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2))


def tiled(model: torch.nn.Module, x: torch.Tensor, tile: int) -> np.ndarray:
    """The forward pass on independent ``tile x tile`` tiles, reassembled."""
    height, width = x.shape[-2:]
    out = np.zeros((height, width, 3), dtype=np.uint8)
    for i in range(0, height, tile):
        for j in range(0, width, tile):
            part = x[..., i:i + tile, j:j + tile]
            x_hat = model(pad_to_stride(part, AEDCCodec.stride))["x_hat"]
            out[i:i + tile, j:j + tile] = tensor_to_image(crop_to(x_hat, *part.shape[-2:]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="", help="a model.pt (default: the shipped point --point)")
    parser.add_argument("--point", type=int, default=1)
    parser.add_argument("--kodak", type=Path, default=Path("../shared/datasets/kodak"))
    parser.add_argument("--images", default="kodim03,kodim05,kodim13,kodim23")
    parser.add_argument("--tile", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    codec = AEDCCodec()
    if args.weights:
        codec.configure(weights=args.weights)
    model = codec.model_for_point(args.point).model
    for name in args.images.split(","):
        image = read_image(args.kodak / f"{name}.png")
        data = codec.encode(image, args.point)
        decoded = codec.decode(data)
        with torch.no_grad():
            x = image_to_tensor(image)
            forward = tensor_to_image(crop_to(model(pad_to_stride(x, codec.stride))["x_hat"], *image.shape[:2]))
            tiles = tiled(model, x, args.tile)
            symbols = model.encode_latent(pad_to_stride(x, codec.stride))[1]
        freq = torch.bincount(symbols.flatten(), minlength=model.L).float() / symbols.numel()

        def shift(y: np.ndarray) -> str:
            return "/".join(f"{v:+.1f}" for v in (y.astype(float) - image).reshape(-1, 3).mean(0))

        print(f"{name}: bpp {8 * len(data) / (image.shape[0] * image.shape[1]):.4f}, PSNR decoded "
              f"{psnr(decoded, image):.2f} forward {psnr(forward, image):.2f} (bytes equal forward: "
              f"{np.array_equal(decoded, forward)}), {args.tile}-px tiles {psnr(tiles, image):.2f}; "
              f"mean shift whole {shift(decoded)}, tiles {shift(tiles)}; symbols "
              f"{' '.join(f'{f:.3f}' for f in freq.tolist())}")


if __name__ == "__main__":
    main()
