"""Encode and decode time per image for every available learned codec, per point (Kodak by default).

Codecs are found through the plugin registry (family "learned"), never by importing plugins.
Models are loaded before timing; each call is timed with ``perf_counter`` around the codec call
and ``synchronize()``, as the harness does. bpp is ``8 * len(bytes) / pixels`` of the real bytes;
"header B" is the part of those bytes that is the container (``codecbench.learned.Bitstream``)
rather than entropy-coded streams, which matters on small images.

Usage: .venv/bin/python benchmarks/learned_codec_speed.py [--data-dir ../shared/datasets]
       [--dataset kodak] [--images 4] [--codecs cheng2020-anchor,...] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from codecbench import plugins
from codecbench.codec import Codec, format_point
from codecbench.image import read_image
from codecbench.learned import Bitstream

ROOT = Path(__file__).resolve().parents[1]


def learned_codecs(names: str | None) -> list[Codec]:
    """The requested codecs (default: every registered learned codec), available ones only."""
    registry = plugins.codecs()
    if names:
        selected = [registry.get(n.strip()) for n in names.split(",")]
    else:
        selected = [codec for codec in registry if codec.family == "learned"]
    codecs = []
    for codec in selected:
        if codec.family != "learned":
            print(f"skipped {codec.name}: family {codec.family!r}, not learned", file=sys.stderr)
        elif reason := codec.unavailable_reason():
            print(f"skipped {codec.name}: unavailable: {reason}", file=sys.stderr)
        else:
            codecs.append(codec)
    return codecs


def timed(codec: Codec, call, *args):
    """``(result, seconds)`` of ``call(*args)``, synchronized like the harness times codecs."""
    codec.synchronize()
    start = time.perf_counter()
    result = call(*args)
    codec.synchronize()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("CODECBENCH_DATA") or ROOT.parent / "shared" / "datasets"
    parser.add_argument("--data-dir", type=Path, default=Path(default_data))
    parser.add_argument("--dataset", default="kodak", help="Registered dataset name [kodak].")
    parser.add_argument("--images", type=int, default=None, help="Only the first N images.")
    parser.add_argument("--codecs", default=None, help="Comma-separated codecs (default: all learned).")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads.")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    refs = plugins.datasets().get(args.dataset).images(args.data_dir, download=False)[: args.images]
    images = [read_image(ref.path) for ref in refs]
    codecs = learned_codecs(args.codecs)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} with "
          f"{args.threads} thread(s); {args.dataset}, {len(images)} image(s)")
    if not codecs:
        print("no available learned codec")
        return
    print(f"{'codec':<20} {'point':>5} {'bpp':>7} {'header B':>9} {'encode s':>9} {'decode s':>9}")
    for codec in codecs:
        codec.load()
        encode_all, decode_all = [], []
        for point in codec.points:
            bpp, header, encode_s, decode_s = [], [], [], []
            for image in tqdm(images, desc=f"{codec.name} {format_point(point)}", file=sys.stderr,
                              leave=False):
                data, seconds = timed(codec, codec.encode, image, point)
                encode_s.append(seconds)
                decoded, seconds = timed(codec, codec.decode, data)
                decode_s.append(seconds)
                if decoded.shape != image.shape:
                    raise SystemExit(f"{codec.name}: decoded shape {decoded.shape} != {image.shape}")
                bpp.append(8 * len(data) / (image.shape[0] * image.shape[1]))
                header.append(len(data) - sum(len(s) for s in Bitstream.from_bytes(data).streams))
            encode_all += encode_s
            decode_all += decode_s
            print(f"{codec.name:<20} {format_point(point):>5} {statistics.mean(bpp):7.3f} "
                  f"{statistics.mean(header):9.1f} {statistics.mean(encode_s):9.2f} {statistics.mean(decode_s):9.2f}")
        print(f"{codec.name:<20} {'all':>5} {'':>7} {'':>9} {statistics.mean(encode_all):9.2f} "
              f"{statistics.mean(decode_all):9.2f}")


if __name__ == "__main__":
    main()
