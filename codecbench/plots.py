"""Rate-distortion and rate-perception plots with matplotlib, one line per curve, PNG and SVG.

A curve is one codec with one configuration (its ``curve`` label tells codec options apart; without
that column, the codec name). Lines are styled by codec ``family`` (solid for traditional, dashed
for learned codecs, dotted with crosses for published curves), never by a list of codec names;
colour tells curves apart, and the legend lists the curve labels only. Which metric columns get a
plot, and their axis labels, come from the metrics' :class:`~codecbench.metric.Column`
declarations. The bpp axis is logarithmic for low rates (:func:`wants_log_bpp`) and starts at the
lowest rate any curve reaches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from codecbench.metric import Column, registered_columns

FAMILY_DASHES = {"traditional": (), "learned": (4, 2), "published": (1, 2), "unknown": (1, 1)}
FAMILY_MARKERS = {"traditional": "o", "learned": "s", "published": "x", "unknown": "^"}
FORMATS = ("png", "svg")
LOW_RATE = 0.1  # below this target or lowest rate, the bpp axis is logarithmic by default


@dataclass(frozen=True)
class Plot:
    """One written figure: the metric it shows and its files by format."""

    metric: str
    title: str
    files: dict[str, Path]


def curve_frame(board: pd.DataFrame, families: Mapping[str, str]) -> pd.DataFrame:
    """A leaderboard with ``family`` and ``curve`` columns, sorted by curve and bpp for drawing."""
    frame = board.copy()
    frame["family"] = frame["codec"].map(lambda c: families.get(c, "unknown"))
    if "curve" not in frame.columns:
        frame["curve"] = frame["codec"]
    return frame.sort_values(["curve", "bpp"]).reset_index(drop=True)


def codec_colors(codecs: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per curve label (sorted), so a curve keeps its colour in every plot."""
    import seaborn as sns

    names = sorted(set(codecs))
    return dict(zip(names, sns.color_palette(n_colors=len(names))))


def wants_log_bpp(bpp: Iterable[float], target: float | None = None) -> bool:
    """The default bpp axis: logarithmic when the target or the lowest rate is below 0.1 bpp."""
    rates = [b for b in bpp if b > 0 and math.isfinite(b)]
    return (target is not None and target < LOW_RATE) or (bool(rates) and min(rates) < LOW_RATE)


def bpp_limits(bpp: Iterable[float], log: bool) -> tuple[float, float]:
    """Axis limits from the lowest to the highest rate, with a small margin."""
    rates = [b for b in bpp if b > 0 and math.isfinite(b)]
    low, high = min(rates), max(rates)
    if log:
        return low / 1.12, high * 1.12
    margin = 0.03 * (high - low or high)
    return max(0.0, low - margin), high + margin


def plot_curve(frame: pd.DataFrame, metric: str, label: str, out_stem: Path,
               title: str = "", formats: Sequence[str] = FORMATS,
               colors: Mapping[str, tuple[float, float, float]] | None = None, *,
               log_bpp: bool = False, bpp_range: tuple[float, float] | None = None,
               target: float | None = None) -> dict[str, Path]:
    """Draw bpp against ``metric``, one line per curve, and write ``out_stem.<format>`` files.

    ``colors`` maps curve labels to colours (default: :func:`codec_colors` of the curves drawn);
    ``bpp_range`` fixes the x axis (default: the rates drawn); ``target`` is marked with a line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    frame = frame if "curve" in frame.columns else frame.assign(curve=frame["codec"])
    data = frame[frame[metric].notna() & frame["bpp"].notna() & (frame["bpp"] > 0)]
    colors = colors or codec_colors(data["curve"])
    plt.style.use("seaborn-v0_8-whitegrid")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, curve in data.groupby("curve", sort=True):
        curve = curve.sort_values("bpp")
        family = str(curve["family"].iloc[0]) if "family" in curve.columns else "unknown"
        ax.plot(curve["bpp"], curve[metric], label=str(name), color=colors[name], linewidth=1.6,
                marker=FAMILY_MARKERS.get(family, "^"), markersize=5,
                dashes=FAMILY_DASHES.get(family, (1, 1)))
    if log_bpp:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    if bpp_range or not data.empty:
        ax.set_xlim(*(bpp_range or bpp_limits(data["bpp"], log_bpp)))
    if target is not None:
        ax.axvline(target, color="0.45", linewidth=0.9, linestyle=":", zorder=0)
    ax.set_xlabel("bits per pixel (bpp, log scale)" if log_bpp else "bits per pixel (bpp)")
    ax.set_ylabel(label)
    if title:
        ax.set_title(title)
    if not data.empty:
        ax.legend(fontsize="small", frameon=True)
    fig.tight_layout()
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    files = {}
    for fmt in formats:
        path = out_stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=110 if fmt == "png" else None)
        files[fmt] = path
    plt.close(fig)
    return files


def plot_all(board: pd.DataFrame, families: Mapping[str, str], out_dir: Path,
             dataset: str = "", *, columns: Mapping[str, Column] | None = None,
             log_bpp: bool | None = None, target: float | None = None) -> list[Plot]:
    """Every RD / rate-perception plot for which ``board`` has values, written into ``out_dir``.

    ``columns``: the metric columns that may be plotted, in order, with their axis labels
    (default: every registered metric's; those with ``plotted`` false are left out).
    ``log_bpp``: a logarithmic bpp axis (default: :func:`wants_log_bpp`). Every plot's bpp axis
    spans the rates of all curves, from the lowest any of them reaches.
    """
    frame = curve_frame(board, families)
    rates = frame.loc[frame["bpp"] > 0, "bpp"] if "bpp" in frame.columns else pd.Series(dtype=float)
    if rates.empty:
        return []
    log_bpp = wants_log_bpp(rates, target) if log_bpp is None else log_bpp
    bpp_range = bpp_limits(rates, log_bpp)
    colors = codec_colors(frame["curve"])
    plots = []
    columns = registered_columns() if columns is None else columns
    for metric, column in columns.items():
        if not column.plotted or metric not in frame.columns or frame[metric].notna().sum() == 0:
            continue
        title = f"{dataset}: bpp vs {column.label}" if dataset else ""
        files = plot_curve(frame, metric, column.axis_label(), out_dir / f"rd-{metric}", title, colors=colors,
                           log_bpp=log_bpp, bpp_range=bpp_range, target=target)
        plots.append(Plot(metric, title or metric, files))
    return plots
