"""The HTML report: one self-contained folder (index.html, plots/, crops/) from the results store.

Everything comes from stored rows: the leaderboard and its confidence intervals, the Bjontegaard
table, the curves, and crops decoded from the stored bitstreams with the codec from the registry
configured as each row was (nothing is re-encoded). The page is rendered with Jinja2 and needs no
network. What the page leaves out (search probes, incomplete points, streams it cannot decode,
codecs without metrics) it names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from codecbench.bjontegaard import QUALITY_LABELS, bd_table, default_anchor
from codecbench.codec import Codec
from codecbench.compare import DEFAULT_TOLERANCE
from codecbench.dataset import ImageRef
from codecbench.errors import CodecbenchError
from codecbench.leaderboard import complete_points, leaderboard
from codecbench.plots import plot_all, wants_log_bpp
from codecbench.report.points import (
    curve_labels, failed_images, incomplete_notes, leaderboard_rows, rate_match, select_codecs,
    usable_images, with_curves,
)
from codecbench.report.visual import point_text, visual_comparison
from codecbench.results import ResultStore

TEMPLATES = Path(__file__).parent / "templates"
SHOWN = ("bpp", "psnr", "ms-ssim", "ms-ssim-db", "lpips", "lpips-vgg", "st-lpips", "fid", "kid",
         "encode_s", "decode_s")
HEADERS = {"curve": "codec", "match": "vs target", "note": "why a value is missing"}
WRAPPED = {"note", "command"}  # long text columns: wrapped, not one line
FID_NOTE = ("FID/KID are computed on 256x256 patches (a grid plus a grid shifted by 128 px) of the "
            "reconstructions against the originals, as HiFiC does. A small dataset gives few patches, "
            "so these values are noisy and biased upwards; compare codecs on the same dataset only.")

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
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def check_target(target: float) -> float:
    """``target`` if it is a usable bpp (finite and positive); else raise naming it."""
    if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
        raise CodecbenchError(f"Invalid target bpp {target!r}: expected a positive finite number "
                              "of bits per pixel, such as 0.03 or 0.5")
    return float(target)


def bd_section(board: pd.DataFrame, anchor: str | None) -> tuple[str, str]:
    """The BD table as HTML and a sentence saying why it is empty or has missing values."""
    curves = sorted(set(board["curve"])) if not board.empty else []
    if len(curves) < 2:
        return "", (f"No BD-rates: {len(curves)} curve(s) with complete points; BD-rates need an "
                    "anchor and at least one other curve, each with two points.")
    table = bd_table(board, anchor, by="curve")
    if table.empty:
        return "", (f"No BD-rates: the anchor {anchor!r} has no curve with points measured on every "
                    f"image here (curves: {', '.join(curves)}); choose one with --anchor.")
    qualities = [c[len("bd-rate-"):] for c in table.columns if c.startswith("bd-rate-")]
    headers = {}
    formats: dict[str, Callable[[object], str]] = {}
    for quality in qualities:
        name = QUALITY_LABELS.get(quality, quality)
        headers[f"bd-rate-{quality}"] = f"BD-rate ({name})"
        headers[f"bd-{quality}"] = f"BD-{name.removesuffix('-dB')} (dB)"
        formats[f"bd-rate-{quality}"], formats[f"bd-{quality}"] = _percent, _delta
    columns = ["curve", "anchor"] + [f"{p}{q}" for q in qualities for p in ("bd-rate-", "bd-")]
    why = ""
    if table["note"].astype(bool).any():
        columns.append("note")
        why = "A \"-\" is a value that cannot be computed; the last column says why."
    return html_table(table, columns, text=["curve", "anchor", "note"],
                      headers=headers, formats=formats), why


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
                 image_names: Sequence[str] | None = None) -> Path:
    """Write ``out/index.html`` with its plots and crops; return the page's path.

    ``codec_names`` limits the report to those codecs (names without stored rows are listed);
    ``log_bpp`` forces the bpp axis of the plots (default: logarithmic at low rates);
    ``image_names`` picks the images of the visual comparison (default: the first ``n_visual``);
    crops are ``crop`` pixels square at ``crop_at`` (x, y; default centred), enlarged ``zoom`` times.
    """
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    target = check_target(target)
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
    curves = sorted(set(rows["curve"]))
    anchor = anchor or default_anchor(board["codec"].unique() if not board.empty else rows["codec"].unique())
    log_bpp = wants_log_bpp(rows["bpp"].dropna(), target) if log_bpp is None else log_bpp
    out.mkdir(parents=True, exist_ok=True)

    title = Path(dataset.split(":", 1)[1]).name if dataset.startswith("folder:") else dataset
    plots = plot_all(board, families, out / "plots", title, log_bpp=log_bpp, target=target)
    match = rate_match(rows, target, families, set_values)
    bd_html, bd_why = bd_section(board, anchor)
    visual_refs = pick_images(images, sorted(set(rows["image"])), image_names, n_visual, dataset)
    visuals = visual_comparison(store, match.chosen, codecs, visual_refs, out, crop, zoom, crop_at)
    runs = store.runs()
    environments = [json.dumps(json.loads(env), indent=2, sort_keys=True)
                    for env in runs["environment"].drop_duplicates().tail(3)] if not runs.empty else []
    shown = [c for c in SHOWN if c in board.columns]
    matched_columns = ["curve", "n", "match"] + [c for c in SHOWN if c in match.table.columns]
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
        fid_note=FID_NOTE if "fid" in board.columns else "",
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
