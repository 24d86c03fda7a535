"""Bjontegaard deltas (BD-rate, BD-PSNR, BD-MS-SSIM-dB) of every codec against an anchor.

The interpolation and integration come from the ``bjontegaard`` package (FAU): piecewise cubic
Hermite interpolation (``pchip``) of log10(bpp) against quality, integrated over the quality range
where both curves have points, as in the common reference implementation. BD-rate is the average
bitrate change at equal quality in percent (negative: the codec needs fewer bits than the anchor);
BD-quality is the average quality change at equal rate (in dB for PSNR and MS-SSIM-dB).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

METHOD = "pchip"
# Anchors preferred when present: HEVC intra (BPG or its HEIF wrapper), then JPEG.
ANCHOR_PREFERENCE = ("bpg", "hevc-heif", "jpeg")
QUALITY_LABELS = {"psnr": "PSNR", "ms-ssim-db": "MS-SSIM-dB"}


def _curve(rate: Sequence[float], quality: Sequence[float]) -> tuple[np.ndarray, np.ndarray] | None:
    """Finite points with positive rate on which quality strictly rises with rate; None if < 2.

    The interpolation needs both axes strictly increasing, so a point that costs more bits than
    another for no better quality (a dominated operating point) is left out.
    """
    frame = pd.DataFrame({"rate": np.asarray(rate, float), "quality": np.asarray(quality, float)})
    frame = frame[np.isfinite(frame["rate"]) & np.isfinite(frame["quality"]) & (frame["rate"] > 0)]
    frame = frame.sort_values(["rate", "quality"], ascending=[True, False]).drop_duplicates("rate")
    frame = frame[frame["quality"] > frame["quality"].cummax().shift(fill_value=-math.inf)]
    if len(frame) < 2:
        return None
    return frame["rate"].to_numpy(), frame["quality"].to_numpy()


def bd_rate(anchor_rate: Sequence[float], anchor_quality: Sequence[float],
            test_rate: Sequence[float], test_quality: Sequence[float]) -> float:
    """Average rate difference (percent) of the test curve against the anchor at equal quality.

    ``nan`` when a curve has fewer than two usable points or the quality ranges do not overlap.
    """
    import bjontegaard

    anchor, test = _curve(anchor_rate, anchor_quality), _curve(test_rate, test_quality)
    if anchor is None or test is None:
        return math.nan
    with warnings.catch_warnings():  # low or no overlap: nan, or the overlap that exists
        warnings.simplefilter("ignore")
        return float(bjontegaard.bd_rate(*anchor, *test, method=METHOD,
                                         require_matching_points=False, min_overlap=0))


def bd_quality(anchor_rate: Sequence[float], anchor_quality: Sequence[float],
               test_rate: Sequence[float], test_quality: Sequence[float]) -> float:
    """Average quality difference of the test curve against the anchor at equal rate (BD-PSNR)."""
    import bjontegaard

    anchor, test = _curve(anchor_rate, anchor_quality), _curve(test_rate, test_quality)
    if anchor is None or test is None:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(bjontegaard.bd_psnr(*anchor, *test, method=METHOD,
                                         require_matching_points=False, min_overlap=0))


def default_anchor(codecs: Iterable[str]) -> str | None:
    """The preferred anchor among ``codecs``: HEVC intra when present, then JPEG, else the first."""
    names = list(codecs)
    for name in ANCHOR_PREFERENCE:
        if name in names:
            return name
    return sorted(names)[0] if names else None


def bd_table(board: pd.DataFrame, anchor: str | None = None,
             qualities: Sequence[str] = ("psnr", "ms-ssim-db")) -> pd.DataFrame:
    """BD-rate and BD-quality of every codec against ``anchor``, one row per (dataset, codec).

    ``board`` is a leaderboard (mean ``bpp`` and quality per codec point). Columns:
    ``bd-rate-<quality>`` (percent) and ``bd-<quality>`` (quality units) for each quality present.
    """
    columns = ["dataset", "codec", "anchor"]
    if board.empty:
        return pd.DataFrame(columns=columns)
    anchor = anchor or default_anchor(board["codec"].unique())
    qualities = [q for q in qualities if q in board.columns]
    rows = []
    for dataset, group in board.groupby("dataset", sort=True):
        reference = group[group["codec"] == anchor]
        if reference.empty:
            continue
        for codec, curve in group.groupby("codec", sort=True):
            if codec == anchor:
                continue
            row: dict[str, object] = {"dataset": dataset, "codec": codec, "anchor": anchor}
            for quality in qualities:
                args = (reference["bpp"], reference[quality], curve["bpp"], curve[quality])
                row[f"bd-rate-{quality}"] = bd_rate(*args)
                row[f"bd-{quality}"] = bd_quality(*args)
            rows.append(row)
    return pd.DataFrame(rows, columns=columns + [
        f"{prefix}{q}" for q in qualities for prefix in ("bd-rate-", "bd-")])
