"""The HTML report: one self-contained folder (index.html, plots/, crops/) from the results store.

Everything comes from stored rows: the leaderboard and its confidence intervals, the Bjontegaard
table, the curves, and crops decoded from the stored bitstreams with the codec from the registry
configured as each row was (nothing is re-encoded). Which metric columns are tabled, plotted and
BD-rated, with which labels, and the notes under the plots come from the metrics' declarations
(:mod:`codecbench.metric`), so a plugin's metric appears like a built-in one. Published curves
(:mod:`codecbench.published`) join the plots and the BD table, labelled as published. The page is
rendered with Jinja2 and needs no network. What the page leaves out (search probes, incomplete
points, streams it cannot decode, codecs without metrics) it names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from codecbench.bjontegaard import bd_qualities, bd_table, default_anchor
from codecbench.codec import Codec
from codecbench.dataset import ImageRef
from codecbench.errors import CodecbenchError
from codecbench.leaderboard import DEFAULT_TOLERANCE, complete_points, leaderboard, metric_columns
from codecbench.metric import Column, Metric, describe_columns
from codecbench.plots import plot_all, wants_log_bpp
from codecbench.published import PublishedCurve, read_published
from codecbench.report.points import (
    curve_labels, failed_images, incomplete_notes, leaderboard_rows, rate_match, select_codecs,
    usable_images, with_curves,
)
from codecbench.report.checkpoints import Checkpoints
from codecbench.report.visual import point_text, visual_comparison
from codecbench.results import ResultStore

TEMPLATES = Path(__file__).parent / "templates"
TIMES = ("encode_s", "decode_s")
HEADERS = {"curve": "codec", "match": "vs target", "note": "why a value is missing"}
WRAPPED = {"note", "command"}  # long text columns: wrapped, not one line

__all__ = ["build_report", "check_target", "complete_points", "html_table"]


def _number(value: object, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (float, np.floating)):
        if math.isinf(value):
            return "inf"
        return f"{value:.{digits}f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def _percent(value: object) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:+.2f}%"


def _delta(value: object) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:+.3f}"


def html_table(frame: pd.DataFrame, columns: Sequence[str], text: Sequence[str] = (),
               headers: Mapping[str, str] | None = None,
               formats: Mapping[str, Callable[[object], str]] | None = None) -> str:
    """``frame[columns]`` as an HTML table, each ``c`` shown with its ``c-ci`` half-width if any.

    ``headers`` renames columns on the page; ``formats`` formats a column's values (default: four
    decimals below 10, two above, ``-`` for a missing value).
    """
    from markupsafe import escape

    if frame.empty:
        return '<p class="note">(no rows)</p>'
    headers, formats = {**HEADERS, **(headers or {})}, formats or {}
    head = "".join(f'<th class="{"text" if c in text else ""}">{escape(headers.get(c, c))}</th>'
                   for c in columns)
    body = []
    for _, row in frame.iterrows():
        cells = []
        for column in columns:
            value = row.get(column)
            if column in text:
                wrap = " wrap" if column in WRAPPED else ""
                cells.append(f'<td class="text{wrap}">{escape(str(value))}</td>')
                continue
            cell = str(escape(formats.get(column, _number)(value)))
            ci = row.get(f"{column}-ci")
            if ci is not None and not (isinstance(ci, float) and math.isnan(ci)):
                cell += f' <span class="ci">&plusmn;{escape(_number(ci))}</span>'
            cells.append(f"<td>{cell}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<div class="table"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def check_target(target: float) -> float:
    """``target`` if it is a usable bpp (finite and positive); else raise naming it."""
    if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
        raise CodecbenchError(f"Invalid target bpp {target!r}: expected a positive finite number "
                              "of bits per pixel, such as 0.03 or 0.5")
    return float(target)


def report_columns(metrics: Mapping[str, Metric], rows: pd.DataFrame) -> dict[str, Column]:
    """The metric columns the report shows, in order, with their declarations: those of
    ``metrics``, then any stored column no installed metric declares (tabled and plotted under
    its id, not BD-rated: its direction is unknown here)."""
    columns = describe_columns(metrics.values())
    undeclared = [c for c in metric_columns(rows) if c not in columns and c != "curve"]
    return {**columns, **{c: Column(c, bd=False) for c in undeclared}}


def bd_section(board: pd.DataFrame, anchor: str | None,
               columns: Mapping[str, Column]) -> tuple[str, str]:
    """The BD table as HTML and a sentence saying why it is empty or has missing values."""
    curves = sorted(set(board["curve"])) if not board.empty else []
    qualities = bd_qualities(board, columns)
    if len(curves) < 2:
        return "", (f"No BD-rates: {len(curves)} curve(s) with complete points; BD-rates need an "
                    "anchor and at least one other curve, each with two points.")
    if not qualities:
        declared = [column.label for column in columns.values() if column.bd]
        return "", ("No BD-rates: no metric that BD tables use was measured here at the complete "
                    f"points ({', '.join(declared) or 'none declared'}).")
    table = bd_table(board, anchor, qualities, by="curve")
    if table.empty:
        return "", (f"No BD-rates: the anchor {anchor!r} has no curve with points measured on every "
                    f"image here (curves: {', '.join(curves)}); choose one with --anchor.")
    headers = {}
    formats: dict[str, Callable[[object], str]] = {}
    for quality, column in qualities.items():
        unit = f" ({column.unit})" if column.unit else ""
        headers[f"bd-rate-{quality}"] = f"BD-rate ({column.label})"
        headers[f"bd-{quality}"] = f"BD-{column.label}{unit}"
        formats[f"bd-rate-{quality}"], formats[f"bd-{quality}"] = _percent, _delta
    shown = ["curve", "anchor"] + [f"{p}{q}" for q in qualities for p in ("bd-rate-", "bd-")]
    why = ""
    if table["note"].astype(bool).any():
        shown.append("note")
        missing = table[shown[2:-1]].isna().all(axis=None)
        why = ("Every value is \"-\": none can be computed; the last column says why for each curve."
               if missing else "A \"-\" is a value that cannot be computed; the last column says why.")
    return html_table(table, shown, text=["curve", "anchor", "note"],
                      headers=headers, formats=formats), why


def metric_notes(metrics: Mapping[str, Metric], board: pd.DataFrame, rows: pd.DataFrame) -> list[str]:
    """What each metric shown says about its values on these images (:meth:`Metric.note`)."""
    sizes = [(int(h), int(w)) for h, w in rows.loc[rows["status"] == "ok"].drop_duplicates("image")[
        ["height", "width"]].dropna().to_numpy()]
    notes = []
    for metric in metrics.values():
        if any(c in board.columns and board[c].notna().any() for c in metric.columns):
            note = metric.note(sizes)
            if note:
                notes.append(note)
    return notes


def published_curves(anchor: str | None, files: Sequence[str | Path]) -> tuple[str | None, list[PublishedCurve]]:
    """The BD anchor and the published curves: those of ``files``, and ``anchor`` itself when it
    names a file (then the anchor is that curve's label)."""
    curves = [read_published(f) for f in files]
    if anchor and Path(anchor).is_file():
        curve = read_published(anchor)
        curves = [c for c in curves if c.source.resolve() != curve.source.resolve()] + [curve]
        anchor = curve.label
    return anchor, curves


def pick_images(images: Sequence[ImageRef], stored: Sequence[str], names: Sequence[str] | None,
                count: int, dataset: str) -> list[ImageRef]:
    """The images of the visual comparison: ``names`` (file names or stems), else the first
    ``count`` of the ``stored`` image names."""
    by_name = {ref.name: ref for ref in images}
    by_stem = {Path(ref.name).stem: ref for ref in images}
    if not names:
        return [by_name[n] for n in stored if n in by_name][:count]
    unknown = [n for n in names if n not in by_name and n not in by_stem]
    if unknown:
        raise CodecbenchError(f"Images not in dataset {dataset!r}: {', '.join(unknown)}")
    return [by_name.get(n) or by_stem[n] for n in names]


def build_report(store: ResultStore, out: Path, dataset: str, images: Sequence[ImageRef],
                 codecs: Mapping[str, Codec], *, target: float = 0.5, anchor: str | None = None,
                 n_visual: int = 3, crop: int = 192, zoom: int = 2,
                 codec_names: Sequence[str] | None = None, log_bpp: bool | None = None,
                 crop_at: tuple[int, int] | None = None,
                 image_names: Sequence[str] | None = None,
                 metrics: Mapping[str, Metric] | None = None,
                 published: Sequence[str | Path] = (), weights: Sequence[Path] = ()) -> Path:
    """Write ``out/index.html`` with its plots and crops; return the page's path.

    ``codec_names`` limits the report to those codecs (names without stored rows are listed);
    ``log_bpp`` forces the bpp axis of the plots (default: logarithmic at low rates);
    ``image_names`` picks the images of the visual comparison (default: the first ``n_visual``);
    crops are ``crop`` pixels square at ``crop_at`` (x, y; default centred), enlarged ``zoom`` times.
    ``metrics`` declares the metric columns (default: the registered metrics); ``published``
    files (:func:`~codecbench.published.read_published`) add published curves to the plots and the
    BD table, and an ``anchor`` that names such a file makes its curve the BD anchor. Streams of
    a user's checkpoints decode with the files recorded for them, found by sha256 at their
    recorded path, as given, or among ``weights``; a checkpoint found nowhere is named.
    """
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    from codecbench import plugins

    target = check_target(target)
    metrics = plugins.metrics().items if metrics is None else metrics
    anchor, curves_published = published_curves(anchor, published)
    rows, missing = select_codecs(store.frame(dataset), codec_names)
    if rows.empty:
        wanted = f" for codecs {', '.join(codec_names)}" if codec_names else ""
        raise CodecbenchError(f"No results for dataset {dataset!r}{wanted} in {store.path}; "
                              "run `codecbench run` first")
    excluded = failed_images(rows)
    labels = curve_labels(rows, {name: codec.options for name, codec in codecs.items()})
    rows = with_curves(rows[rows["image"].isin(usable_images(rows))], labels)
    n_images = rows["image"].nunique()
    set_values = store.set_frame(dataset)
    points = leaderboard_rows(rows.drop(columns=["curve"]), set_values)
    all_points = with_curves(leaderboard(points, set_values, confidence=0.95), labels)
    board = complete_points(points, all_points, n_images)
    families = {n: codecs[n].family for n in set(rows["codec"]) if n in codecs}
    families.update({c.label: "published" for c in curves_published})
    columns = report_columns(metrics, rows)
    curves = sorted(set(rows["curve"]))
    anchor = anchor or default_anchor(board["codec"].unique() if not board.empty else rows["codec"].unique())
    log_bpp = wants_log_bpp(rows["bpp"].dropna(), target) if log_bpp is None else log_bpp
    out.mkdir(parents=True, exist_ok=True)

    title = Path(dataset.split(":", 1)[1]).name if dataset.startswith("folder:") else dataset
    with_published = pd.concat([board, *(c.rows(dataset) for c in curves_published)], ignore_index=True)
    plots = plot_all(with_published, families, out / "plots", title, columns=columns,
                     log_bpp=log_bpp, target=target)
    match = rate_match(rows, target, families, set_values)
    bd_html, bd_why = bd_section(with_published, anchor, columns)
    visual_refs = pick_images(images, sorted(set(rows["image"])), image_names, n_visual, dataset)
    checkpoints = Checkpoints(store.weights_files(dataset), weights)
    visuals = visual_comparison(store, match.chosen, codecs, visual_refs, out, crop, zoom, crop_at,
                                checkpoints)
    runs = store.runs()
    environments = [json.dumps(json.loads(env), indent=2, sort_keys=True)
                    for env in runs["environment"].drop_duplicates().tail(3)] if not runs.empty else []
    shown = [c for c in ["bpp", *columns, *TIMES] if c in board.columns]
    matched_columns = ["curve", "n", "match"] + [c for c in ["bpp", *columns, *TIMES]
                                                  if c in match.table.columns]
    formats = {"point": point_text}

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    page = env.get_template("index.html.j2").render(
        dataset=dataset, codecs=curves, n_images=n_images, target=target,
        missing=missing, excluded=excluded, incomplete=incomplete_notes(rows, all_points, n_images),
        anchor=anchor, generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        db_name=store.path.name, log_bpp=log_bpp,
        matched_table=Markup(html_table(match.table, matched_columns, text=["curve", "match"])),
        match_notes=match.notes, tolerance=f"{DEFAULT_TOLERANCE:.0%}",
        bd_table=Markup(bd_html), bd_why=bd_why,
        plots=[{"png": p.files["png"].relative_to(out).as_posix(),
                "svg": p.files["svg"].relative_to(out).as_posix(), "title": p.title} for p in plots],
        metric_notes=metric_notes(metrics, board, rows),
        published=[{"label": c.label, "source": c.source.name} for c in curves_published],
        anchor_published=any(c.label == anchor for c in curves_published),
        visuals=visuals.items, skipped=visuals.skipped, figure=visuals.figure,
        crop=crop, zoom=zoom, crop_display=crop * zoom,
        leaderboard=Markup(html_table(board, ["curve", "point", "n"] + shown, text=["curve"],
                                      formats=formats)),
        runs_table=Markup(html_table(runs.drop(columns=["environment"]).tail(20),
                                     ["started", "run_id", "command"],
                                     text=["started", "run_id", "command"])),
        environments=environments,
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
