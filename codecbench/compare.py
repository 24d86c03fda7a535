"""Rate-matched comparison: every codec at the operating point closest to a target bpp.

For each codec and image the search finds the point whose bpp is the largest not above the target,
assuming bpp grows with the point (the best probe is kept even where it does not). Codecs with a
continuous knob (``point_range``) are searched by bisection over it (integers for
``integer_points`` codecs); others by bisection over their listed points. Every probe goes through
the :class:`~codecbench.runner.Runner`, so it lands in the results store and a rerun reuses it;
probes are encoded without metrics, which are then computed for the chosen points only, from the
stored bitstreams.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from codecbench.codec import Codec, Point
from codecbench.dataset import Dataset, ImageRef
from codecbench.errors import CodecbenchError
from codecbench.leaderboard import confidence_halfwidth, metric_columns
from codecbench.metrics import Metric
from codecbench.results import ResultStore, RowKey, config_json
from codecbench.runner import Failure, Runner, WorkUnit

FLOAT_STEPS = 12  # bisection steps on a continuous float knob: range / 4096 resolution


class Knob:
    """The searchable values of a codec's quality knob, addressed by an index ``0..size-1``."""

    def __init__(self, codec: Codec):
        self.codec = codec
        if codec.point_range is not None and codec.integer_points:
            low, high = (int(v) for v in codec.point_range)
            self.values: Sequence[Point] = range(low, high + 1)
        elif codec.point_range is not None:
            low, high = codec.point_range
            self.values = np.linspace(low, high, 2**FLOAT_STEPS + 1).tolist()
        else:
            self.values = sorted(codec.points)
        if not len(self.values):
            raise CodecbenchError(f"Codec {codec.name!r} has no operating points to search")

    @property
    def size(self) -> int:
        return len(self.values)

    def point(self, index: int) -> Point:
        return self.codec.validate_point(self.values[index])


@dataclass
class Search:
    """Bisection state for one image: ``bpp(values[low]) <= target < bpp(values[high])``."""

    image: ImageRef
    low: int
    high: int
    probes: dict[Point, float] = field(default_factory=dict)
    failed: bool = False

    def best(self, target: float) -> tuple[Point, float] | None:
        """The probed point with the largest bpp not above ``target``, if any."""
        fitting = [(bpp, point) for point, bpp in self.probes.items() if bpp <= target]
        if not fitting:
            return None
        bpp, point = max(fitting)
        return point, bpp


@dataclass
class Comparison:
    """The outcome of :func:`rate_matched`.

    ``table``: one row per codec that reaches the target on every image (mean bpp and metrics,
    with ``-ci`` 95% confidence half-widths). ``unreachable``: codecs that cannot get down to the
    target on some image, with the mean and largest bpp of their lowest point. ``matches``: the
    chosen (codec, image, point, bpp) rows.
    """

    target: float
    table: pd.DataFrame
    unreachable: pd.DataFrame
    matches: pd.DataFrame
    failures: list[Failure] = field(default_factory=list)


def _unit(codec: Codec, dataset: Dataset, image: ImageRef, point: Point) -> WorkUnit:
    key = RowKey(dataset.name, image.name, codec.name, codec.version(), float(point),
                 config_json(codec.config))
    return WorkUnit(codec, point, image, key)


def _bpps(store: ResultStore, dataset: Dataset, codec: Codec) -> dict[tuple[str, float], float]:
    rows = store.frame(dataset.name, [codec.name])
    rows = rows[(rows["status"] == "ok") & (rows["codec_version"] == codec.version())
                & (rows["config"] == config_json(codec.config))]
    return {(r.image, float(r.point)): float(r.bpp) for r in rows.itertuples()}


def search_points(store: ResultStore, codec: Codec, dataset: Dataset, images: Sequence[ImageRef],
                  target: float, *, progress: bool = False,
                  command: str = "") -> tuple[list[Search], list[Failure]]:
    """Bisection over ``codec``'s knob for every image at once; probes go through a Runner."""
    knob = Knob(codec)
    runner = Runner(store, [], progress=False)
    bar = tqdm(desc=f"search {codec.name}", unit="step", disable=not progress, file=sys.stderr)
    searches = [Search(image, 0, knob.size - 1) for image in images]
    failures: list[Failure] = []

    def probe(pending: list[tuple[Search, int]]) -> None:
        units = [_unit(codec, dataset, s.image, knob.point(i)) for s, i in pending]
        failures.extend(runner.run(units, command=command).failures)
        bar.update()
        bpps = _bpps(store, dataset, codec)
        for (search, _), unit in zip(pending, units):
            bpp = bpps.get((search.image.name, float(unit.point)))
            if bpp is None:
                search.failed = True
            else:
                search.probes[unit.point] = bpp

    probe([(s, s.low) for s in searches] + [(s, s.high) for s in searches if s.high != s.low])
    active = []
    for s in searches:
        low_bpp = s.probes.get(knob.point(s.low))
        high_bpp = s.probes.get(knob.point(s.high))
        if not s.failed and low_bpp is not None and high_bpp is not None and low_bpp <= target < high_bpp:
            active.append(s)
    while active:
        middles = [(s, (s.low + s.high) // 2) for s in active if s.high - s.low > 1]
        if not middles:
            break
        probe(middles)
        for s, middle in middles:
            bpp = s.probes.get(knob.point(middle))
            if bpp is None:
                s.high = s.low  # a failed probe ends this image's search with what it has
            elif bpp <= target:
                s.low = middle
            else:
                s.high = middle
        active = [s for s in active if s.high - s.low > 1 and not s.failed]
    bar.close()
    return searches, failures


def rate_matched(store: ResultStore, codecs: Sequence[Codec], dataset: Dataset,
                 images: Sequence[ImageRef], target: float, metrics: Sequence[Metric], *,
                 progress: bool = False, command: str = "") -> Comparison:
    """Search every codec's point at ``target`` bpp per image, then measure the chosen points."""
    if not target > 0:
        raise CodecbenchError(f"Target bpp must be positive, got {target}")
    matches, unreachable, failures = [], [], []
    image_metrics = [m for m in metrics if m.kind == "image"]
    for codec in codecs:
        reason = codec.unavailable_reason()
        if reason:
            failures.append(Failure(codec.name, math.nan, "(all)", f"codec unavailable: {reason}"))
            continue
        searches, failed = search_points(store, codec, dataset, images, target,
                                         progress=progress, command=command)
        failures.extend(failed)
        knob = Knob(codec)
        chosen = [(s, s.best(target)) for s in searches if not s.failed]
        if any(best is None for _, best in chosen) or not chosen:
            lowest = [s.probes[knob.point(0)] for s in searches if knob.point(0) in s.probes]
            unreachable.append({
                "codec": codec.name, "family": codec.family,
                "images_above_target": sum(best is None for _, best in chosen),
                "lowest_bpp": float(np.mean(lowest)) if lowest else math.nan,
                "lowest_bpp_max": float(np.max(lowest)) if lowest else math.nan,
                "lowest_point": knob.point(0),
            })
            continue
        units = [_unit(codec, dataset, s.image, best[0]) for s, best in chosen if best]
        failures.extend(Runner(store, image_metrics, progress=progress)
                        .run(units, command=command).failures)
        matches += [{"codec": codec.name, "family": codec.family, "image": s.image.name,
                     "point": float(best[0]), "codec_version": codec.version(),
                     "config": config_json(codec.config)} for s, best in chosen if best]
    match_frame = pd.DataFrame(matches, columns=["codec", "family", "image", "point",
                                                 "codec_version", "config"])
    rows = store.frame(dataset.name, [c.name for c in codecs])
    columns = [c for m in image_metrics for c in m.columns]
    table, match_rows = summarize(rows, match_frame, columns)
    for metric in metrics:
        if metric.kind == "set" and not table.empty:
            table = _add_set_metric(table, metric, match_rows, store, codecs, dataset, images, failures)
    return Comparison(target, table, pd.DataFrame(unreachable), match_rows, failures)


def summarize(rows: pd.DataFrame, matches: pd.DataFrame,
              columns: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean bpp and metrics (with 95% confidence half-widths) over the matched rows per codec."""
    keys = ["codec", "image", "point", "codec_version", "config"]
    if matches.empty or rows.empty:
        return pd.DataFrame(columns=["codec", "n", "bpp"]), matches
    matched = rows[rows["status"] == "ok"].merge(matches, on=keys, how="inner")
    values = ["bpp"] + [c for c in metric_columns(rows) if c in columns]
    grouped = matched.groupby(["codec", "family"])
    table = grouped[values].mean()
    table.insert(0, "n", grouped.size())
    for column in values:
        table[f"{column}-ci"] = grouped[column].agg(confidence_halfwidth)
        # A mean over only some of the matched images would compare different image sets.
        partial = grouped[column].count() < table["n"]
        table.loc[partial, [column, f"{column}-ci"]] = np.nan
    return table.reset_index(), matched


def _add_set_metric(table: pd.DataFrame, metric: Metric, matched: pd.DataFrame, store: ResultStore,
                    codecs: Sequence[Codec], dataset: Dataset, images: Sequence[ImageRef],
                    failures: list[Failure]) -> pd.DataFrame:
    """Dataset-level metric values over each codec's matched reconstructions (not stored: the
    matched points differ per image, so they are no (codec, point) set of the results store)."""
    from codecbench.image import read_image
    from codecbench.runner import decode_checked

    paths = {ref.name: ref.path for ref in images}
    by_name = {c.name: c for c in codecs}
    values = {column: {} for column in metric.columns}
    for codec_name, group in matched.groupby("codec"):
        codec = by_name[codec_name]
        chosen = list(zip(group["image"], group["point"]))

        def pairs(codec: Codec = codec, chosen: list = chosen):
            for image, point in chosen:
                original = read_image(paths[image])
                stream = _stream(store, dataset.name, codec.name, image, point)
                yield original, decode_checked(codec, stream, original.shape)

        try:
            result = metric.compute_set(pairs())
        except Exception as exc:
            failures.append(Failure(codec_name, math.nan, "(dataset)", f"{metric.name}: {exc}"))
            continue
        for column, value in result.items():
            values[column][codec_name] = value
    for column, per_codec in values.items():
        table[column] = table["codec"].map(per_codec)
    return table


def _stream(store: ResultStore, dataset: str, codec: str, image: str, point: float) -> bytes:
    for name, stream in store.streams(dataset, codec, point):
        if name == image:
            return stream
    raise CodecbenchError(f"No stored bitstream for {codec} @ {point} on {image}")


def closest_below(rows: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per (codec, image), the stored ``ok`` row with the largest bpp not above ``target``; where
    none is, the row with the lowest bpp (flagged ``above_target``). Uses stored rows only."""
    ok = rows[rows["status"] == "ok"].copy()
    if ok.empty:
        return ok.assign(above_target=pd.Series(dtype=bool))
    ok["above_target"] = ok["bpp"] > target
    ok["rank"] = np.where(ok["above_target"], -ok["bpp"] - 1e9, ok["bpp"])
    # Points that give the same bytes tie on bpp; prefer the one with the most metrics computed
    # (the one ``compare`` chose and measured), not a bare bisection probe.
    ok["measured"] = ok[metric_columns(rows)].notna().sum(axis=1)
    best = ok.sort_values(["rank", "measured"], kind="stable").groupby(["codec", "image"], sort=True).tail(1)
    return best.drop(columns=["rank", "measured"]).sort_values(["codec", "image"]).reset_index(drop=True)
