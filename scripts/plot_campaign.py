"""Plot a training campaign's learning curves: the legs of one model, end to end in training hours.

Each leg is a ``curve.csv`` of ``codecbench train`` (held-out bpp and PSNR every ``--val-every``
steps, LPIPS where the codec validates it; ``wall_s`` counts that leg's training time; the rate
panel shows the coded bpp where the curve has it, else the estimated bpp), given in the order the legs
ran, each continuing (``--init``) from the one before. The plot puts them on one time axis.
With ``--overlay`` the curves are separate runs from one start (an ablation, seeds) drawn over
each other against their own steps; a run trained in legs (each ``--init`` from the one before,
so its steps restart at 0) is given as one ``LABEL=CURVE.csv`` per leg, the later legs as
``LABEL@STEPS=CURVE.csv`` with STEPS the steps before that leg began: they join into one line.

Usage: .venv/bin/python scripts/plot_campaign.py LABEL[@STEPS]=CURVE.csv [...] -o OUT.png [--overlay]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

PANELS = (("psnr", "PSNR (dB)"), ("lpips", "LPIPS-Alex"), ("rate", "bpp (coded where logged)"))


def joined(legs: list[tuple[str, Path]], overlay: bool = False,
           first_steps: list[int] | None = None) -> pd.DataFrame:
    """The legs' rows with ``hours``: training hours since the first leg began (since each
    run began with ``overlay``, where the legs of one label are one run, its later legs starting
    at ``first_steps``). A step logged twice (a resumed run validates again) counts once."""
    frames, offset, run_hours = [], 0.0, {}
    for index, (label, path) in enumerate(legs):
        try:
            frame = pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
            raise ValueError(f"{path}: not a curve file ({exc})") from exc
        missing = {"step", "wall_s", "psnr"} - set(frame.columns)
        if not {"bpp", "bpp_coded"} & set(frame.columns):
            missing.add("bpp")
        if missing:
            raise ValueError(f"{path} lacks the columns {', '.join(sorted(missing))} "
                             "(a curve.csv written by codecbench train)")
        frame = frame.drop_duplicates("step", keep="first")
        frame["rate"] = frame["bpp_coded"] if "bpp_coded" in frame else frame["bpp"]
        frame["step"] += first_steps[index] if first_steps else 0
        start = run_hours.get(label, 0.0) if overlay else offset
        frame["leg"], frame["hours"] = label, start + frame["wall_s"] / 3600
        offset = run_hours[label] = float(frame["hours"].iloc[-1])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("legs", nargs="+", help="LABEL=CURVE.csv, in the order the legs ran "
                        "(with --overlay, LABEL@STEPS=CURVE.csv for a later leg of a run)")
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--title", default="")
    parser.add_argument("--overlay", action="store_true",
                        help="separate runs from one start, drawn over each other against their steps")
    args = parser.parse_args()
    legs, first_steps = [], []
    for text in args.legs:
        label, _, path = text.rpartition("=")  # the last '=': labels such as "K=3" keep theirs
        if not label or not path:
            parser.error(f"{text!r}: give each leg as LABEL=CURVE.csv")
        name, at, steps = label.rpartition("@")
        if at and args.overlay:
            if not (name and steps.isdigit()):
                parser.error(f"{text!r}: a later leg is LABEL@STEPS=CURVE.csv, STEPS a step count")
            label = name
        first_steps.append(int(steps) if at and args.overlay else 0)
        if not Path(path).is_file():
            parser.error(f"{path}: no such curve file (a run's curve.csv, or a snapshot's NAME-curve.csv)")
        legs.append((label, Path(path)))
    try:
        data = joined(legs, args.overlay, first_steps)
    except ValueError as exc:
        parser.error(str(exc))
    x, x_label = ("step", "training steps") if args.overlay else ("hours", "training hours (1 CPU thread)")
    panels = [(column, label) for column, label in PANELS if column in data and data[column].notna().any()]
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), constrained_layout=True)
    for axis, (column, label) in zip(axes, panels):
        for leg, rows in data.groupby("leg", sort=False):
            axis.plot(rows[x], rows[column], marker=".", label=leg)
        axis.set_xlabel(x_label)
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        if column == "rate":
            axis.set_yscale("log")
    axes[0].legend(fontsize="small")
    if args.title:
        figure.suptitle(args.title)
    figure.savefig(args.out, dpi=100)
    for leg, rows in data.groupby("leg", sort=False):
        last = rows.iloc[-1]
        lpips = f", LPIPS {last['lpips']:.3f}" if pd.notna(last.get("lpips")) else ""
        print(f"{leg}: {last['hours']:.2f} h, last step {int(last['step'])}: "
              f"{last['rate']:.4f} bpp, {last['psnr']:.2f} dB{lpips}")
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
