"""Speed of a stored comparison: ``compare`` over 15 codecs on a store that already holds the
answers must take seconds, encoding and decoding nothing.

Without ``--db``, builds a synthetic store: 15 codecs x 24 images x 10 points with PSNR and MS-SSIM
(5 of the codecs have a continuous knob, with the probes a previous compare left next to the
target), whose codecs fail if anything is encoded or decoded. With ``--db PATH`` it times a copy
of a real store instead: the codecs stored on ``--dataset`` that are registered here, from stored
points only (``--no-probe``), on the images named in the store.

Usage: .venv/bin/python benchmarks/compare_speed.py [--db codecbench.sqlite --dataset kodak] [--bpp 0.03]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from codecbench.codec import Codec
from codecbench.compare import Curve, default_codecs, rate_matched, stored_curves
from codecbench.dataset import Dataset, ImageRef
from codecbench.results import ResultStore, RowKey, config_json

N_CODECS, N_IMAGES, POINTS = 15, 24, tuple(range(1, 11))


class StoredOnly(Codec):
    """A codec that may only be read from the store."""

    name = "stored-only"
    points = POINTS

    def encode(self, image: np.ndarray, point: float) -> bytes:
        raise AssertionError(f"{self.name} encoded: the comparison should come from the store")

    def decode(self, data: bytes) -> np.ndarray:
        raise AssertionError(f"{self.name} decoded: the comparison should come from the store")


class Synthetic(Dataset):
    name = "synthetic"
    description = "images named only: every row is stored"


def synthetic_store(path: Path, target: float) -> tuple[list[Codec], list[ImageRef]]:
    """15 codecs (every third one with a continuous knob 0..100) x 24 images x 10 points."""
    rng = np.random.default_rng(0)
    images = [ImageRef(f"kodim{i + 1:02d}.png", Path(f"kodim{i + 1:02d}.png")) for i in range(N_IMAGES)]
    codecs = []
    for c in range(N_CODECS):
        continuous = c % 3 == 0
        attributes = {"name": f"codec-{c:02d}", "points": tuple(p * 10 for p in POINTS) if continuous else POINTS}
        if continuous:
            attributes["point_range"] = (0, 110)
        codecs.append(type(f"Codec{c}", (StoredOnly,), attributes)())
    with ResultStore(path) as store:
        for c, codec in enumerate(codecs):
            scale = 0.01 * (1 + 0.1 * rng.random())
            config = config_json(codec.config)
            for image_index, ref in enumerate(images):
                easy = 0.5 + image_index / N_IMAGES
                bpp_of = (lambda p: scale * easy * p / (10 if codec.point_range else 1))
                points = list(codec.points)
                if codec.point_range:  # the probes a previous compare left on both sides of the target
                    under = int(target / (scale * easy) * 10)
                    points += [p for p in (under, under + 1) if 0 <= p <= 110 and p not in points]
                for point in points:
                    bpp = bpp_of(point)
                    store.put(RowKey(Synthetic.name, ref.name, codec.name, codec.version(), float(point), config),
                              run_id="synthetic", status="ok", stream=b"\0" * 64, bpp=bpp,
                              encode_s=0.01, decode_s=0.01, probe=point not in codec.points,
                              metrics={"psnr": 20 + c * 0.2 + 4 * np.log2(bpp * 100),
                                       "ms-ssim": 1 - 0.1 / (1 + bpp * 10),
                                       "ms-ssim-db": 10 * np.log10(1 + bpp * 10) + 10})
    return codecs, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=None, help="A real store to copy (default: synthetic).")
    parser.add_argument("--dataset", default="kodak", help="With --db: the dataset to compare on.")
    parser.add_argument("--bpp", type=float, default=0.03)
    args = parser.parse_args()

    from codecbench import plugins

    metrics = [plugins.metrics().get("psnr"), plugins.metrics().get("ms-ssim")]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "store.sqlite"
        if args.db is None:
            codecs, images = synthetic_store(db, args.bpp)
            dataset: Dataset = Synthetic()
            probe = True
            what = f"synthetic store, {N_CODECS} codecs x {N_IMAGES} images x {len(POINTS)} points"
        else:
            shutil.copy(args.db, db)
            dataset = plugins.datasets().get(args.dataset)
            probe = False
            what = f"copy of {args.db} on {args.dataset}, stored points only"
        times = []
        for _ in range(2):  # the first run includes importing what compare imports lazily (scipy)
            start = time.perf_counter()
            with ResultStore(db) as store:
                if args.db is None:
                    curves: list[Codec | Curve] = list(codecs)
                else:
                    chosen, _ = default_codecs(list(plugins.codecs()), store.codec_names(dataset.name),
                                               "photos")
                    rows = store.frame(dataset.name, [c.name for c in chosen])
                    curves = [curve for codec in chosen for curve in stored_curves(codec, rows)]
                    images = [ImageRef(n, Path(n)) for n in sorted(rows["image"].unique())]
                result = rate_matched(store, curves, dataset, images, args.bpp, metrics, probe=probe)
            times.append(time.perf_counter() - start)
            if result.failures:
                raise SystemExit(f"compare failed: {result.failures[0]}")
    print(result.table[["curve", "n", "bpp", "match", "psnr", "interp-psnr"]].to_string(index=False))
    print(f"\n{what}: compare of {len(result.table)} curves at {args.bpp:g} bpp took "
          f"{times[0]:.2f} s (first, with lazy imports), {times[1]:.2f} s (again); nothing was "
          f"encoded or decoded")


if __name__ == "__main__":
    main()
