"""CompressAI's results format, both ways: a curve as the JSON that ``compressai.utils.plot`` and
paper scripts read, and such a JSON (CompressAI's ``results/image/kodak/*.json``) as a curve.

The format is one object per codec: ``{"name", "description", "results": {"bpp": [...],
"psnr-rgb": [...], "ms-ssim-rgb": [...], "encoding_time": [...], "decoding_time": [...]}}``, one
list entry per operating point, each a mean over the dataset's images. CompressAI names PSNR and
MS-SSIM on RGB ``psnr-rgb`` and ``ms-ssim-rgb`` (linear MS-SSIM; its plot script converts it to
dB) and times ``encoding_time`` / ``decoding_time`` in seconds; every other metric keeps its
codecbench column id (``lpips``, ``fid``), which ``python -m compressai.utils.plot -m lpips`` reads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from codecbench.leaderboard import complete_points, curve_label, leaderboard, metric_columns

# codecbench column -> CompressAI results key
KEYS = {"psnr": "psnr-rgb", "ms-ssim": "ms-ssim-rgb", "encode_s": "encoding_time",
        "decode_s": "decoding_time"}

__all__ = ["KEYS", "CompressAICurve", "compressai_curves", "from_compressai", "to_compressai"]


@dataclass(frozen=True)
class CompressAICurve:
    """One stored curve in CompressAI's format, with a file name for it (``dataset-curve.json``)."""

    filename: str
    data: dict[str, Any]


def to_compressai(name: str, description: str, points: pd.DataFrame,
                  columns: Sequence[str]) -> dict[str, Any]:
    """One curve as a CompressAI results object.

    ``points`` holds the curve's mean operating points (``bpp`` and the values of ``columns``);
    they are written in order of rate. A column missing at some point (NaN) is left out of the
    object, since CompressAI's lists have one value per point; ``description`` names what is left
    out, if anything.
    """
    points = points.sort_values("bpp")
    results: dict[str, list[float]] = {"bpp": [float(v) for v in points["bpp"]]}
    partial = []
    for column in ["encode_s", "decode_s", *columns]:
        if column not in points.columns or column in results:
            continue
        values = [float(v) for v in points[column]]
        if any(math.isnan(v) for v in values):
            if not all(math.isnan(v) for v in values):
                partial.append(column)
            continue
        results[KEYS.get(column, column)] = values
    if partial:
        description += f" ({', '.join(partial)} left out: not measured at every point)"
    return {"name": name, "description": description, "results": results}


def compressai_curves(rows: pd.DataFrame, set_values: pd.DataFrame | None = None,
                      defaults: Mapping[str, Mapping[str, Any]] | None = None) -> list[CompressAICurve]:
    """Every stored curve (dataset, codec, version, configuration) of ``rows`` (from
    :meth:`~codecbench.results.ResultStore.frame`) in CompressAI's format: the points measured on
    every image of the dataset (no search probes), named by codec and the options that differ
    from ``defaults`` (the codecs' own options, by codec name)."""
    defaults = defaults or {}
    curves = []
    for dataset, part in rows.groupby("dataset", sort=True):
        board = complete_points(part, leaderboard(part, set_values))
        columns = [c for c in metric_columns(board) if c not in ("n", "failed")]
        n_images = part["image"].nunique()
        for (codec, version, config), points in board.groupby(["codec", "codec_version", "config"], sort=True):
            try:
                name = curve_label(codec, config, defaults.get(codec, {}))
            except (TypeError, ValueError):
                name = f"{codec}[{config}]"
            description = (f"codecbench: {codec} version {version} on {dataset}, means over "
                           f"{n_images} images (bpp from the stored bitstreams)")
            stem = re.sub(r"[^A-Za-z0-9._]+", "-", f"{dataset}-{name}").strip("-")
            if any(c.filename == f"{stem}.json" for c in curves):  # another version of the curve
                stem = re.sub(r"[^A-Za-z0-9._]+", "-", f"{stem}-{version}").strip("-")
            curves.append(CompressAICurve(f"{stem}.json", to_compressai(name, description, points, columns)))
    return curves


def from_compressai(data: Mapping[str, Any]) -> tuple[str, pd.DataFrame]:
    """The name and points (``bpp`` and codecbench column ids) of a CompressAI results object.

    Raises ``ValueError`` naming what is missing when it is not one (no ``bpp`` list, or lists of
    other lengths than ``bpp``).
    """
    results = data.get("results", data)
    if not isinstance(results, Mapping) or "bpp" not in results:
        raise ValueError("not a CompressAI results object: no 'results' with a 'bpp' list")
    names = {key: column for column, key in KEYS.items()}
    frame = {}
    for key, values in results.items():
        if not isinstance(values, list) or len(values) != len(results["bpp"]):
            raise ValueError(f"results[{key!r}] is not a list of {len(results['bpp'])} values, "
                             "one per bpp value")
        frame[names.get(key, key)] = [math.nan if v is None else float(v) for v in values]
    return str(data.get("name", "")), pd.DataFrame(frame)
