"""ST-LPIPS, shift-tolerant LPIPS (Ghildyal & Liu 2022), through ``stlpips-pytorch``.

The package's wheel ships the trained shift-tolerant AlexNet weights (trunk and linear layers
together), so this perceptual metric works fully offline with no weights directory.
"""

from __future__ import annotations

import warnings
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

from codecbench.errors import MetricError
from codecbench.hookspecs import hookimpl
from codecbench.metrics import Column, Metric, check_pair, to_tensor

ST_LPIPS = "st-lpips"
VARIANT = "shift_tolerant"


def shipped_weights() -> Path:
    """The shift-tolerant AlexNet weights inside the installed ``stlpips_pytorch`` package."""
    import importlib.util

    spec = importlib.util.find_spec("stlpips_pytorch")
    if spec is None or spec.origin is None:
        raise MetricError("ST-LPIPS needs the stlpips-pytorch package: pip install stlpips-pytorch")
    return Path(spec.origin).parent / "weights" / "vST0.0" / f"alex_{VARIANT}.pth"


class STLPIPSMetric(Metric):
    name = ST_LPIPS
    description = "ST-LPIPS (shift-tolerant LPIPS, AlexNet, stlpips-pytorch), lower is better"
    columns = {ST_LPIPS: Column("ST-LPIPS", higher_is_better=False)}

    def __init__(self) -> None:
        self._model: object | None = None

    def version(self) -> str:
        return f"stlpips-pytorch-{metadata.version('stlpips-pytorch')}/alex-{VARIANT}"

    def unavailable_reason(self) -> str | None:
        try:
            path = shipped_weights()
        except MetricError as exc:
            return str(exc)
        if not path.is_file():
            return f"ST-LPIPS weights missing from the stlpips-pytorch install: {path} (reinstall it)"
        return None

    def model(self) -> "torch.nn.Module":  # noqa: F821
        """The ST-LPIPS network with the package's own trained weights, built once."""
        if self._model is None:
            reason = self.unavailable_reason()
            if reason:
                raise MetricError(reason)
            from stlpips_pytorch import stlpips

            with warnings.catch_warnings():  # torchvision's "pretrained is deprecated" notices
                warnings.simplefilter("ignore", UserWarning)
                self._model = stlpips.LPIPS(
                    net="alex", variant=VARIANT, model_path=str(shipped_weights()), verbose=False
                ).eval()
        return self._model

    def distance(self, original: np.ndarray, reconstruction: np.ndarray) -> float:
        """ST-LPIPS between two ``uint8`` RGB images (rescaled to -1..1 as the package expects)."""
        import torch

        check_pair(original, reconstruction)
        with torch.no_grad():
            a, b = (to_tensor(x) / 127.5 - 1 for x in (original, reconstruction))
            return float(self.model()(a, b))

    def compute(self, original: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
        return {ST_LPIPS: self.distance(original, reconstruction)}


@hookimpl
def register_metrics(register: Callable[[Metric], None]) -> None:
    register(STLPIPSMetric())
