"""The metric contract: what a metric computes, and how plots, reports and BD tables show it.

Every metric takes the harness's one input convention, ``H x W x 3`` ``uint8`` RGB arrays, and
does its own rescaling. A metric of ``kind = "image"`` is computed per (original, reconstruction)
pair and averaged over images; one of ``kind = "set"`` (FID, KID) once per dataset from all pairs.
A metric produces one or more values, its ``columns``: each is a :class:`Column` carrying its label,
unit and direction (whether higher is better), and whether plots and BD tables use it. Nothing
downstream knows a metric by name: plots, the report and BD tables read these declarations, so a
plugin's metric is plotted, tabled and BD-rated like the built-in ones.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from codecbench.errors import MetricError

__all__ = ["Column", "Metric", "describe_columns", "registered_columns", "set_columns"]


@dataclass(frozen=True)
class Column:
    """One value a metric produces.

    ``label``: its short name on axes and in headers (``"PSNR"``); ``unit``: ``"dB"``, or ``""``
    for a unitless value; ``higher_is_better``: its direction; ``plotted``: whether it gets a
    rate-distortion plot; ``bd``: whether BD-rate and BD-quality are computed on it. A column that
    restates another (linear MS-SSIM beside its dB form) sets both to ``False``.
    """

    label: str
    unit: str = ""
    higher_is_better: bool = True
    plotted: bool = True
    bd: bool = True

    def axis_label(self) -> str:
        """``"PSNR (dB)"``, ``"LPIPS (lower is better)"``: label, unit and a lower-is-better hint."""
        notes = [n for n in (self.unit, "" if self.higher_is_better else "lower is better") if n]
        return f"{self.label} ({', '.join(notes)})" if notes else self.label


class Metric(abc.ABC):
    """Base class of every metric."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    kind: ClassVar[Literal["image", "set"]] = "image"
    columns: ClassVar[Mapping[str, Column]] = {}
    bytes_per_pixel: ClassVar[int] = 200
    """Working memory of a per-image metric per pixel of the image, which sizes worker pools
    (:mod:`codecbench.executors.memory`); the default is what MS-SSIM was measured to need (193).
    A metric computed in bands of rows, whose memory does not grow with the image, declares 0."""

    def version(self) -> str:
        """Version of the library or weights behind the metric."""
        return "0"

    def unavailable_reason(self) -> str | None:
        """Why this metric cannot be computed here (and how to fix it), or ``None``. Looks at local
        files only (``codecbench list`` calls it): no download, no network, no model built."""
        return None

    def load(self) -> None:
        """Get ready to compute (fetch missing weights, which may download them, and check them),
        or raise :class:`~codecbench.errors.MetricError` saying why not; ``run`` calls it before
        computing and skips the metric when it raises. Default: raise :meth:`unavailable_reason`."""
        reason = self.unavailable_reason()
        if reason:
            raise MetricError(reason)

    def note(self, sizes: Sequence[tuple[int, int]]) -> str:
        """What a reader of this metric's values on images of ``sizes`` (height, width) needs to
        know to read them; the report prints it beside the plots. Default: nothing."""
        return ""

    def compute(self, original: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
        """Values for one image pair (``kind == "image"``), keyed by column."""
        raise MetricError(f"Metric {self.name!r} is not a per-image metric")

    def compute_set(self, pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
        """Values for a whole dataset (``kind == "set"``), keyed by column."""
        raise MetricError(f"Metric {self.name!r} is not a dataset-level metric")


def describe_columns(metrics: Iterable[Metric]) -> dict[str, Column]:
    """Every column of ``metrics`` with its :class:`Column`, in the order tables show them:
    per-image columns where higher is better, then per-image ones where lower is better, then
    dataset-level ones (each group in the order of ``metrics``)."""
    metrics = list(metrics)
    groups: list[list[tuple[str, Column]]] = [[], [], []]
    for metric in metrics:
        for column_id, column in metric.columns.items():
            group = 2 if metric.kind == "set" else 0 if column.higher_is_better else 1
            groups[group].append((column_id, column))
    return {column_id: column for group in groups for column_id, column in group}


def set_columns(metrics: Iterable[Metric]) -> list[str]:
    """The columns of ``metrics`` computed once per dataset (``kind == "set"``)."""
    return [column for metric in metrics if metric.kind == "set" for column in metric.columns]


def registered_columns() -> dict[str, Column]:
    """:func:`describe_columns` of every registered metric (built-in and plugins')."""
    from codecbench import plugins

    return describe_columns(plugins.metrics())
