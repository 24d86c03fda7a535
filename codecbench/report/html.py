"""The HTML report: one self-contained folder (index.html, plots/, crops/) from the results store.

Everything comes from stored rows: the leaderboard and its confidence intervals, the Bjontegaard
table, the curves, and crops decoded from the stored bitstreams with the codec from the registry
(nothing is re-encoded). The page is rendered with Jinja2 and needs no network.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from codecbench.bjontegaard import bd_table, default_anchor
from codecbench.codec import Codec, format_point
from codecbench.compare import closest_below, summarize
from codecbench.dataset import ImageRef
from codecbench.errors import CodecbenchError
from codecbench.image import read_image
from codecbench.leaderboard import KEYS, leaderboard, metric_columns
from codecbench.plots import plot_all
from codecbench.results import ResultStore

TEMPLATES = Path(__file__).parent / "templates"
SHOWN = ("bpp", "psnr", "ms-ssim", "ms-ssim-db", "lpips", "lpips-vgg", "st-lpips", "fid", "kid",
         "encode_s", "decode_s")
FID_NOTE = ("FID/KID are computed on 256x256 patches (a grid plus a grid shifted by 128 px) of the "
            "reconstructions against the originals, as HiFiC does. A small dataset gives few patches, "
            "so these values are noisy and biased upwards; compare codecs on the same dataset only.")


def complete_points(rows: pd.DataFrame, board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard rows measured on every image of the dataset, with each metric mean kept only
    where that metric was computed on every image.

    ``codecbench compare`` stores its bisection probes for single images (and computes metrics only
    at the chosen points), so their means cover other images than the sweep's; a curve or BD-rate
    mixing them would compare different image sets.
    """
    n_images = rows["image"].nunique()
    ok = rows[rows["status"] == "ok"]
    counts = ok.groupby(KEYS, dropna=False)[metric_columns(rows)].count().reset_index()
    complete = board[board["n"] == n_images].merge(counts, on=KEYS, how="left", suffixes=("", "#count"))
    for column in metric_columns(rows):
        partial = complete[f"{column}#count"] < n_images
        complete.loc[partial, [c for c in (column, f"{column}-ci") if c in complete.columns]] = math.nan
    return complete.drop(columns=[c for c in complete.columns if c.endswith("#count")]).reset_index(drop=True)


@dataclass
class Tile:
    src: str
    label: str
    caption: str = ""


def _number(value: object, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (float, np.floating)):
        if math.isinf(value):
            return "inf"
        return f"{value:.{digits}f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def html_table(frame: pd.DataFrame, columns: Sequence[str], text: Sequence[str] = ()) -> str:
    """``frame[columns]`` as an HTML table, each ``c`` shown with its ``c-ci`` half-width if any."""
    if frame.empty:
        return '<p class="note">(no rows)</p>'
    from markupsafe import escape

    head = "".join(f'<th class="{"text" if c in text else ""}">{escape(c)}</th>' for c in columns)
    body = []
    for _, row in frame.iterrows():
        cells = []
        for column in columns:
            value = row.get(column)
            if column in text:
                cells.append(f'<td class="text">{escape(str(value))}</td>')
                continue
            cell = str(escape(_number(value)))
            ci = row.get(f"{column}-ci")
            if ci is not None and not (isinstance(ci, float) and math.isnan(ci)):
                cell += f' <span class="ci">&plusmn;{escape(_number(ci))}</span>'
            cells.append(f"<td>{cell}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` crop (the whole side where the image is smaller)."""
    height, width = image.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return image[top:top + size, left:left + size]


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, optimize=True)


def visual_comparison(store: ResultStore, rows: pd.DataFrame, codecs: Mapping[str, Codec],
                      images: Sequence[ImageRef], target: float, out: Path,
                      crop: int) -> list[dict[str, object]]:
    """Crops of each image: the original, then every codec at its stored point nearest ``target``."""
    chosen = closest_below(rows, target)
    visuals = []
    for ref in images:
        original = read_image(ref.path)
        stem = Path(ref.name).stem
        _save_png(center_crop(original, crop), out / "crops" / f"{stem}-original.png")
        tiles = [Tile(f"crops/{stem}-original.png", "original")]
        for row in chosen[chosen["image"] == ref.name].itertuples():
            codec = codecs.get(row.codec)
            if codec is None or codec.unavailable_reason():
                tiles.append(Tile("", row.codec, "codec not available here: not decoded"))
                continue
            stream = next((s for name, s in store.streams(row.dataset, row.codec, row.point)
                           if name == ref.name), None)
            if stream is None:
                continue
            codec.load()
            decoded = codec.decode(stream)
            name = f"crops/{stem}-{row.codec}.png"
            _save_png(center_crop(decoded, crop), out / name)
            psnr = getattr(row, "psnr", math.nan)
            caption = f"{row.bpp:.3f} bpp @ {format_point(row.point)}"
            caption += "" if math.isnan(psnr) else f", {psnr:.2f} dB"
            caption += " (above target)" if row.above_target else ""
            tiles.append(Tile(name, row.codec, caption))
        visuals.append({"image": ref.name, "tiles": [t for t in tiles if t.src]})
    return visuals


def build_report(store: ResultStore, out: Path, dataset: str, images: Sequence[ImageRef],
                 codecs: Mapping[str, Codec], *, target: float = 0.5, anchor: str | None = None,
                 n_visual: int = 3, crop: int = 192) -> Path:
    """Write ``out/index.html`` with its plots and crops; return the page's path."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    rows = store.frame(dataset)
    if rows.empty:
        raise CodecbenchError(f"No results for dataset {dataset!r} in {store.path}; run `codecbench run` first")
    set_values = store.set_frame(dataset)
    board = complete_points(rows, leaderboard(rows, set_values, confidence=0.95))
    names = sorted(rows["codec"].unique())
    families = {n: codecs[n].family for n in names if n in codecs}
    anchor = anchor or default_anchor(names)
    out.mkdir(parents=True, exist_ok=True)

    plots = plot_all(board, families, out / "plots", dataset)
    chosen = closest_below(rows, target).assign(family=lambda f: f["codec"].map(families))
    matched_keys = chosen[~chosen["above_target"]]
    matched, _ = summarize(rows, matched_keys[["codec", "family", "image", "point", "codec_version",
                                               "config"]], metric_columns(rows))
    unreachable = [
        {"codec": codec, "images": int(group["above_target"].sum()), "bpp": float(group["bpp"].mean())}
        for codec, group in chosen.groupby("codec") if group["above_target"].any()
    ]
    matched = matched[~matched["codec"].isin([u["codec"] for u in unreachable])]
    shown = [c for c in SHOWN if c in board.columns]
    bd = bd_table(board, anchor)
    runs = store.runs()
    environments = [json.dumps(json.loads(env), indent=2, sort_keys=True)
                    for env in runs["environment"].drop_duplicates().tail(3)] if not runs.empty else []
    by_name = {ref.name: ref for ref in images}
    visual_refs = [by_name[n] for n in sorted(set(rows["image"])) if n in by_name][:n_visual]

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    from markupsafe import Markup

    page = env.get_template("index.html.j2").render(
        dataset=dataset, codecs=names, n_images=rows["image"].nunique(), target=target,
        anchor=anchor if anchor in names else None,
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"), db_name=store.path.name,
        matched_table=Markup(html_table(matched, ["codec", "n"] + [c for c in shown if c in matched],
                                        text=["codec"])),
        unreachable=unreachable,
        bd_table=Markup(html_table(bd, list(bd.columns), text=["dataset", "codec", "anchor"])),
        plots=[{"png": p.files["png"].relative_to(out).as_posix(),
                "svg": p.files["svg"].relative_to(out).as_posix(), "title": p.title} for p in plots],
        fid_note=FID_NOTE if "fid" in board.columns else "",
        visuals=visual_comparison(store, rows, codecs, visual_refs, target, out, crop),
        crop=crop, crop_display=max(crop, 256),
        leaderboard=Markup(html_table(board, ["codec", "point", "n"] + shown, text=["codec"])),
        runs_table=Markup(html_table(runs.drop(columns=["environment"]).tail(20),
                                     ["started", "run_id", "command"],
                                     text=["started", "run_id", "command"])),
        environments=environments,
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
