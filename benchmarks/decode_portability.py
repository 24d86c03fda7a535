"""Decode every stored bitstream of the learned codecs here, and count those that do not decode.

A learned codec's decoder must rebuild the encoder's CDFs bit for bit from floats; on a CPU with
another instruction set (or another torch/CompressAI version) one of them can round differently,
and the container's symbol digest then refuses the stream (``BitstreamError``) rather than
return a wrong image. This prints, per codec and point of a results store, how many of the
stored streams (the codec's current version, default configuration) decode on this machine, and
how far the PSNR of those that do is from the PSNR stored when they were encoded (the synthesis
transform's rounding).

Usage: .venv/bin/python benchmarks/decode_portability.py --db reports/kodak-paper.sqlite
       [--dataset kodak] [--codecs ot,gan,...] [--data-dir ../shared/datasets] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from codecbench import plugins
from codecbench.codec import format_point
from codecbench.errors import BitstreamError, CodecbenchError
from codecbench.image import read_image
from codecbench.machine import cpu_name
from codecbench.metrics.psnr import psnr
from codecbench.results import ResultStore, RowKey, config_json
from learned_codec_speed import learned_codecs  # the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("CODECBENCH_DATA") or ROOT.parent / "shared" / "datasets"
    parser.add_argument("--db", type=Path, required=True, help="The results store to read.")
    parser.add_argument("--dataset", default="kodak", help="Dataset of the stored rows [kodak].")
    parser.add_argument("--codecs", default=None,
                        help="Comma-separated codecs (default: every learned codec with rows).")
    parser.add_argument("--data-dir", type=Path, default=Path(default_data))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads [1].")
    args = parser.parse_args()

    if not args.db.is_file():
        parser.error(f"--db {args.db}: no such results store (a file `codecbench run` wrote)")
    torch.set_num_threads(args.threads)
    try:
        refs = {ref.name: ref for ref in
                plugins.datasets().get(args.dataset).images(args.data_dir, download=False)}
        codecs = learned_codecs(args.codecs)
    except CodecbenchError as exc:  # unknown dataset or codec, images missing from --data-dir
        parser.error(str(exc))
    with ResultStore(args.db, read_only=True) as store:
        stored = set(store.codec_names(args.dataset))
        codecs = [c for c in codecs if c.name in stored]
        print(f"machine: {cpu_name()}, torch {torch.__version__}, {args.threads} thread(s); "
              f"{args.db}, {args.dataset}")
        print(f"{'codec':<20} {'point':>5} {'rows':>5} {'decoded':>8} {'refused':>8} "
              f"{'max |dPSNR| dB':>15}  refused images")
        frame = store.frame(args.dataset, [c.name for c in codecs])
        for codec in codecs:
            codec.load()
            mine = frame[(frame["codec"] == codec.name) & (frame["status"] == "ok")
                         & (frame["codec_version"] == codec.version())
                         & (frame["config"] == config_json(codec.config))]
            for point, rows in mine.groupby("point"):
                refused, drift = [], 0.0
                for _, row in rows.iterrows():
                    key = RowKey(args.dataset, row["image"], codec.name, row["codec_version"],
                                 point, row["config"])
                    try:
                        decoded = codec.decode(store.get(key).stream)
                    except BitstreamError:
                        refused.append(row["image"])
                        continue
                    if "psnr" in row and row["image"] in refs and row["psnr"] == row["psnr"]:
                        now = psnr(read_image(refs[row["image"]].path), decoded)
                        drift = max(drift, abs(now - row["psnr"]))
                print(f"{codec.name:<20} {format_point(point):>5} {len(rows):>5} "
                      f"{len(rows) - len(refused):>8} {len(refused):>8} {drift:>15.4f}  "
                      f"{', '.join(refused)}")


if __name__ == "__main__":
    main()
