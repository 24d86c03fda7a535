"""Published curves as anchors: bpp/metric points from a paper or another tool, read from a file,
drawn beside measured curves and used in BD tables, always labelled as published.

A file is either a CSV (``#`` comment lines, then a header with ``bpp`` and metric column ids such
as ``psnr`` or ``ms-ssim-db``; other columns, such as ``qp``, are kept but not drawn), or a
CompressAI results JSON (``{"name", "results": {"bpp", "psnr-rgb", ...}}``, see
:mod:`codecbench.compressai_format`). Each point is a mean over the dataset, as the file says.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from codecbench.compressai_format import from_compressai
from codecbench.errors import CodecbenchError

__all__ = ["PublishedCurve", "read_published"]


@dataclass(frozen=True)
class PublishedCurve:
    """A curve from a file: its ``label`` (``NAME (published)``), its points (``bpp`` and metric
    columns, one row per point) and the file it came from."""

    label: str
    points: pd.DataFrame
    source: Path

    def rows(self, dataset: str) -> pd.DataFrame:
        """The points as leaderboard rows of ``dataset`` (``codec`` and ``curve``: the label)."""
        return self.points.assign(dataset=dataset, codec=self.label, curve=self.label)


def read_published(path: str | Path) -> PublishedCurve:
    """Read a published curve (CSV or CompressAI JSON); raise naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CodecbenchError(f"Published curve {path} not found")
    try:
        if path.suffix.lower() == ".json":
            name, points = from_compressai(json.loads(path.read_text(encoding="utf-8")))
        else:
            name, points = "", pd.read_csv(path, comment="#")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CodecbenchError(f"Published curve {path} cannot be read: {exc}") from exc
    if "bpp" not in points.columns:
        raise CodecbenchError(f"Published curve {path} has no 'bpp' column (columns: "
                              f"{', '.join(map(str, points.columns))})")
    numeric = points.apply(pd.to_numeric, errors="coerce")
    rates = numeric["bpp"]
    if rates.isna().any() or not all(math.isfinite(r) and r > 0 for r in rates):
        raise CodecbenchError(f"Published curve {path}: every 'bpp' value must be a positive number")
    if len(points.columns) < 2:
        raise CodecbenchError(f"Published curve {path} has no metric column beside 'bpp'")
    return PublishedCurve(f"{name or path.stem} (published)", numeric.sort_values("bpp").reset_index(drop=True), path)
