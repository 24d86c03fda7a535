"""A per-image metric that needs a weights file, as LPIPS does, and tells where it ran: its
``probe-scale`` is the number in ``<weights folder>/probe/scale.txt`` and its ``probe-env`` is 1
when ``$CODECBENCH_WEIGHTS`` is set in the process computing it. Registered by tests as a module
plugin (``weights_probe``)."""

from __future__ import annotations

import os

import numpy as np

import codecbench
from codecbench.errors import MetricError
from codecbench.metrics import Column, Metric, weights_dir


class WeightsProbe(Metric):
    name = "weights-probe"
    columns = {"probe-scale": Column("scale", plotted=False, bd=False),
               "probe-env": Column("env", plotted=False, bd=False)}

    def unavailable_reason(self) -> str | None:
        folder = weights_dir()
        if folder is None or not (folder / "probe" / "scale.txt").is_file():
            return f"no probe/scale.txt in the weights folder {folder} (--weights-dir)"
        return None

    def compute(self, original: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
        reason = self.unavailable_reason()
        if reason:
            raise MetricError(reason)
        return {"probe-scale": float((weights_dir() / "probe" / "scale.txt").read_text()),
                "probe-env": float("CODECBENCH_WEIGHTS" in os.environ)}


@codecbench.hookimpl
def register_metrics(register):
    register(WeightsProbe())
