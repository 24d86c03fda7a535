"""The visual comparison: the same crop of a few images decoded by every curve near the target rate.

Each crop is decoded from the stream stored with the chosen row, selected by the row's full
identity (dataset, image, codec, codec version, point, configuration), by the registered codec
configured with that row's options (a user's checkpoints found again by their recorded sha256,
:mod:`codecbench.report.checkpoints`), in a guarded worker process
(:func:`~codecbench.executors.decode_guarded`: a stream that crashes or hangs its decoder cannot
take the report down). A stream that cannot be decoded is skipped and named. Crops
are saved at their own resolution; the page enlarges them with ``image-rendering: pixelated`` and
``visual-comparison.png`` puts them side by side, enlarged by nearest-neighbour repetition.
"""

from __future__ import annotations

import logging
import math
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from codecbench.codec import Codec
from codecbench.dataset import ImageRef
from codecbench.errors import CodecbenchError, CodecUnavailableError
from codecbench.executors import GuardedDecodeError, decode_guarded
from codecbench.image import read_image
from codecbench.report.checkpoints import Checkpoints
from codecbench.results import ResultStore, RowKey

log = logging.getLogger(__name__)
FIGURE = "visual-comparison.png"


@dataclass
class Tile:
    """One crop on the page: its file, label and caption, and its pixels for the figure."""

    src: str
    label: str
    caption: str = ""
    pixels: np.ndarray | None = field(default=None, repr=False)


@dataclass
class Visuals:
    """Crops per image (``items``: image name and tiles), the streams skipped (one line each) and
    the composed figure's path relative to the report folder (``None`` without crops)."""

    items: list[dict[str, object]]
    skipped: list[str]
    figure: str | None


def point_text(point: float) -> str:
    """A point for captions: ``28``, ``0.4988``, ``26.15`` (four significant digits)."""
    return str(int(point)) if float(point).is_integer() else f"{float(point):.4g}"


def rate_text(bpp: float) -> str:
    """A rate for captions with four significant digits: ``0.03123``, ``0.4988``."""
    return f"{bpp:.4g}"


def slug(label: str) -> str:
    """A file-name-safe form of a curve label: ``bpg (chroma=420)`` -> ``bpg-chroma-420``."""
    return re.sub(r"[^a-z0-9._]+", "-", label.lower()).strip("-") or "codec"


def crop_stem(image_name: str, taken: set[str]) -> str:
    """The file-name prefix of an image's crops, unique on the page (``x.png`` -> ``x``, then
    ``x.jpg`` -> ``x-jpg``); adds it to ``taken``."""
    path = Path(image_name)
    stem = path.stem
    if stem in taken:
        stem = f"{stem}-{path.suffix.lstrip('.')}" if path.suffix else stem
    while stem in taken:
        stem += "-"
    taken.add(stem)
    return stem


def crop_src(stem: str, name: str) -> str:
    """The page's URL of a crop file (``#``, ``?`` and ``%`` in an image name percent-encoded)."""
    return "crops/" + urllib.parse.quote(f"{stem}-{name}.png")


def crop_box(shape: Sequence[int], size: int, at: tuple[int, int] | None = None) -> tuple[int, int]:
    """Top-left corner of the ``size`` crop: ``at`` (x, y), clamped into the image, else centred."""
    height, width = shape[:2]
    if at is None:
        return max(0, (height - size) // 2), max(0, (width - size) // 2)
    x, y = at
    return min(max(0, y), max(0, height - size)), min(max(0, x), max(0, width - size))


def crop(image: np.ndarray, size: int, at: tuple[int, int] | None = None) -> np.ndarray:
    """The ``size`` x ``size`` crop at ``at`` (centred by default; the whole side where smaller)."""
    top, left = crop_box(image.shape, size, at)
    return image[top:top + size, left:left + size]


def enlarge(image: np.ndarray, zoom: int) -> np.ndarray:
    """Nearest-neighbour enlargement: every pixel becomes a ``zoom`` x ``zoom`` block."""
    return np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1)


class Decoders:
    """Registered codecs configured with a stored row's options, one instance per configuration;
    ``checkpoints`` finds the checkpoint files of curves coded with a user's ``weights``."""

    def __init__(self, codecs: Mapping[str, Codec], checkpoints: Checkpoints | None = None):
        self.codecs = codecs
        self.checkpoints = checkpoints or Checkpoints(pd.DataFrame())
        self.configured: dict[tuple[str, str, str], Codec] = {}
        self.versions: dict[int, str] = {}

    def version(self, codec: Codec) -> str:
        """``codec.version()``, asked once per configured codec (it may hash weight files)."""
        if id(codec) not in self.versions:
            self.versions[id(codec)] = codec.version()
        return self.versions[id(codec)]

    def get(self, name: str, version: str, config: str) -> Codec:
        """The codec ``name`` with the options of ``config`` (stored JSON) and the checkpoints that
        coded the curve (``name``, ``version``, ``config``); raises when it cannot decode here (not
        installed, unknown option, unavailable, a checkpoint not found)."""
        if (name, version, config) not in self.configured:
            codec = self.codecs.get(name)
            if codec is None:
                raise CodecUnavailableError(f"codec {name!r} is not installed here")
            options = self.checkpoints.options(name, version, config)
            configured = codec.with_options(**options) if options else codec
            reason = configured.unavailable_reason()
            if reason:
                raise CodecUnavailableError(f"codec {name!r} is unavailable here: {reason}")
            self.configured[(name, version, config)] = configured
        return self.configured[(name, version, config)]


def decode_stored(store: ResultStore, decoders: Decoders, row: object,
                  shape: tuple[int, ...]) -> tuple[np.ndarray, Codec]:
    """Decode the stream stored for ``row`` (its full identity) with the codec configured by its
    options, in a guarded worker; the reconstruction and the codec that decoded it."""
    key = RowKey(row.dataset, row.image, row.codec, row.codec_version, float(row.point), row.config)
    stored = store.get(key)
    if stored is None or stored.stream is None:
        raise CodecbenchError("no bitstream stored for this row")
    codec = decoders.get(row.codec, row.codec_version, row.config)
    return decode_guarded(codec, stored.stream, shape), codec


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, optimize=True)


def _caption(row: object, version: str) -> str:
    psnr = getattr(row, "psnr", math.nan)
    caption = f"{rate_text(row.bpp)} bpp @ {point_text(row.point)}"
    caption += "" if psnr is None or math.isnan(psnr) else f", {psnr:.2f} dB"
    caption += " (above target)" if row.above_target else ""
    if version != row.codec_version:
        caption += f"; decoded by version {version} (stored by {row.codec_version})"
    return caption


def visual_comparison(store: ResultStore, chosen: pd.DataFrame, codecs: Mapping[str, Codec],
                      images: Sequence[ImageRef], out: Path, size: int, zoom: int = 2,
                      at: tuple[int, int] | None = None,
                      checkpoints: Checkpoints | None = None) -> Visuals:
    """Crops of each image: the original, then every curve at its chosen row (``chosen``: rows
    with ``curve`` and ``above_target`` columns); writes ``out/crops/`` and ``out/FIGURE``.
    ``checkpoints`` finds the files of curves coded with a user's checkpoints."""
    decoders = Decoders(codecs, checkpoints)
    items, skipped = [], []
    stems: set[str] = set()
    for ref in images:
        original = read_image(ref.path)
        stem = crop_stem(ref.name, stems)
        pixels = crop(original, size, at)
        _save_png(pixels, out / "crops" / f"{stem}-original.png")
        size_text = f"{ref.name}, {original.shape[1]}x{original.shape[0]}"
        tiles = [Tile(crop_src(stem, "original"), "original", size_text, pixels)]
        names: set[str] = set()
        for row in chosen[chosen["image"] == ref.name].sort_values("curve").itertuples():
            try:
                decoded, codec = decode_stored(store, decoders, row, original.shape)
            except Exception as exc:  # noqa: BLE001  a report skips what it cannot decode
                why = str(exc) if isinstance(exc, GuardedDecodeError) else f"{type(exc).__name__}: {exc}"
                reason = f"{ref.name}, {row.curve} @ {point_text(row.point)}: {why}"
                log.warning("not decoded: %s", reason)
                skipped.append(reason)
                continue
            name = slug(row.curve)
            while name in names:
                name += "-"
            names.add(name)
            pixels = crop(decoded, size, at)
            _save_png(pixels, out / "crops" / f"{stem}-{name}.png")
            tiles.append(Tile(crop_src(stem, name), row.curve, _caption(row, decoders.version(codec)), pixels))
        items.append({"image": ref.name, "tiles": tiles})
    figure = compose_figure(items, zoom, out / FIGURE) if items else None
    return Visuals(items, skipped, figure and FIGURE)


def compose_figure(items: Sequence[Mapping[str, object]], zoom: int, path: Path) -> Path:
    """One PNG: a row per image, its tiles side by side, each enlarged ``zoom`` times by
    nearest-neighbour repetition, with its label and caption underneath."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=13)
    gap, text_h = 8, 36
    rows = [[t for t in item["tiles"] if t.pixels is not None] for item in items]
    cell_w = max(t.pixels.shape[1] * zoom for row in rows for t in row)
    cell_h = max(t.pixels.shape[0] * zoom for row in rows for t in row) + text_h
    columns = max(len(row) for row in rows)
    canvas = Image.new("RGB", (columns * (cell_w + gap) + gap, len(rows) * (cell_h + gap) + gap), "white")
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            x, y = gap + c * (cell_w + gap), gap + r * (cell_h + gap)
            canvas.paste(Image.fromarray(enlarge(tile.pixels, zoom)), (x, y))
            top = y + tile.pixels.shape[0] * zoom + 3
            draw.text((x, top), _fit(draw, tile.label, font, cell_w), fill="black", font=font)
            draw.text((x, top + 16), _fit(draw, tile.caption.split(";")[0], font, cell_w),
                      fill=(80, 80, 80), font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, optimize=True)
    return path


def _fit(draw: object, text: str, font: object, width: int) -> str:
    """``text`` shortened with an ellipsis to fit ``width`` pixels."""
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text
