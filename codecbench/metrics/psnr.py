"""PSNR on 8-bit RGB (MAX = 255), per image; datasets average the per-image values."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from codecbench.hookspecs import hookimpl
from codecbench.metrics import Metric, check_pair

PSNR = "psnr"


def psnr(original: np.ndarray, reconstruction: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels; ``inf`` when identical."""
    check_pair(original, reconstruction)
    mse = np.mean((original.astype(np.float64) - reconstruction.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


class PSNRMetric(Metric):
    name = PSNR
    description = "PSNR in dB on RGB, MAX 255, mean of per-image values"
    columns = {PSNR: True}

    def compute(self, original: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
        return {PSNR: psnr(original, reconstruction)}


@hookimpl
def register_metrics(register: Callable[[Metric], None]) -> None:
    register(PSNRMetric())
