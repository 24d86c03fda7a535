"""What the report shows from the stored rows: curves, the image set, points and rate-matched rows.

A *curve* is one (codec, codec version, configuration): rows with other codec options are another
curve with its own label. Leaderboard points are the non-probe points measured on every usable
image (an image is usable when some codec succeeded on it); ``compare``'s search probes are never
points. Rate matching picks, per curve and image, the stored row closest to the target from below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from codecbench.leaderboard import (
    DEFAULT_TOLERANCE, KEYS, closest_below, curve_label, match_label, metric_columns, summarize,
    without_probes,
)

CURVE_KEYS = ["codec", "codec_version", "config"]

__all__ = ["curve_labels", "leaderboard_rows", "rate_match", "with_curves"]


def report_metrics(rows: pd.DataFrame) -> list[str]:
    """The metric columns of ``rows``, without the report's own ``curve`` column."""
    return [c for c in metric_columns(rows) if c != "curve"]


def curve_labels(rows: pd.DataFrame,
                 defaults: Mapping[str, Mapping[str, object]] | None = None) -> dict[tuple[str, str, str], str]:
    """A distinct label for every (codec, codec_version, config) in ``rows``.

    :func:`~codecbench.leaderboard.curve_label` names the options that differ from the codec's
    ``defaults`` (``bpg[chroma=420,encoder=jctvc]``; every option of a codec not installed here);
    where two versions share a label, each gets its version.
    """
    defaults = defaults or {}
    identities = sorted(set(zip(rows["codec"].astype(str), rows["codec_version"].astype(str),
                                rows["config"].astype(str))))
    labels = {}
    for codec, version, config in identities:
        try:
            labels[(codec, version, config)] = curve_label(codec, config, defaults.get(codec, {}))
        except (TypeError, ValueError):  # a config that is not a JSON object
            labels[(codec, version, config)] = f"{codec}[{config}]"
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    return {key: f"{label} (version {key[1]})" if counts[label] > 1 else label
            for key, label in labels.items()}


def with_curves(frame: pd.DataFrame, labels: Mapping[tuple[str, str, str], str]) -> pd.DataFrame:
    """``frame`` with a ``curve`` column from :func:`curve_labels`."""
    keys = zip(frame["codec"].astype(str), frame["codec_version"].astype(str), frame["config"].astype(str))
    return frame.assign(curve=[labels.get(k, k[0]) for k in keys])


def leaderboard_rows(rows: pd.DataFrame, set_values: pd.DataFrame | None = None) -> pd.DataFrame:
    """``rows`` less ``compare``'s search probes: those the store flags ``probe``
    (:func:`~codecbench.leaderboard.without_probes`), and the points where no row has any metric
    value and no dataset-level value is stored (probes are encoded without metrics: so they look
    in a store written before the flag)."""
    rows = without_probes(rows)
    metrics = report_metrics(rows)
    ok = rows["status"] == "ok"
    bare = ok & (~rows[metrics].notna().any(axis=1) if metrics else True)
    keys = [rows[k] for k in KEYS]
    only_bare = (bare | ~ok).groupby(keys, dropna=False).transform("all") & bare.groupby(keys, dropna=False).transform("any")
    if set_values is not None and not set_values.empty:
        measured = set(map(tuple, set_values[KEYS].astype(str).to_numpy()))
        has_set = pd.Series([tuple(map(str, k)) in measured for k in rows[KEYS].to_numpy()], index=rows.index)
        only_bare &= ~has_set
    return rows[~only_bare]


def usable_images(rows: pd.DataFrame) -> list[str]:
    """Images on which at least one row succeeded (the report's image set)."""
    return sorted(rows.loc[rows["status"] == "ok", "image"].unique())


def failed_images(rows: pd.DataFrame) -> dict[str, str]:
    """Images on which every row failed, with the first error."""
    failed = rows[~rows["image"].isin(set(usable_images(rows)))].sort_values("image")
    return {str(image): str(group["error"].dropna().iloc[0]) if group["error"].notna().any() else "failed"
            for image, group in failed.groupby("image", sort=True)}


def incomplete_notes(rows: pd.DataFrame, board: pd.DataFrame, n_images: int) -> list[str]:
    """One line per curve with points left out because they miss some of the ``n_images`` images."""
    notes = []
    for curve, group in board[board["n"] < n_images].groupby("curve", sort=True):
        failed = rows[(rows["curve"] == curve) & (rows["status"] != "ok")].sort_values("image")
        where = ""
        if not failed.empty:
            where = (f"; failed on {', '.join(sorted(failed['image'].unique())[:5])}: "
                     f"{failed['error'].iloc[0]}")
        notes.append(f"{curve}: {len(group)} point(s) measured on fewer than {n_images} images "
                     f"(n = {', '.join(str(int(n)) for n in sorted(set(group['n'])))}), left out of "
                     f"curves, BD-rates and the leaderboard{where}")
    return notes


@dataclass
class RateMatch:
    """The rate-matched table (one row per curve, ``match`` saying how its points sit against the
    target, as ``codecbench compare`` says it), the chosen rows (with ``curve`` and
    ``above_target``), and notes on curves left out (no metrics at their matched points)."""

    table: pd.DataFrame
    chosen: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def rate_match(rows: pd.DataFrame, target: float, families: Mapping[str, str],
               set_values: pd.DataFrame | None = None,
               tolerance: float = DEFAULT_TOLERANCE) -> RateMatch:
    """Per curve and image, the stored ``ok`` row with the largest bpp not above ``target`` (the
    lowest-rate row where none is), averaged per curve; ``rows`` has a ``curve`` column.

    A curve whose mean bpp is over the target by at most ``tolerance`` (relative) counts as at the
    target, flagged; curves at the target come first. Dataset-level metrics (FID/KID) are shown
    where every image's match is the same stored point with stored values.
    """
    metrics = report_metrics(rows)
    chosen = closest_below(rows, target)
    chosen["family"] = chosen["codec"].map(lambda c: families.get(c, "unknown"))
    keys = ["codec", "family", "image", "point", "codec_version", "config"]
    table, _ = summarize(rows, chosen[keys], metrics)
    if table.empty:
        return RateMatch(pd.DataFrame(columns=["curve", "n", "match", "bpp"]), chosen)
    table = with_curves(table, dict(zip(map(tuple, rows[CURVE_KEYS].astype(str).to_numpy()), rows["curve"])))
    over = chosen.groupby("curve")["above_target"].sum()
    table["images_over"] = table["curve"].map(over).fillna(0).astype(int)
    table["over_target"] = table["bpp"] / target - 1
    table["at_target"] = (table["images_over"] == 0) | (table["over_target"] <= tolerance)
    table["match"] = [match_label(int(r.images_over), int(r.n), float(r.over_target), tolerance)
                      for r in table.itertuples()]
    table = _with_set_values(table, chosen, set_values)
    measured = [c for c in metrics if c in table.columns]
    bare = table[~table[measured].notna().any(axis=1)] if measured else table
    notes = [f"{curve}: no metric stored at its matched points (search probes only); run "
             f"`codecbench compare --bpp {target:g} -c {codec}` to measure them"
             for curve, codec in zip(bare["curve"], bare["codec"])]
    table = table.drop(index=bare.index).sort_values(["at_target", "curve"], ascending=[False, True])
    return RateMatch(table.reset_index(drop=True), chosen, notes)


def _with_set_values(table: pd.DataFrame, chosen: pd.DataFrame,
                     set_values: pd.DataFrame | None) -> pd.DataFrame:
    """Add the stored dataset-level values (FID/KID, any set metric's) to the curves whose matched
    rows all share one stored point."""
    if set_values is None or set_values.empty:
        return table
    columns = [c for c in set_values.columns if c not in KEYS and c != "n_images"]
    values: dict[str, dict[str, float]] = {c: {} for c in columns}
    for curve, part in chosen.groupby("curve"):
        identity = part[["codec", "codec_version", "config", "point"]].drop_duplicates()
        if len(identity) != 1:
            continue
        codec, version, config, point = identity.iloc[0]
        match = set_values[(set_values["codec"] == codec) & (set_values["codec_version"] == version)
                           & (set_values["config"] == config) & np.isclose(set_values["point"], point)]
        if len(match) == 1:
            for column in columns:
                values[column][curve] = match[column].iloc[0]
    for column in columns:
        table[column] = table["curve"].map(values[column])
    return table


def select_codecs(rows: pd.DataFrame, names: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
    """``rows`` of the codecs in ``names`` (all when empty) and the names that have no rows."""
    if not names:
        return rows, []
    stored = set(rows["codec"])
    return rows[rows["codec"].isin(names)], [n for n in names if n not in stored]
