"""Throughput of one benchmark run three ways: in this process (--jobs 1), two local worker
processes (--jobs 2) and Ray on a local two-CPU instance, with the ratios measured in one run.

The work is Kodak x JPEG x 19 points (5..95 step 5) with PSNR and MS-SSIM, each mode into a fresh
results database; the stored rows of the three modes are compared (bytes, bpp, metric values).
Wall times include starting the worker processes (local) but not starting the Ray instance, which
is printed apart. The load average is printed before and after: other processes share the CPUs.
With jobs 1 the metrics run with torch's default thread count, which on a loaded machine can be
slower than one thread (set OMP_NUM_THREADS=1 to compare like with like); workers use one each.

Usage: nice -n 10 .venv/bin/python benchmarks/throughput.py [--data-dir ../shared/datasets]
       [--points 5,10,...] [--metrics psnr,ms-ssim] [--skip-ray]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from codecbench import plugins
from codecbench.results import ResultStore
from codecbench.runner import Runner, plan_units

ROOT = Path(__file__).resolve().parents[1]
JPEG_POINTS = ",".join(str(q) for q in range(5, 100, 5))


def stored_rows(db: Path) -> dict[tuple, tuple]:
    """Every row by (image, point): status, bytes, bpp, stream and metric values."""
    with sqlite3.connect(db) as conn:
        metrics: dict[int, tuple] = {}
        for rid, name, value in conn.execute("SELECT result_id, metric, value FROM metric_values "
                                             "ORDER BY metric"):
            metrics[rid] = metrics.get(rid, ()) + ((name, value),)
        return {(image, point): (status, nbytes, bpp, stream, metrics.get(rid))
                for rid, image, point, status, nbytes, bpp, stream in conn.execute(
                    "SELECT id, image, point, status, nbytes, bpp, stream FROM results")}


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f} (1, 5, 15 min)".format(*os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder holding kodak/ (default: $CODECBENCH_DATA, then ../shared/datasets)")
    parser.add_argument("--points", default=JPEG_POINTS)
    parser.add_argument("--metrics", default="psnr,ms-ssim")
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    data_dir = args.data_dir or (None if os.environ.get("CODECBENCH_DATA")
                                 else ROOT.parent / "shared" / "datasets")

    codec = plugins.codecs().get("jpeg")
    metrics = [plugins.metrics().get(name) for name in args.metrics.split(",")]
    dataset = plugins.datasets().get("kodak")
    images = dataset.images(data_dir, download=False)
    points = [int(p) for p in args.points.split(",")]
    modes = {"jobs 1 (in process)": {"jobs": 1}, "jobs 2 (local workers)": {"jobs": 2}}
    if not args.skip_ray:
        import ray

        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
        ray_start = time.perf_counter() - start
        modes["ray (local, 2 CPUs)"] = {"executor": "ray", "jobs": None}

    print(f"units: {len(images) * len(points)} (Kodak {len(images)} images x JPEG {len(points)} "
          f"points), metrics: {args.metrics}; CPUs: {len(os.sched_getaffinity(0))}")
    import torch  # the metrics use it; workers run it with one thread each

    print(f"torch threads in this process (jobs 1): {torch.get_num_threads()}, in each worker: 1")
    print(f"before: {load()}")
    if not args.skip_ray:
        print(f"Ray instance started in {ray_start:.1f} s (not included below)")
    walls: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode, settings in modes.items():
            db = Path(tmp) / f"{len(walls)}.sqlite"
            with ResultStore(db) as store:
                units = plan_units([codec], dataset, images, {codec.name: points})
                runner = Runner(store, metrics, progress=False, **settings)
                start = time.perf_counter()
                summary = runner.run(units, command=f"benchmarks/throughput.py ({mode})")
                walls[mode] = time.perf_counter() - start
            n = summary.computed
            print(f"{mode:<24} {walls[mode]:7.1f} s  {n / walls[mode]:6.2f} units/s  "
                  f"({n} computed, {summary.failed} failed)  {load()}")
        rows = [stored_rows(Path(tmp) / f"{i}.sqlite") for i in range(len(modes))]
    serial = next(iter(walls.values()))
    for mode, wall in list(walls.items())[1:]:
        print(f"speed-up of {mode} over jobs 1: {serial / wall:.2f}x")
    same = all(r == rows[0] for r in rows[1:])
    print(f"stored rows identical across modes (bytes, bpp, metric values): {'yes' if same else 'NO'}")
    if not args.skip_ray:
        ray.shutdown()


if __name__ == "__main__":
    main()
