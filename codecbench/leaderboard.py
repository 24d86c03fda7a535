"""Leaderboards: the one place where per-image rows are aggregated."""

from __future__ import annotations

import pandas as pd

KEYS = ["dataset", "codec", "codec_version", "point", "config"]
ROW_COLUMNS = {
    "id", "dataset", "image", "codec", "codec_version", "point", "config", "status", "error",
    "height", "width", "nbytes", "bpp", "encode_s", "decode_s", "attempts", "run_id",
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
    return float(stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / n**0.5)


def leaderboard(
    rows: pd.DataFrame, set_values: pd.DataFrame | None = None, confidence: float | None = None
) -> pd.DataFrame:
    """Mean bpp, metrics and timings per (dataset, codec, version, point, config).

    Means are over the images whose row succeeded (``n``); ``failed`` counts the others.
    Per-image PSNR is averaged as CompressAI does. Dataset-level metrics are joined as they are.
    With ``confidence`` (e.g. 0.95), each mean column ``c`` gets a ``c-ci`` column: the half-width
    of its Student-t confidence interval over the images.
    """
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
    board = board.reset_index()
    if set_values is not None and not set_values.empty:
        board = board.merge(set_values, on=KEYS, how="left")
    return board.sort_values(["dataset", "codec", "bpp", "point"]).reset_index(drop=True)
