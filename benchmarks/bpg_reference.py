"""Check the `bpg` codec against CompressAI's published BPG 4:4:4 x265 Kodak figures.

Reads the stored Kodak rows of `bpg` with its default options (x265, 4:4:4) from a results store
and prints, for every QP of the published curve, our mean bpp and PSNR beside the published ones,
the differences, and whether they are within 1 % (bpp) and 0.1 dB (PSNR).

Usage: .venv/bin/python benchmarks/bpg_reference.py --db reports/kodak-paper.sqlite
(fill the store first: codecbench run -c bpg -d kodak -m psnr,ms-ssim --db reports/kodak-paper.sqlite)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from codecbench.leaderboard import leaderboard
from codecbench.results import ResultStore, config_json

PUBLISHED = Path(__file__).parent / "published" / "bpg_444_x265_kodak_compressai.csv"
MAX_QP = 51


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--dataset", default="kodak")
    args = parser.parse_args()

    from codecbench import plugins

    defaults = config_json(plugins.codecs().get("bpg").config)
    published = pd.read_csv(PUBLISHED, comment="#")
    with ResultStore(args.db) as store:
        rows = store.frame(args.dataset, ["bpg"])
    rows = rows[rows["config"] == defaults]
    board = leaderboard(rows)
    ok = True
    print(f"{'QP':>3} {'n':>3} {'bpp':>8} {'published':>9} {'diff':>7}   {'PSNR':>6} {'published':>9} {'diff':>6}"
          f"   {'MS-SSIM':>7} {'published':>9}")
    for ref in published.itertuples():
        ours = board[board["point"] == MAX_QP - ref.qp]
        if ours.empty or int(ours["n"].iloc[0]) != 24:
            print(f"{ref.qp:>3}  not in the store (or not on all 24 images)")
            ok = False
            continue
        bpp, psnr, n = float(ours["bpp"].iloc[0]), float(ours["psnr"].iloc[0]), int(ours["n"].iloc[0])
        bpp_diff, psnr_diff = 100 * (bpp / ref.bpp - 1), psnr - ref.psnr
        within = abs(bpp_diff) <= 1 and abs(psnr_diff) <= 0.1
        ok &= within
        print(f"{ref.qp:>3} {n:>3} {bpp:8.4f} {ref.bpp:9.4f} {bpp_diff:+6.2f}%   {psnr:6.2f} {ref.psnr:9.2f} "
              f"{psnr_diff:+6.3f}   {ours['ms-ssim'].iloc[0]:7.4f} {ref._4:9.4f}  "
              f"{'ok' if within else 'OUTSIDE 1 % / 0.1 dB'}")
    print("reproduces the published curve" if ok else "does NOT reproduce the published curve")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
