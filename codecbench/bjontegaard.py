"""Bjontegaard deltas (BD-rate, BD-quality) of every codec against an anchor, on every metric
column declared for them (:class:`~codecbench.metric.Column` ``bd``: PSNR, MS-SSIM dB, LPIPS, ...,
and any plugin metric's).

The interpolation and integration come from the ``bjontegaard`` package (FAU): piecewise cubic
Hermite interpolation (``pchip``) of log10(bpp) against quality, integrated over the quality range
where both curves have points, as in the common reference implementation. BD-rate is the average
bitrate change at equal quality in percent (negative: the codec needs fewer bits than the anchor);
BD-quality is the average quality change at equal rate, in the column's unit (positive is better
where higher is better). A column where lower is better (LPIPS) is negated for the fit, so that
quality rises with rate, and its BD-quality is given back in its own direction (negative: better).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from codecbench.metric import Column, registered_columns

METHOD = "pchip"
# Anchors preferred when present: HEVC intra (BPG or its HEIF wrapper), then JPEG.
ANCHOR_PREFERENCE = ("bpg", "hevc-heif", "jpeg")


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


def bd_reason(anchor_rate: Sequence[float], anchor_quality: Sequence[float],
              test_rate: Sequence[float], test_quality: Sequence[float], unit: str = "",
              higher_is_better: bool = True) -> str:
    """Why BD-rate or BD-quality of these curves is ``nan``, in words ("" when neither is).

    BD-rate needs overlapping quality ranges, BD-quality overlapping rate ranges, and both need two
    points per curve on which quality improves with rate (rises, or falls where lower is better).
    """
    if not np.isfinite(np.asarray(anchor_quality, float)).any():
        return "the anchor has no values"
    sign = 1.0 if higher_is_better else -1.0
    anchor = _curve(anchor_rate, sign * np.asarray(anchor_quality, float))
    test = _curve(test_rate, sign * np.asarray(test_quality, float))
    better = "rises" if higher_is_better else "falls"
    if anchor is None:
        return f"the anchor has fewer than 2 points where quality {better} with rate"
    if test is None:
        return f"fewer than 2 points where quality {better} with rate"
    suffix = f" {unit}" if unit else ""
    (a_rate, a_quality), (t_rate, t_quality) = anchor, test
    reasons = []
    if min(a_quality.max(), t_quality.max()) <= max(a_quality.min(), t_quality.min()):
        a_low, a_high = sorted(sign * a_quality[[0, -1]])
        t_low, t_high = sorted(sign * t_quality[[0, -1]])
        reasons.append(f"quality ranges do not overlap (anchor {a_low:.4g}-{a_high:.4g}{suffix}, "
                       f"this {t_low:.4g}-{t_high:.4g}{suffix})")
    if min(a_rate.max(), t_rate.max()) <= max(a_rate.min(), t_rate.min()):
        reasons.append(f"rate ranges do not overlap (anchor {a_rate.min():.4g}-{a_rate.max():.4g} bpp, "
                       f"this {t_rate.min():.4g}-{t_rate.max():.4g} bpp)")
    return "; ".join(reasons)


def default_anchor(codecs: Iterable[str]) -> str | None:
    """The preferred anchor among ``codecs``: HEVC intra when present, then JPEG, else the first."""
    names = list(codecs)
    for name in ANCHOR_PREFERENCE:
        if name in names:
            return name
    return sorted(names)[0] if names else None


def anchor_curve(curves: pd.DataFrame, anchor: str, by: str) -> str | None:
    """The curve (value of column ``by``) that ``anchor`` names: that curve itself, else the first
    curve (sorted) of the codec called ``anchor``."""
    labels = set(curves[by])
    if anchor in labels:
        return anchor
    of_codec = sorted(set(curves.loc[curves["codec"] == anchor, by]))
    return of_codec[0] if of_codec else None


def bd_qualities(board: pd.DataFrame, columns: Mapping[str, Column] | None = None) -> dict[str, Column]:
    """The columns of ``board`` that BD tables use (``bd`` declared), in the order of ``columns``
    (default: every registered metric's)."""
    columns = registered_columns() if columns is None else columns
    return {c: column for c, column in columns.items() if column.bd and c in board.columns}


def bd_table(board: pd.DataFrame, anchor: str | None = None,
             columns: Mapping[str, Column] | None = None, by: str = "codec") -> pd.DataFrame:
    """BD-rate and BD-quality of every curve against ``anchor``, one row per (dataset, curve).

    ``board`` is a leaderboard (mean ``bpp`` and quality per point); its column ``by`` tells curves
    apart (``codec``, or a label that also tells codec options apart), and ``anchor`` names a curve
    or a codec. ``columns`` declares the metric columns (default: every registered metric's); those
    with ``bd`` set that ``board`` has are used. Columns: ``bd-rate-<quality>`` (percent) and
    ``bd-<quality>`` (quality units) for each quality, and ``note``: why a value is ``nan`` ("" when
    none is).
    """
    qualities = bd_qualities(board, columns)
    columns = ["dataset", by, "anchor"] if by == "codec" else ["dataset", "codec", by, "anchor"]
    if board.empty:
        return pd.DataFrame(columns=columns)
    anchor = anchor or default_anchor(board["codec"].unique())
    rows = []
    for dataset, group in board.groupby("dataset", sort=True):
        reference_name = anchor_curve(group, anchor, by) if anchor else None
        if reference_name is None:
            continue
        reference = group[group[by] == reference_name]
        for name, curve in group.groupby(by, sort=True):
            if name == reference_name:
                continue
            row: dict[str, object] = {"dataset": dataset, "codec": curve["codec"].iloc[0], by: name,
                                      "anchor": reference_name}
            notes = []
            for quality, column in qualities.items():
                sign = 1.0 if column.higher_is_better else -1.0  # fitted with quality rising
                args = (reference["bpp"], sign * reference[quality], curve["bpp"], sign * curve[quality])
                row[f"bd-rate-{quality}"] = bd_rate(*args)
                row[f"bd-{quality}"] = sign * bd_quality(*args)
                if math.isnan(row[f"bd-rate-{quality}"]) or math.isnan(row[f"bd-{quality}"]):
                    reason = bd_reason(reference["bpp"], reference[quality], curve["bpp"], curve[quality],
                                       column.unit, column.higher_is_better)
                    notes.append(f"{column.label}: {reason or 'no overlap'}")
            row["note"] = "; ".join(notes)
            rows.append(row)
    return pd.DataFrame(rows, columns=columns + [
        f"{prefix}{q}" for q in qualities for prefix in ("bd-rate-", "bd-")] + ["note"])
