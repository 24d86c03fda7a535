"""Rate-matched comparison: every requested codec curve at one target bpp, from the store first.

A *curve* is one codec with one version and one configuration (``bpg`` with ``encoder=jctvc`` is
another curve than ``bpg`` with its default x265); curves are never merged. For each curve the
comparison gives two answers, side by side:

* **Matched points**: per image, the stored operating point with the largest bpp not above the
  target, or, where the codec cannot get down to it, its lowest point; the means over those rows
  (bpp, metrics, 95% confidence half-widths) and how far the mean bpp is over the target. Within
  ``tolerance`` (relative) over the target a curve counts as at the target, flagged.
* **Interpolated**: each metric on the curve's mean RD curve (points measured on every image) at
  exactly the target, piecewise linear in log(bpp); NaN outside the measured range.

Work is done only where the store does not answer:

1. :func:`initial_searches` reads each image's bracket from the stored rows (the best point at or
   under the target and the next stored point over it);
2. :func:`probe_curve` bisects the knob between them where it has values in between (continuous
   knobs, or discrete points not stored yet), the first probes going to the points whose stored
   mean bpp is nearest the target. Probes go through the :class:`~codecbench.runner.Runner`
   without metrics, land in the store (flagged ``probe`` unless on a sweep point, so the
   leaderboard leaves them out) and are reused by every later comparison;
3. :func:`measure_points` computes the metrics still missing at the chosen points from the stored
   bitstreams (decoding only).

On a store that holds the answers, nothing is encoded or decoded.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from codecbench.codec import Codec, Point, format_point
from codecbench.dataset import Dataset, ImageRef
from codecbench.errors import CodecbenchError, StoreError
from codecbench.leaderboard import (  # noqa: F401  (closest_below and summarize: re-exported)
    DEFAULT_TOLERANCE,
    closest_below,
    curve_label,
    interpolate_log_bpp,
    match_label,
    mean_curve,
    summarize,
)
from codecbench.metrics import Metric
from codecbench.results import ResultStore, RowKey, config_json
from codecbench.runner import Failure, Runner, WorkUnit

FLOAT_STEPS = 12  # bisection resolution on a continuous float knob: range / 4096 (or 1% of the value)
HINT_PROBES = 2  # probes per image steered by other images' stored bpps before plain bisection
INTERP = "interp-"  # prefix of the interpolated columns


# -- curves ---------------------------------------------------------------------------------------


@dataclass
class Curve:
    """One codec at one version and configuration; ``unavailable`` says why it cannot run here
    (then only its stored rows answer)."""

    codec: Codec
    version: str
    config: str
    label: str
    unavailable: str | None = None

    @property
    def name(self) -> str:
        return self.codec.name

    @classmethod
    def of(cls, codec: Codec, label: str | None = None) -> "Curve":
        """The curve of ``codec`` as configured."""
        config = config_json(codec.config)
        return cls(codec, codec.version(), config,
                   label or curve_label(codec.name, config, codec.options),
                   codec.unavailable_reason())


def stored_curves(codec: Codec, rows: pd.DataFrame) -> list[Curve]:
    """Every configuration of ``codec`` stored in ``rows`` as a curve (the codec's own
    configuration when none is). An available codec's curves are at its current version; an
    unavailable one's at the version with most stored rows, since it cannot say its own."""
    reason = codec.unavailable_reason()
    current = None if reason else codec.version()
    mine = rows[(rows["codec"] == codec.name) & (rows["status"] == "ok")] if not rows.empty else rows
    if current is not None and not mine.empty:
        mine = mine[mine["codec_version"] == current]
    if mine.empty:
        return [Curve.of(codec)]
    curves = []
    for config, group in mine.groupby("config", sort=True):
        try:
            configured = codec.with_options(**json.loads(config))
        except (CodecbenchError, ValueError, TypeError):
            continue  # an option this codec no longer has: not its curve any more
        version = current or str(group["codec_version"].value_counts().index[0])
        curves.append(Curve(configured, version, config,
                            curve_label(codec.name, config, codec.options), reason))
    return curves or [Curve.of(codec)]


def default_codecs(registered: Sequence[Codec], stored: Sequence[str], domain: str, *,
                  every: bool = False) -> tuple[list[Codec], list[str]]:
    """The codecs to compare when none is named, and a note for each group left out.

    By default the codecs with stored results (``stored`` names) that are registered here; with
    ``every``, every registered codec that is available. Either way, codecs made for another
    ``domain`` (face models on a photo dataset) are left out: name them to include them.
    """
    notes = []
    by_name = {c.name: c for c in registered}
    if every:
        chosen = [c for c in registered if not c.unavailable_reason()]
    else:
        chosen = [by_name[n] for n in sorted(set(stored)) if n in by_name]
        missing = sorted(set(stored) - set(by_name))
        if missing:
            notes.append(f"stored but not installed here, left out: {', '.join(missing)}")
    other = [c for c in chosen if c.domain != domain]
    if other:
        domains = sorted({c.domain for c in other})
        notes.append(f"{'/'.join(domains)} codecs left out on a {domain} dataset: "
                     f"{', '.join(c.name for c in other)} (name them with -c to include them)")
    return [c for c in chosen if c.domain == domain], notes


# -- searching the knob ---------------------------------------------------------------------------


class Knob:
    """The values a codec's quality knob can take, and the bisection step between two of them."""

    def __init__(self, codec: Codec):
        self.codec = codec
        if codec.point_range is not None:
            self.low, self.high = codec.point_range
            self.values: list[Point] | None = None
        else:
            self.values = sorted(codec.points)
            if not self.values:
                raise CodecbenchError(f"Codec {codec.name!r} has no operating points to search")
            self.low, self.high = self.values[0], self.values[-1]
        self.resolution = (self.high - self.low) / 2**FLOAT_STEPS

    def resolution_at(self, low: Point, high: Point) -> float:
        """When a continuous float knob's interval is resolved: 1/4096 of its range, or 1% of the
        value where that is finer (a knob that is itself a rate, like JPEG 2000's, needs it at low
        rates), but never below 1/2**20 of the range."""
        span = self.high - self.low
        return max(span / 2**20, min(self.resolution, 0.01 * max(abs(low), abs(high))))

    def inside(self, point: Point, below: Point | None, above: Point | None) -> bool:
        """Whether ``point`` lies strictly between ``below`` and ``above`` (``None``: open end)."""
        return (below is None or point > below) and (above is None or point < above)

    def candidates(self, below: Point | None, above: Point | None) -> float:
        """How many knob values lie strictly between ``below`` and ``above`` (an estimate for a
        continuous float knob)."""
        if self.values is not None:
            return sum(self.inside(v, below, above) for v in self.values)
        low = self.low if below is None else below
        high = self.high if above is None else above
        if self.codec.integer_points:
            return max(0, math.floor(high - (above is not None)) - math.ceil(low + (below is not None)) + 1)
        return max(0.0, (high - low) / self.resolution_at(low, high) - 1 + (below is None) + (above is None))

    def middle(self, below: Point | None, above: Point | None) -> Point | None:
        """The knob value halving the open interval (``below``, ``above``), or ``None`` when no
        value lies in it (the image's search is over)."""
        if self.values is not None:
            inside = [v for v in self.values if self.inside(v, below, above)]
            return self.codec.validate_point(inside[(len(inside) - 1) // 2]) if inside else None
        if self.codec.integer_points:
            low = math.ceil(self.low) if below is None else int(below) + 1
            high = math.floor(self.high) if above is None else math.ceil(above) - 1
            return self.codec.validate_point((low + high) // 2) if low <= high else None
        if (below is None and above is not None and above <= self.low) or (
                above is None and below is not None and below >= self.high):
            return None
        low = self.low if below is None else below
        high = self.high if above is None else above
        if high - low <= self.resolution_at(low, high):
            # The interval is resolved, except an end of the knob that was never probed.
            if below is None:
                return self.codec.validate_point(self.low)
            if above is None:
                return self.codec.validate_point(self.high)
            return None
        middle = float(f"{(low + high) / 2:.6g}")
        if not low < middle < high:
            middle = (low + high) / 2
        return self.codec.validate_point(middle)

    def steps(self, below: Point | None, above: Point | None) -> int:
        """About how many bisection steps resolve (``below``, ``above``)."""
        count = self.candidates(below, above)
        return math.ceil(math.log2(count + 1)) if count > 0 else 0


@dataclass
class Search:
    """One image's bracket: ``below`` is the highest point known at or under the target, ``above``
    the lowest point known over it (and above ``below``)."""

    image: ImageRef
    below: Point | None = None
    above: Point | None = None
    probes: int = 0
    error: str | None = None

    def add(self, point: Point, bpp: float, target: float) -> None:
        if bpp <= target:
            if self.below is None or point > self.below:
                self.below = point
                if self.above is not None and self.above <= point:
                    self.above = None  # bpp is not monotonic here; search above the new point
        elif (self.below is None or point > self.below) and (self.above is None or point < self.above):
            self.above = point


def initial_searches(rows: pd.DataFrame, images: Sequence[ImageRef], target: float) -> list[Search]:
    """Each image's bracket from one curve's stored ``ok`` rows (points in increasing order)."""
    searches = {ref.name: Search(ref) for ref in images}
    ok = rows[rows["status"] == "ok"].sort_values("point") if not rows.empty else rows
    for row in ok.itertuples():
        if row.image in searches:
            searches[row.image].add(row.point, row.bpp, target)
    return list(searches.values())


def _hint(knob: Knob, hints: pd.Series, search: Search, target: float) -> Point | None:
    """The stored point (by mean bpp over the images that have it) nearest the target inside the
    image's bracket: where to probe first, rather than the middle of the knob."""
    if search.probes >= HINT_PROBES or hints.empty:
        return None
    inside = hints[[knob.inside(p, search.below, search.above) for p in hints.index]]
    inside = inside[inside > 0]
    if inside.empty:
        return None
    return knob.codec.validate_point(float((np.log(inside) - math.log(target)).abs().idxmin()))


def _next_point(knob: Knob, hints: pd.Series, search: Search, target: float) -> Point:
    hint = _hint(knob, hints, search, target)
    middle = knob.middle(search.below, search.above) if hint is None else hint
    assert middle is not None, "only searches with an open bracket are probed"
    return middle


def _key(curve: Curve, dataset: Dataset, image: ImageRef, point: Point) -> RowKey:
    return RowKey(dataset.name, image.name, curve.name, curve.version, float(point), curve.config)


def probe_curve(store: ResultStore, curve: Curve, dataset: Dataset, images: Sequence[ImageRef],
                rows: pd.DataFrame, target: float, *, progress: bool = False,
                command: str = "") -> tuple[int, list[Failure]]:
    """Bisect ``curve``'s knob where the stored ``rows`` leave an image's bracket open.

    All images advance one probe per round, as one batch through a Runner (no metrics). Returns
    the number of probes and the failures; the probes are in the store.
    """
    knob = Knob(curve.codec)
    searches = initial_searches(rows, images, target)
    ok = rows[rows["status"] == "ok"] if not rows.empty else rows
    hints = ok.groupby("point")["bpp"].mean() if not ok.empty else pd.Series(dtype=float)
    sweep = {float(p) for p in curve.codec.points}
    active = [s for s in searches if knob.middle(s.below, s.above) is not None]
    if not active:
        return 0, []
    failures: list[Failure] = []
    bar = tqdm(total=sum(knob.steps(s.below, s.above) for s in active), unit="probe",
               desc=f"{curve.label}: searching {target:g} bpp on {len(active)} image(s)",
               disable=not progress, file=sys.stderr, leave=False)

    def advanced(unit: WorkUnit, outcome: str) -> None:
        bar.set_postfix_str(f"{unit.image.name} @ {format_point(unit.point)}", refresh=False)
        bar.update(1)

    runner = Runner(store, [], progress=False, on_unit=advanced)
    try:
        while active:
            step = [(s, _next_point(knob, hints, s, target)) for s in active]
            units = [WorkUnit(curve.codec, point, s.image, _key(curve, dataset, s.image, point))
                     for s, point in step]
            with store.probing():  # probes stay probes while the search reads them back
                failures.extend(runner.run(units, command=command).failures)
            store.mark_probes([u.key for u in units if u.key.point not in sweep])
            for (search, point), unit in zip(step, units):
                search.probes += 1
                stored = store.get(unit.key)
                if stored is None or stored.status != "ok" or stored.bpp is None:
                    search.error = stored.error if stored is not None else "not stored"
                else:
                    search.add(point, stored.bpp, target)
            active = [s for s in active if s.error is None and knob.middle(s.below, s.above) is not None]
            bar.total = bar.n + sum(knob.steps(s.below, s.above) for s in active)
            bar.refresh()
    finally:
        bar.close()
    return sum(s.probes for s in searches), failures


def measure_points(store: ResultStore, curve: Curve, dataset: Dataset, images: Sequence[ImageRef],
                   chosen: pd.DataFrame, metrics: Sequence[Metric], *, progress: bool = False,
                   command: str = "") -> tuple[int, list[Failure]]:
    """Compute the per-image metrics missing at the ``chosen`` rows (from their stored
    bitstreams; nothing is encoded). Returns how many rows it measured, and the failures."""
    columns = [c for m in metrics if m.kind == "image" for c in m.columns]
    if chosen.empty or not columns:
        return 0, []
    present = chosen.reindex(columns=columns)
    todo = chosen[present.isna().any(axis=1)]
    if todo.empty or curve.unavailable:
        return 0, []
    refs = {ref.name: ref for ref in images}
    units = [WorkUnit(curve.codec, curve.codec.validate_point(row.point), refs[row.image],
                      _key(curve, dataset, refs[row.image], row.point))
             for row in todo.itertuples() if row.image in refs]
    bar = tqdm(total=len(units), unit="image", desc=f"{curve.label}: metrics at the chosen points",
               disable=not progress, file=sys.stderr, leave=False)

    def advanced(unit: WorkUnit, outcome: str) -> None:
        bar.set_postfix_str(f"{unit.image.name} @ {format_point(unit.point)}", refresh=False)
        bar.update(1)

    try:
        image_metrics = [m for m in metrics if m.kind == "image"]
        with store.probing():  # measuring a probe at the target keeps it a probe
            return len(units), Runner(store, image_metrics, progress=False, on_unit=advanced).run(
                units, command=command).failures
    finally:
        bar.close()


# -- the comparison -------------------------------------------------------------------------------


@dataclass
class Comparison:
    """The outcome of :func:`rate_matched`.

    ``table``: one row per curve (``codec``, ``curve`` label, ``family``, ``codec_version``,
    ``config``, ``n`` images, mean ``bpp`` and metrics of the matched points with ``-ci`` 95%
    confidence half-widths, ``images_over`` (images whose chosen point is over the target),
    ``over_target`` (mean bpp / target - 1), ``at_target``, ``match`` (that as text), then the
    ``interp-`` columns: each metric on the mean RD curve at exactly the target, and
    ``interp-note`` saying why one is NaN). ``matches``: the chosen row of every (curve, image).
    ``notes``: one line per thing the table cannot show.
    """

    target: float
    tolerance: float
    table: pd.DataFrame
    matches: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def unreachable(self) -> pd.DataFrame:
        """The curves not at the target (beyond the tolerance): ``codec``, ``curve``,
        ``images_above_target`` and ``lowest_bpp`` (the mean bpp of their matched points)."""
        if self.table.empty:
            return pd.DataFrame(columns=["codec", "curve", "images_above_target", "lowest_bpp"])
        over = self.table[~self.table["at_target"].astype(bool)]
        return pd.DataFrame({"codec": over["codec"], "curve": over["curve"],
                             "images_above_target": over["images_over"],
                             "lowest_bpp": over["bpp"]}).reset_index(drop=True)


def _curve_rows(rows: pd.DataFrame, curve: Curve, images: Sequence[ImageRef]) -> pd.DataFrame:
    """``curve``'s rows on ``images``."""
    if rows.empty:
        return rows
    names = {ref.name for ref in images}
    return rows[(rows["codec"] == curve.name) & (rows["codec_version"] == curve.version)
                & (rows["config"] == curve.config) & rows["image"].isin(names)]


def _by_curve(rows: pd.DataFrame, images: Sequence[ImageRef]) -> dict[tuple, pd.DataFrame]:
    """``rows`` on ``images`` split by (codec, version, config), in one pass."""
    if rows.empty:
        return {}
    rows = rows[rows["image"].isin({ref.name for ref in images})]
    return {key: group for key, group in rows.groupby(["codec", "codec_version", "config"], sort=False)}


def rate_matched(store: ResultStore, codecs: Sequence[Codec | Curve], dataset: Dataset,
                 images: Sequence[ImageRef], target: float, metrics: Sequence[Metric], *,
                 tolerance: float = DEFAULT_TOLERANCE, probe: bool = True, progress: bool = False,
                 command: str = "") -> Comparison:
    """Every curve of ``codecs`` (a codec stands for its own configuration) at ``target`` bpp.

    With ``probe`` false, only stored rows answer (nothing is encoded).
    """
    if not target > 0:
        raise CodecbenchError(f"Target bpp must be positive, got {target}")
    if not tolerance >= 0:
        raise CodecbenchError(f"Tolerance must be 0 or more (a fraction, e.g. 0.1), got {tolerance}")
    curves = [c if isinstance(c, Curve) else Curve.of(c) for c in codecs]
    image_columns = [c for m in metrics if m.kind == "image" for c in m.columns]
    notes: list[str] = []
    failures: list[Failure] = []
    rows = store.frame(dataset.name, sorted({c.name for c in curves}))
    stored, empty = _by_curve(rows, images), rows.iloc[:0]
    per_curve = []
    for curve in curves:
        mine = stored.get((curve.name, curve.version, curve.config), empty)
        work = 0
        if probe and not curve.unavailable:
            work, found = probe_curve(store, curve, dataset, images, mine, target,
                                      progress=progress, command=command)
            if found:
                failures.extend(found)
                notes.append(f"{curve.label}: {len(found)} probe(s) failed; those images keep "
                             f"their best stored point")
            if work:
                mine = _curve_rows(store.frame(dataset.name, [curve.name]), curve, images)
        elif curve.unavailable:
            notes.append(f"{curve.label}: unavailable here ({curve.unavailable.split('. ')[0]}); "
                         f"stored points only")
        chosen = closest_below(mine, target)
        measured, found = measure_points(store, curve, dataset, images, chosen, metrics,
                                         progress=progress, command=command)
        failures.extend(found)
        if measured:
            mine = _curve_rows(store.frame(dataset.name, [curve.name]), curve, images)
            chosen = closest_below(mine, target)
        per_curve.append((curve, mine, chosen))
    table, matches = _table(per_curve, images, target, tolerance, image_columns)
    set_metrics = [m for m in metrics if m.kind == "set"]
    if set_metrics:
        table = _set_metrics(table, matches, set_metrics, store, per_curve, dataset, images, target,
                             failures, notes)
    for row in table.to_dict("records"):
        if isinstance(row.get("interp-note"), str):
            notes.append(f"{row['curve']}: no interpolated values: {row['interp-note']} "
                         "(never extrapolated)")
    return Comparison(target, tolerance, table, matches, notes, failures)


def _table(per_curve: list[tuple[Curve, pd.DataFrame, pd.DataFrame]], images: Sequence[ImageRef],
           target: float, tolerance: float, columns: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per curve: matched means and their distance to the target, then interpolated."""
    image_names = [ref.name for ref in images]
    records, matches = [], []
    identity = ["codec", "codec_version", "config"]
    all_keys = [chosen.assign(family=curve.codec.family, curve=curve.label)[
        ["codec", "family", "image", "point", "codec_version", "config", "above_target", "curve"]]
        for curve, _, chosen in per_curve]
    all_rows = [rows for _, rows, _ in per_curve if not rows.empty]
    summary, matched = summarize(pd.concat(all_rows) if all_rows else per_curve[0][1],
                                 pd.concat(all_keys).drop(columns=["above_target", "curve"]), columns) \
        if per_curve else (pd.DataFrame(), pd.DataFrame())
    summary = summary.set_index(identity) if not summary.empty else summary
    for (curve, rows, chosen), keys in zip(per_curve, all_keys):
        record: dict[str, object] = {
            "codec": curve.name, "curve": curve.label, "family": curve.codec.family,
            "codec_version": curve.version, "config": curve.config, "n": 0, "bpp": math.nan,
        }
        if not summary.empty and (curve.name, curve.version, curve.config) in summary.index:
            record.update(summary.loc[(curve.name, curve.version, curve.config)].drop("family").to_dict())
        images_over = int(keys["above_target"].sum())
        over = float(record["bpp"]) / target - 1 if record["n"] else math.nan
        record.update(images_over=images_over, over_target=over if images_over else math.nan,
                      at_target=bool(record["n"]) and (images_over == 0 or over <= tolerance),
                      match=match_label(images_over, int(record["n"]), over, tolerance))
        curve_points = mean_curve(rows, image_names, columns)
        reasons = set()
        for column in columns:
            if column not in curve_points.columns:
                record[INTERP + column] = math.nan
                continue
            value, why = interpolate_log_bpp(curve_points["bpp"], curve_points[column], target)
            record[INTERP + column] = value
            if why:
                reasons.add(why)
        record["interp-note"] = "; ".join(sorted(reasons)) if reasons else None
        records.append(record)
    if not matched.empty:
        keys = pd.concat(all_keys)[[*identity, "image", "above_target", "curve"]]
        matches.append(matched.merge(keys, on=[*identity, "image"], how="left"))
    table = pd.DataFrame(records)
    ci = [c for c in table.columns if c.endswith("-ci")]
    means = [c for c in table.columns if c not in ci and c in ("bpp", *columns)]
    interp = [c for c in table.columns if c.startswith(INTERP)]
    order = ["codec", "curve", "family", "codec_version", "config", "n", *means, *ci,
             "images_over", "over_target", "at_target", "match", *interp]
    table = table[[c for c in order if c in table.columns]] if records else table
    return table, (pd.concat(matches, ignore_index=True) if matches else pd.DataFrame(
        columns=["codec", "curve", "image", "point", "bpp", "above_target"]))


def _set_metrics(table: pd.DataFrame, matches: pd.DataFrame, metrics: Sequence[Metric],
                 store: ResultStore, per_curve: list[tuple[Curve, pd.DataFrame, pd.DataFrame]],
                 dataset: Dataset,
                 images: Sequence[ImageRef], target: float, failures: list[Failure],
                 notes: list[str]) -> pd.DataFrame:
    """Dataset-level metrics: stored values where every image matched one stored point, else
    computed over the matched reconstructions (decoded from the stored bitstreams); interpolated
    from the stored values at points computed over as many images as compared."""
    stored = store.set_frame(dataset.name, with_counts=True)
    curves = [curve for curve, _, _ in per_curve]
    points = {curve.label: mean_curve(rows, [r.name for r in images], []) for curve, rows, _ in per_curve}
    for metric in metrics:
        for column in metric.columns:
            table[column] = math.nan
            table[INTERP + column] = math.nan
        for index, curve in enumerate(curves):
            mine = matches[matches["curve"] == curve.label] if not matches.empty else matches
            values = _matched_set_values(metric, mine, stored, curve, store, dataset, images,
                                         failures, notes)
            curve_values = _stored_set_values(stored, curve, len(images))
            merged = points[curve.label].merge(curve_values, on="point", how="inner")
            for column in metric.columns:
                table.loc[index, column] = values.get(column, math.nan)
                if column in merged.columns:
                    value, _ = interpolate_log_bpp(merged["bpp"], merged[column], target)
                    table.loc[index, INTERP + column] = value
    return table


def _stored_set_values(stored: pd.DataFrame, curve: Curve, n_images: int) -> pd.DataFrame:
    if stored.empty:
        return pd.DataFrame(columns=["point"])
    return stored[(stored["codec"] == curve.name) & (stored["codec_version"] == curve.version)
                  & (stored["config"] == curve.config) & (stored["n_images"] == n_images)]


def _matched_set_values(metric: Metric, matched: pd.DataFrame, stored: pd.DataFrame, curve: Curve,
                        store: ResultStore, dataset: Dataset, images: Sequence[ImageRef],
                        failures: list[Failure], notes: list[str]) -> dict[str, float]:
    if matched.empty or len(matched) < len(images):
        return {}
    if matched["point"].nunique() == 1:
        found = _stored_set_values(stored, curve, len(images))
        found = found[found["point"] == matched["point"].iloc[0]]
        if not found.empty and all(c in found.columns for c in metric.columns):
            return {c: float(found[c].iloc[0]) for c in metric.columns}
    # Values over a per-image mix of points are stored under a digest of that mix (and of the
    # images' content), so a later compare with the same matches answers without decoding.
    key = RowKey(dataset.name, "", curve.name, curve.version, math.nan, curve.config)
    chosen = sorted(f"{row.image}@{float(row.point)!r}" for row in matched.itertuples())
    contents = {ref.name: ref.sha256() for ref in images}
    selection = hashlib.sha256("\n".join(f"{c}:{contents[c.rsplit('@', 1)[0]]}" for c in chosen)
                               .encode()).hexdigest()
    cached = store.get_matched_set_metrics(key, selection)
    if all(c in cached for c in metric.columns):
        return {c: cached[c] for c in metric.columns}
    if curve.unavailable:
        notes.append(f"{curve.label}: {metric.name} not computed (codec unavailable here)")
        return {}
    from codecbench.executors import GuardedDecodeError, decode_guarded
    from codecbench.image import read_image

    refs = {ref.name: ref for ref in images}

    def pairs():
        for row in matched.itertuples():
            original = read_image(refs[row.image].path)
            stored_row = store.get(RowKey(dataset.name, row.image, curve.name, curve.version,
                                          float(row.point), curve.config))
            try:
                yield original, decode_guarded(curve.codec, stored_row.stream or b"", original.shape)
            except GuardedDecodeError as exc:
                raise GuardedDecodeError(f"{row.image}: {exc}") from None

    try:
        values = dict(metric.compute_set(pairs()))
    except Exception as exc:
        failures.append(Failure(curve.name, math.nan, "(dataset)", f"{metric.name}: {exc}"))
        return {}
    try:
        store.put_matched_set_metrics(key, selection, values)
    except StoreError as exc:  # a read-only store still answers; it only cannot remember
        notes.append(f"{curve.label}: {metric.name} not stored ({exc})")
    return values
