"""PSNR on 8-bit RGB (MAX = 255), per image; datasets average the per-image values.

PSNR is capped at :data:`PSNR_CAP` (100 dB): an exactly reproduced image would otherwise score
``inf`` and turn the mean of a whole point into ``inf``. A non-zero error can pass 100 dB only on
images over about 51,000 pixels (one level off in one channel of one pixel of a 768x512 Kodak
image is 108.8 dB); such near-exact reconstructions read 100 dB too.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from codecbench.hookspecs import hookimpl
from codecbench.metrics import Column, Metric, check_pair

PSNR = "psnr"
PSNR_CAP = 100.0  # dB, the value of an exact reconstruction


def psnr(original: np.ndarray, reconstruction: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels, at most :data:`PSNR_CAP`
    (100 dB, the value of identical images)."""
    check_pair(original, reconstruction)
    mse = np.mean((original.astype(np.float64) - reconstruction.astype(np.float64)) ** 2)
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * math.log10(255.0**2 / mse))


class PSNRMetric(Metric):
    name = PSNR
    description = "PSNR in dB on RGB, MAX 255, capped at 100 dB (exact), mean of per-image values"
    columns = {PSNR: Column("PSNR", "dB")}

    def compute(self, original: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
        return {PSNR: psnr(original, reconstruction)}


@hookimpl
def register_metrics(register: Callable[[Metric], None]) -> None:
    register(PSNRMetric())
