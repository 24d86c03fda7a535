"""Plot a training campaign's learning curves: the legs of one model, end to end in training hours.

Each leg is a ``curve.csv`` of ``codecbench train`` (held-out bpp, PSNR and LPIPS every
``--val-every`` steps; ``wall_s`` counts that leg's training time), given in the order the legs
ran, each continuing (``--init``) from the one before. The plot puts them on one time axis.
With ``--overlay`` the curves are separate runs from one start (an ablation, seeds) drawn over
each other against their own steps.

Usage: .venv/bin/python scripts/plot_campaign.py LABEL=CURVE.csv [LABEL=CURVE.csv ...] -o OUT.png [--overlay]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

PANELS = (("psnr", "PSNR (dB)"), ("lpips", "LPIPS-Alex"), ("bpp_coded", "coded bpp"))


def joined(legs: list[tuple[str, Path]], overlay: bool = False) -> pd.DataFrame:
    """The legs' rows with ``hours``: training hours since the first leg began (since each
    run began with ``overlay``). A step logged twice (a resumed run validates again) counts once."""
    frames, offset = [], 0.0
    for label, path in legs:
        try:
            frame = pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
            raise ValueError(f"{path}: not a curve file ({exc})") from exc
        missing = {"step", "wall_s", *(column for column, _ in PANELS)} - set(frame.columns)
        if missing:
            raise ValueError(f"{path} lacks the columns {', '.join(sorted(missing))} "
                             "(written by codecbench train with LPIPS validation)")
        frame = frame.drop_duplicates("step", keep="first")
        frame["leg"], frame["hours"] = label, (0.0 if overlay else offset) + frame["wall_s"] / 3600
        offset = float(frame["hours"].iloc[-1])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("legs", nargs="+", help="LABEL=CURVE.csv, in the order the legs ran")
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--title", default="")
    parser.add_argument("--overlay", action="store_true",
                        help="separate runs from one start, drawn over each other against their steps")
    args = parser.parse_args()
    legs = []
    for text in args.legs:
        label, _, path = text.partition("=")
        if not label or not path:
            parser.error(f"{text!r}: give each leg as LABEL=CURVE.csv")
        if not Path(path).is_file():
            parser.error(f"{path}: no such curve file (a run's curve.csv, or a snapshot's NAME-curve.csv)")
        legs.append((label, Path(path)))
    try:
        data = joined(legs, args.overlay)
    except ValueError as exc:
        parser.error(str(exc))
    x, x_label = ("step", "training steps") if args.overlay else ("hours", "training hours (1 CPU thread)")
    figure, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.2), constrained_layout=True)
    for axis, (column, label) in zip(axes, PANELS):
        for leg, rows in data.groupby("leg", sort=False):
            axis.plot(rows[x], rows[column], marker=".", label=leg)
        axis.set_xlabel(x_label)
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        if column == "bpp_coded":
            axis.set_yscale("log")
    axes[0].legend(fontsize="small")
    if args.title:
        figure.suptitle(args.title)
    figure.savefig(args.out, dpi=100)
    for leg, rows in data.groupby("leg", sort=False):
        last = rows.iloc[-1]
        print(f"{leg}: {last['hours']:.2f} h, last step {int(last['step'])}: "
              f"{last['bpp_coded']:.4f} bpp, {last['psnr']:.2f} dB, LPIPS {last['lpips']:.3f}")
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
