"""Leaderboards: the one place where per-image rows are aggregated.

Besides the leaderboard itself (mean per codec point), this module holds the aggregations that
``codecbench compare`` and the report share: :func:`closest_below` (each image's stored point
closest to a target bpp), :func:`summarize` (means over such per-image choices),
:func:`complete_points` and :func:`mean_curve` (points measured on every image) and
:func:`interpolate_log_bpp` (a metric on a mean RD curve at an exact bpp).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

KEYS = ["dataset", "codec", "codec_version", "point", "config"]
CURVE_KEYS = ["codec", "codec_version", "config"]
ROW_COLUMNS = {
    "id", "dataset", "image", "codec", "codec_version", "point", "config", "status", "error",
    "height", "width", "nbytes", "bpp", "encode_s", "decode_s", "attempts", "run_id", "probe",
}


def metric_columns(rows: pd.DataFrame) -> list[str]:
    """The metric-value columns of a tidy frame from :meth:`ResultStore.frame`."""
    return sorted(c for c in rows.columns if c not in ROW_COLUMNS)


def confidence_halfwidth(values: pd.Series, level: float = 0.95) -> float:
    """Half-width of the Student-t confidence interval of the mean of ``values`` (NaN if n < 2)."""
    from scipy import stats

    values = values.dropna()
    n = len(values)
    if n < 2:
        return float("nan")
    with np.errstate(invalid="ignore"):  # inf - inf for lossless PSNR: NaN half-width
        return float(stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / n**0.5)


def without_probes(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` less the rate-search probes: rows flagged ``probe`` at a (codec, version, point,
    config) where every row is a probe. A point that a benchmark run also measured stays whole."""
    if "probe" not in rows.columns or rows.empty:
        return rows
    probe = rows["probe"].fillna(False).astype(bool)
    only_probes = probe.groupby([rows[k] for k in KEYS if k in rows.columns], dropna=False).transform("all")
    return rows[~only_probes]


def leaderboard(
    rows: pd.DataFrame, set_values: pd.DataFrame | None = None, confidence: float | None = None,
    *, probes: bool = False,
) -> pd.DataFrame:
    """Mean bpp, metrics and timings per (dataset, codec, version, point, config).

    Means are over the images whose row succeeded (``n``); ``failed`` counts the others.
    Per-image PSNR is averaged as CompressAI does. Dataset-level metrics are joined as they are.
    With ``confidence`` (e.g. 0.95), each mean column ``c`` gets a ``c-ci`` column: the half-width
    of its Student-t confidence interval over the images. Rate-search probes (see
    :func:`without_probes`) are left out unless ``probes`` is true; then a ``probe`` column says
    which points are probes only.
    """
    probe_points = None
    if probes and "probe" in rows.columns and not rows.empty:
        probe_points = rows.assign(probe=rows["probe"].fillna(False).astype(bool)).groupby(
            KEYS, dropna=False)["probe"].all()
    elif not probes:
        rows = without_probes(rows)
    if rows.empty:
        return pd.DataFrame(columns=KEYS + ["n", "failed", "bpp"])
    ok = rows[rows["status"] == "ok"]
    value_cols = ["bpp"] + metric_columns(rows) + [
        c for c in ("encode_s", "decode_s") if c in rows.columns
    ]
    means = ok.groupby(KEYS, dropna=False)[value_cols].mean()
    counts = rows.groupby(KEYS, dropna=False)["status"].agg(
        n=lambda s: int((s == "ok").sum()), failed=lambda s: int((s != "ok").sum())
    )
    board = counts.join(means)
    if confidence is not None:
        halfwidths = ok.groupby(KEYS, dropna=False)[value_cols].agg(
            lambda v: confidence_halfwidth(v, confidence))
        board = board.join(halfwidths.add_suffix("-ci"))
    if probe_points is not None:
        board = board.join(probe_points)
    board = board.reset_index()
    if set_values is not None and not set_values.empty:
        board = board.merge(set_values, on=KEYS, how="left")
    return board.sort_values(["dataset", "codec", "bpp", "point"]).reset_index(drop=True)


def complete_points(rows: pd.DataFrame, board: pd.DataFrame, n_images: int | None = None) -> pd.DataFrame:
    """The leaderboard rows measured on all ``n_images`` images (default: every image in ``rows``),
    with each metric mean kept only where that metric was computed on all of them.

    ``codecbench compare`` stores its bisection probes for single images (and computes metrics only
    at the chosen points), so their means cover other images than the sweep's; a curve or BD-rate
    mixing them would compare different image sets.
    """
    n_images = rows["image"].nunique() if n_images is None else n_images
    ok = rows[rows["status"] == "ok"]
    counts = ok.groupby(KEYS, dropna=False)[metric_columns(rows)].count().reset_index()
    complete = board[board["n"] == n_images].merge(counts, on=KEYS, how="left", suffixes=("", "#count"))
    for column in metric_columns(rows):
        partial = complete[f"{column}#count"] < n_images
        complete.loc[partial, [c for c in (column, f"{column}-ci") if c in complete.columns]] = math.nan
    return complete.drop(columns=[c for c in complete.columns if c.endswith("#count")]).reset_index(drop=True)


def closest_below(rows: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per (codec, version, config, image), the stored ``ok`` row with the largest bpp not above
    ``target``; where none is, the row with the lowest bpp (flagged ``above_target``).

    Uses stored rows only (probes included: they are real operating points).
    """
    ok = rows[rows["status"] == "ok"].copy()
    if ok.empty:
        return ok.assign(above_target=pd.Series(dtype=bool))
    ok["above_target"] = ok["bpp"] > target
    ok["rank"] = np.where(ok["above_target"], -ok["bpp"] - 1e9, ok["bpp"])
    # Points that give the same bytes tie on bpp; prefer the one with the most metrics computed
    # (the one ``compare`` chose and measured), not a bare bisection probe.
    ok["measured"] = ok[metric_columns(rows)].notna().sum(axis=1)
    groups = [k for k in ("codec", "codec_version", "config") if k in ok.columns] + ["image"]
    best = ok.sort_values(["rank", "measured"], kind="stable").groupby(groups, sort=True).tail(1)
    return best.drop(columns=["rank", "measured"]).sort_values(groups).reset_index(drop=True)


def summarize(rows: pd.DataFrame, matches: pd.DataFrame,
              columns: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean bpp and metrics (with 95% confidence half-widths) over the matched rows per curve.

    ``matches`` names one row per (codec, version, config, image) (``codec``, ``family``,
    ``image``, ``point``, ``codec_version``, ``config``). A metric computed on only some of the
    matched images gets no mean (NaN): it would compare different image sets. Returns the table
    (one row per codec, version and config) and the matched rows.
    """
    keys = ["codec", "image", "point", "codec_version", "config"]
    group = ["codec", "family", "codec_version", "config"]
    if matches.empty or rows.empty:
        return pd.DataFrame(columns=group + ["n", "bpp"]), matches
    matched = rows[rows["status"] == "ok"].merge(matches, on=keys, how="inner")
    values = ["bpp"] + [c for c in metric_columns(rows) if c in columns]
    grouped = matched.groupby(group, sort=True)
    table = grouped[values].mean()
    table.insert(0, "n", grouped.size())
    with np.errstate(invalid="ignore"):  # inf - inf for lossless PSNR: NaN half-width
        halfwidths = _halfwidths(grouped[values].std(ddof=1), grouped[values].count())
    for column in values:
        table[f"{column}-ci"] = halfwidths[column]
        partial = grouped[column].count() < table["n"]
        table.loc[partial, [column, f"{column}-ci"]] = np.nan
    return table.reset_index(), matched


def _halfwidths(std: pd.DataFrame, count: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """:func:`confidence_halfwidth` of many groups at once, from their standard deviations and
    counts (NaN where a count is below 2)."""
    from scipy import stats

    n = count.to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = stats.t.ppf(0.5 + level / 2, np.where(n >= 2, n - 1, np.nan))
        return pd.DataFrame(t * std.to_numpy(float) / np.sqrt(n), index=std.index, columns=std.columns)


def curve_label(codec: str, config: str | Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """``codec`` with the options that differ from its ``defaults``: ``bpg[chroma=420,encoder=jctvc]``.

    Results with different options are different RD curves; this names each one. ``config`` is a
    mapping or its JSON (as stored in results rows).
    """
    options = json.loads(config) if isinstance(config, str) else dict(config)
    changed = {k: v for k, v in sorted(options.items())
               if k not in defaults or str(defaults[k]) != str(v)}
    if not changed:
        return codec
    return f"{codec}[{','.join(f'{k}={v}' for k, v in changed.items())}]"


def mean_curve(rows: pd.DataFrame, images: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """One curve's mean RD points: per point measured ``ok`` on every image in ``images``, the mean
    bpp and the mean of each of ``columns`` (NaN where that column is missing on some image).

    ``rows`` are one curve's rows (one codec, version and config). Sorted by bpp.
    """
    wanted = set(images)
    ok = rows[(rows["status"] == "ok") & rows["image"].isin(wanted)]
    present = [c for c in columns if c in ok.columns]
    if ok.empty:
        return pd.DataFrame(columns=["point", "bpp", *present])
    grouped = ok.groupby("point")
    complete = grouped["image"].nunique() == len(wanted)
    curve = grouped[["bpp", *present]].mean()
    for column in present:
        curve.loc[grouped[column].count() < len(wanted), column] = np.nan
    return curve[complete].reset_index().sort_values(["bpp", "point"]).reset_index(drop=True)


def interpolate_log_bpp(bpp: Sequence[float], values: Sequence[float],
                        target: float) -> tuple[float, str | None]:
    """``values`` (a metric over a curve's points of mean ``bpp``) at exactly ``target`` bpp,
    piecewise linear in log(bpp) between the two neighbouring points; never extrapolated.

    Returns the value and ``None``, or NaN and why: no measured point, or the target outside the
    measured range (``below``/``above`` it, naming the end).
    """
    x, y = np.asarray(bpp, float), np.asarray(values, float)
    keep = ~np.isnan(x) & ~np.isnan(y) & (x > 0)
    if not keep.any():
        return math.nan, "no point measured on every image"
    # Points that give the same bpp (the same bytes) are one point of the curve.
    x, inverse = np.unique(x[keep], return_inverse=True)
    y = np.bincount(inverse, weights=y[keep]) / np.bincount(inverse)
    low, high = float(x[0]), float(x[-1])
    if target < low * (1 - 1e-12):
        return math.nan, f"{target:g} bpp is below the measured range (lowest mean point {low:.4g} bpp)"
    if target > high * (1 + 1e-12):
        return math.nan, f"{target:g} bpp is above the measured range (highest mean point {high:.4g} bpp)"
    return float(np.interp(math.log(target), np.log(x), y)), None


DEFAULT_TOLERANCE = 0.1  # a mean bpp up to 10% over the target counts as at the target (flagged)


def match_label(images_over: int, n: int, over: float, tolerance: float) -> str:
    """How a curve's matched points sit against the target: ``ok`` when every image is at or under
    it, else the mean's excess (``+7.7 %``) with ``(within tol.)`` or ``OVER``."""
    if n == 0:
        return "no result"
    if images_over == 0:
        return "ok"
    some = f", {images_over}/{n} img" if images_over < n else ""
    if over <= tolerance:
        return f"{over * 100:+.1f} % (within tol.{some})"
    return f"{over * 100:+.1f} % OVER{some}"
