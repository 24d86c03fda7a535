"""Rate-distortion and rate-perception plots with seaborn, one line per codec, PNG and SVG.

Lines are styled by codec ``family`` (solid for traditional, dashed for learned codecs), never by a
list of codec names; colour tells codecs apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# (column, axis label, higher is better)
CURVES: tuple[tuple[str, str, bool], ...] = (
    ("psnr", "PSNR (dB)", True),
    ("ms-ssim-db", "MS-SSIM (dB)", True),
    ("lpips", "LPIPS (lower is better)", False),
    ("lpips-vgg", "LPIPS-VGG (lower is better)", False),
    ("st-lpips", "ST-LPIPS (lower is better)", False),
    ("fid", "FID on 256x256 patches (lower is better)", False),
    ("kid", "KID on 256x256 patches (lower is better)", False),
)
FAMILY_DASHES = {"traditional": "", "learned": (4, 2), "unknown": (1, 1)}
FAMILY_MARKERS = {"traditional": "o", "learned": "s", "unknown": "^"}
FORMATS = ("png", "svg")


@dataclass(frozen=True)
class Plot:
    """One written figure: the metric it shows and its files by format."""

    metric: str
    title: str
    files: dict[str, Path]


def curve_frame(board: pd.DataFrame, families: Mapping[str, str]) -> pd.DataFrame:
    """A leaderboard with a ``family`` column, sorted by codec and bpp for line drawing."""
    frame = board.copy()
    frame["family"] = frame["codec"].map(lambda c: families.get(c, "unknown"))
    return frame.sort_values(["codec", "bpp"]).reset_index(drop=True)


def codec_colors(codecs: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per codec (sorted by name), so a codec keeps its colour in every plot."""
    import seaborn as sns

    names = sorted(set(codecs))
    return dict(zip(names, sns.color_palette(n_colors=len(names))))


def plot_curve(frame: pd.DataFrame, metric: str, label: str, out_stem: Path,
               title: str = "", formats: Sequence[str] = FORMATS,
               colors: Mapping[str, tuple[float, float, float]] | None = None) -> dict[str, Path]:
    """Draw bpp against ``metric``, one line per codec, and write ``out_stem.<format>`` files.

    ``colors`` maps codec names to colours (default: :func:`codec_colors` of the codecs drawn).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = frame[frame[metric].notna() & frame["bpp"].notna()]
    families = sorted(data["family"].unique())
    colors = colors or codec_colors(data["codec"])
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    sns.lineplot(
        data=data, x="bpp", y=metric, hue="codec", style="family", sort=False, ax=ax,
        palette={c: colors[c] for c in data["codec"].unique()},
        units="codec", estimator=None, markers={f: FAMILY_MARKERS.get(f, "^") for f in families},
        dashes={f: FAMILY_DASHES.get(f, (1, 1)) for f in families},
    )
    ax.set_xlabel("bits per pixel (bpp)")
    ax.set_ylabel(label)
    if title:
        ax.set_title(title)
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
             dataset: str = "") -> list[Plot]:
    """Every RD / rate-perception plot for which ``board`` has values, written into ``out_dir``."""
    frame = curve_frame(board, families)
    colors = codec_colors(frame["codec"])
    plots = []
    for metric, label, _ in CURVES:
        if metric not in frame.columns or frame[metric].notna().sum() == 0:
            continue
        title = f"{dataset}: bpp vs {label.split(' (')[0]}" if dataset else ""
        files = plot_curve(frame, metric, label, out_dir / f"rd-{metric}", title, colors=colors)
        plots.append(Plot(metric, title or metric, files))
    return plots
