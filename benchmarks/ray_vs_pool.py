"""Units per second of the same small work on the local worker pool and on a local Ray instance.

    python benchmarks/ray_vs_pool.py [--images 12] [--size 256] [--jobs 2] [--codec jpeg]

The work: ``--codec`` at three points (10, 50, 90) on ``--images`` synthetic images of
``--size`` x ``--size`` pixels, with PSNR, written to a fresh results store in a temporary folder
for each run. Each executor runs the work twice: ``cold`` includes starting the workers (the local
pool spawns and imports the plugins; Ray starts its workers), ``warm`` is a second run (a new
local pool, since a pool lives for one run; Ray's workers are still up). Ray's own start-up
(``ray.init``) is timed on its own line.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PIL import Image

from codecbench import plugins
from codecbench.dataset import FolderDataset
from codecbench.metrics.psnr import PSNRMetric
from codecbench.results import ResultStore
from codecbench.runner import Runner, plan_units
from codecbench.testing import synthetic_image


def timed_run(folder: Path, db: Path, codec: str, executor: str, jobs: int) -> tuple[int, float]:
    """``(units computed, seconds)`` of one run of the work."""
    dataset = FolderDataset(folder)
    units = plan_units([plugins.codecs().get(codec)], dataset, dataset.images(), {codec: (10, 50, 90)})
    with ResultStore(db) as store:
        started = time.perf_counter()
        summary = Runner(store, [PSNRMetric()], progress=False, jobs=jobs, executor=executor).run(units)
        seconds = time.perf_counter() - started
    if summary.failed:
        raise SystemExit(f"{summary.failed} unit(s) failed on {executor}: {summary.failures[0].error}")
    return summary.computed, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--codec", default="jpeg")
    args = parser.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i in range(args.images):
            Image.fromarray(synthetic_image(args.size, args.size, seed=i)).save(folder / f"{i}.png")
        print(f"{args.codec} at 3 points on {args.images} images of {args.size}x{args.size}, PSNR, "
              f"{args.jobs} workers")
        for executor in ("local", "ray"):
            if executor == "ray":
                started = time.perf_counter()
                ray.init(num_cpus=args.jobs, include_dashboard=False, logging_level="ERROR")
                print(f"ray.init: {time.perf_counter() - started:.1f} s")
            for label in ("cold", "warm"):
                units, seconds = timed_run(folder, Path(tmp) / f"{executor}-{label}.sqlite", args.codec,
                                           executor, args.jobs)
                print(f"{executor:<6} {label}: {units} units in {seconds:.2f} s = {units / seconds:.1f} units/s")
        ray.shutdown()


if __name__ == "__main__":
    main()
