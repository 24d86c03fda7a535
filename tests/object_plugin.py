"""A third-party plugin registered as an object (``pm.register(ToyObjectPlugin(), name=...)``), not
as a module or an entry point, as the plugin docs allow: a codec and a per-image metric that exist
only through it. Importable by tests (and by the workers they spawn) as ``object_plugin``."""

from __future__ import annotations

import numpy as np
from toy_codecs import Quantizer

import codecbench
from codecbench.metrics import Column, Metric


class ObjectQuantizer(Quantizer):
    name = "object-quantizer"
    points = (3, 6)


class MeanAbsoluteError(Metric):
    """Mean absolute difference of the samples (0..255), lower is better."""

    name = "mean-abs"
    columns = {"mean-abs": Column("MAE", higher_is_better=False)}

    def compute(self, original: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
        return {"mean-abs": float(np.abs(original.astype(np.int16) - reconstruction).mean())}


class ToyObjectPlugin:
    """The plugin object; picklable, so workers register it as the caller did."""

    @codecbench.hookimpl
    def register_codecs(self, register):
        register(ObjectQuantizer())

    @codecbench.hookimpl
    def register_metrics(self, register):
        register(MeanAbsoluteError())
