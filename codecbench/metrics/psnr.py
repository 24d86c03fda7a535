"""PSNR on 8-bit RGB (MAX = 255), per image; datasets average the per-image values.

PSNR is capped at :data:`PSNR_CAP` (100 dB): an exactly reproduced image would otherwise score
``inf`` and turn the mean of a whole point into ``inf``. A non-zero error can pass 100 dB only on
images over about 51,000 pixels (one level off in one channel of one pixel of a 768x512 Kodak
image is 108.8 dB); such near-exact reconstructions read 100 dB too.

The squared errors are summed as integers in bands of :data:`BAND_PIXELS` pixels, so PSNR needs
about 12 MiB whatever the image size (a 4000x4000 image peaked at 732 MiB, 48 bytes per pixel, as
whole-image float64 arrays), and its value is exactly that of the whole-image float64 mean: every
partial sum is an integer far below 2**53, which float64 holds exactly.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from codecbench.hookspecs import hookimpl
from codecbench.metrics import Column, Metric, check_pair

PSNR = "psnr"
PSNR_CAP = 100.0  # dB, the value of an exact reconstruction
BAND_PIXELS = 1 << 18
"""Pixels per band of rows in which squared errors are summed (6 MiB of int64 differences)."""


def squared_error_sum(original: np.ndarray, reconstruction: np.ndarray) -> int:
    """The sum of squared differences of all samples of two ``uint8`` arrays of the same shape,
    exact, computed in bands of about :data:`BAND_PIXELS` pixels."""
    rows = max(1, BAND_PIXELS // max(1, original.shape[1]))
    total = 0
    for top in range(0, original.shape[0], rows):
        diff = (original[top:top + rows].astype(np.int64) - reconstruction[top:top + rows]).ravel()
        total += int(np.dot(diff, diff))
    return total


def psnr(original: np.ndarray, reconstruction: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels, at most :data:`PSNR_CAP`
    (100 dB, the value of identical images)."""
    check_pair(original, reconstruction)
    mse = squared_error_sum(original, reconstruction) / original.size
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * math.log10(255.0**2 / mse))


class PSNRMetric(Metric):
    name = PSNR
    description = "PSNR in dB on RGB, MAX 255, capped at 100 dB (exact), mean of per-image values"
    columns = {PSNR: Column("PSNR", "dB")}
    bytes_per_pixel = 0  # summed in bands of BAND_PIXELS pixels: about 12 MiB at any size

    def compute(self, original: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
        return {PSNR: psnr(original, reconstruction)}


@hookimpl
def register_metrics(register: Callable[[Metric], None]) -> None:
    register(PSNRMetric())
