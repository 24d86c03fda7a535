"""Harness overhead: images/s for JPEG + PSNR + MS-SSIM over Kodak, and the share of wall time
spent outside the codec (image loading, metrics, SQLite writes, bookkeeping).

Usage: .venv/bin/python benchmarks/harness_overhead.py [--data-dir ../shared/datasets] [--points 25,50,75]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from codecbench import plugins
from codecbench.results import ResultStore
from codecbench.runner import Runner, plan_units

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--points", default="25,50,75")
    args = parser.parse_args()

    codec = plugins.codecs().get("jpeg")
    metric_registry = plugins.metrics()
    metrics = [metric_registry.get("psnr"), metric_registry.get("ms-ssim")]
    dataset = plugins.datasets().get("kodak")
    images = dataset.images(args.data_dir, download=False)
    points = [int(p) for p in args.points.split(",")]

    metric_time = {m.name: 0.0 for m in metrics}
    for metric in metrics:
        metric.compute = timed(metric.compute, metric_time, metric.name)

    with tempfile.TemporaryDirectory() as tmp, ResultStore(Path(tmp) / "bench.sqlite") as store:
        units = plan_units([codec], dataset, images, {codec.name: points})
        runner = Runner(store, metrics, progress=False)
        start = time.perf_counter()
        summary = runner.run(units, command="benchmarks/harness_overhead.py")
        wall = time.perf_counter() - start
        rows = store.frame()
    codec_time = float(rows["encode_s"].sum() + rows["decode_s"].sum())
    n = summary.computed
    print(f"units: {n} (Kodak {len(images)} images x JPEG points {points}), failed: {summary.failed}")
    print(f"wall time: {wall:.2f} s -> {n / wall:.1f} images/s (JPEG + PSNR + MS-SSIM + store)")
    print(f"codec time (encode + decode): {codec_time:.2f} s = {100 * codec_time / wall:.1f}% of wall")
    outside = wall - codec_time
    print(f"outside the codec: {outside:.2f} s = {100 * outside / wall:.1f}% "
          f"({1000 * outside / n:.1f} ms per image), of which:")
    for name, seconds in metric_time.items():
        print(f"  metric {name}: {seconds:.2f} s = {100 * seconds / wall:.1f}% ({1000 * seconds / n:.1f} ms per image)")
    rest = outside - sum(metric_time.values())
    print(f"  harness itself (image loading, SQLite writes, bookkeeping): {rest:.2f} s = "
          f"{100 * rest / wall:.1f}% ({1000 * rest / n:.1f} ms per image)")


def timed(func: Callable[..., T], totals: dict[str, float], name: str) -> Callable[..., T]:
    """``func`` wrapped so that its wall time accumulates in ``totals[name]``."""

    def wrapper(*args: object) -> T:
        start = time.perf_counter()
        try:
            return func(*args)
        finally:
            totals[name] += time.perf_counter() - start

    return wrapper


if __name__ == "__main__":
    main()
