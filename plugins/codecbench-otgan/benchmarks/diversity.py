"""Mode-collapse check: decode the same OT-generated latents with several models, report diversity.

For each ``NAME=CHECKPOINT`` given, the decoder turns ``--count`` codes drawn from the extended OT
map of ``--map`` (quantized as coded latents are) into images; the figure printed is the mean
ST-LPIPS over all pairs of those images (higher: more diverse; a collapsed generator scores near
0). ``--reference DIR`` also scores ``--count`` real images of DIR, centre-cropped to the decoded
size (the codes model crops of that size), as the diversity a generator should approach. A PNG
grid (one row per model) is written with ``--grid``. Each model after the first is also compared
with the first one's decodes of the same codes (mean PSNR): with the stage-1 ``ot`` model first,
this says how far the GAN stage moved the decodes of codes that have no ground truth (noise
painted on them shows as a low figure, more diversity as a low figure too: read it with the grid),
and each model's latent cycle error, ``mean((f(g(q(z))) - q(z))^2)`` with its own encoder (what
``-m cycle_weight`` trains down).

    python plugins/codecbench-otgan/benchmarks/diversity.py --map MAP/ot_map.pt \\
        --model gan=GAN/model.pt --model ot_gan=OTGAN/model.pt --count 24 --grid diversity.png \\
        --reference ../shared/datasets/faces/mtfl/AFLW
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from codecbench import plugins
from codecbench.image import read_image
from codecbench.learned.data import list_images
from codecbench.learned.padding import tensor_to_image
from codecbench_otgan.artefact import load_map
from codecbench_otgan.extended_map import ExtendedOTMap
from codecbench_otgan.fit import load_autoencoder
from codecbench_otgan.model import STRIDE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--map", required=True, type=Path)
    parser.add_argument("--model", action="append", required=True, metavar="NAME=CHECKPOINT")
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=Path, default=None)
    parser.add_argument("--reference", type=Path, default=None,
                        help="Folder of real images whose diversity is printed for comparison.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ot_map, shape, _ = load_map(args.map)
    pool = ExtendedOTMap(ot_map).sample_pool(4 * args.count, seed=args.seed).codes.float()
    codes = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(args.seed))[:args.count]]
    metric = plugins.metrics().get("st-lpips")
    rows, decoded = [], []
    size = shape[-2] * STRIDE, shape[-1] * STRIDE  # the decoded images' size

    def centre_crop(path: Path) -> np.ndarray:
        image = read_image(path)
        if image.shape[0] < size[0] or image.shape[1] < size[1]:
            parser.error(f"--reference image {path} is {image.shape[1]}x{image.shape[0]}, smaller than the "
                         f"decoded {size[1]}x{size[0]}; give a folder of images at least that large")
        top, left = (image.shape[0] - size[0]) // 2, (image.shape[1] - size[1]) // 2
        return image[top:top + size[0], left:left + size[1]]

    def report(name: str, images: list[np.ndarray], first: list[np.ndarray] | None = None,
               cycle: float | None = None) -> None:
        pairs = list(itertools.combinations(images, 2))
        diversity = float(np.mean([metric.distance(a, b) for a, b in pairs]))
        versus = ""
        if first is not None:
            mse = [np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) for a, b in zip(images, first)]
            versus = f"; {np.mean([10 * np.log10(255**2 / max(m, 1e-10)) for m in mse]):.2f} dB from the first model's"
        if cycle is not None:
            versus += f"; latent cycle error {cycle:.4f}"
        print(f"{name:>10}: {diversity:.4f} over {len(pairs)} pairs{versus}")

    print(f"{len(codes)} OT-generated codes of shape {shape}; mean pairwise ST-LPIPS of decoded images")
    for spec in args.model:
        name, _, checkpoint = spec.partition("=")
        model = load_autoencoder(Path(checkpoint))
        with torch.no_grad():
            quantized = model.quantize(codes.reshape(-1, *shape))
            decodes = model.decode(quantized)
            cycle = float(torch.mean((model.latent(decodes) - quantized) ** 2))
            images = [tensor_to_image(d[None]) for d in decodes]
        report(name, images, decoded[0] if decoded else None, cycle)
        decoded.append(images)
        rows.append(np.concatenate(images, axis=1))
    if args.reference is not None:
        paths = list_images(args.reference)
        chosen = torch.randperm(len(paths), generator=torch.Generator().manual_seed(args.seed))[:args.count]
        report(f"real ({args.reference.name})", [centre_crop(paths[i]) for i in chosen.tolist()])
    if args.grid is not None:
        Image.fromarray(np.concatenate(rows, axis=0)).save(args.grid)
        print(f"grid: {args.grid} (rows: {', '.join(s.partition('=')[0] for s in args.model)})")


if __name__ == "__main__":
    main()
