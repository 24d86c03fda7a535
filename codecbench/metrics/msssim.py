"""MS-SSIM through pytorch-msssim (data_range 255), also reported in dB.

The dB form is capped like PSNR, at :data:`MS_SSIM_DB_CAP` (100 dB, :data:`PSNR_CAP`): an exact
reconstruction (MS-SSIM 1) would otherwise score ``inf`` and turn the mean of a whole point into
``inf``. pytorch-msssim computes in float32, so a near-exact one (one level off in one pixel)
reads 1 too, hence 100 dB; below 1 the dB form stays under about 72 dB.
"""

from __future__ import annotations

import math
from importlib import metadata
from typing import Callable

import numpy as np

from codecbench.errors import MetricError
from codecbench.hookspecs import hookimpl
from codecbench.metrics import Column, Metric, check_pair, to_tensor
from codecbench.metrics.psnr import PSNR_CAP

MS_SSIM = "ms-ssim"
MS_SSIM_DB = "ms-ssim-db"
# pytorch-msssim downsamples 4 times (5 scales) and needs a shorter side above (window - 1) * 2**4:
# 161 px for its default 11-px Gaussian window.
WINDOW = 11
MIN_SIDE = (3 - 1) * 2**4 + 1
MS_SSIM_DB_CAP = PSNR_CAP  # dB, the value of an exact reconstruction


def window_for(side: int) -> int:
    """The Gaussian window: pytorch-msssim's 11 px, or the widest odd one a smaller image allows.

    Images under 161 px (e.g. 80x80 faces) keep all 5 scales with a narrower window (5 px at
    80 px) rather than fail; below 33 px no window fits.
    """
    fitting = [w for w in range(3, WINDOW + 1, 2) if (w - 1) * 2**4 < side]
    if not fitting:
        raise MetricError(f"MS-SSIM needs images of at least {MIN_SIDE} px on the shorter side, got {side} px")
    return fitting[-1]


def ms_ssim(original: np.ndarray, reconstruction: np.ndarray) -> float:
    """Multi-scale SSIM of two RGB images, averaged over channels, in 0..1 (window: :func:`window_for`)."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    check_pair(original, reconstruction)
    window = window_for(min(original.shape[:2]))
    value = _ms_ssim(to_tensor(original), to_tensor(reconstruction), data_range=255, win_size=window)
    return float(value)


def to_db(value: float) -> float:
    """``-10 log10(1 - value)``, the usual dB scale for MS-SSIM, at most :data:`MS_SSIM_DB_CAP`
    (100 dB, the value at 1)."""
    return MS_SSIM_DB_CAP if value >= 1 else min(MS_SSIM_DB_CAP, -10 * math.log10(1 - value))


class MSSSIMMetric(Metric):
    name = MS_SSIM
    description = ("MS-SSIM (pytorch-msssim, data_range 255; 11-px window, narrower under 161 px) "
                   "and -10 log10(1 - MS-SSIM) in dB, capped at 100 dB (exact)")
    # Plots and BD-rates use the dB form; the linear one restates it.
    columns = {MS_SSIM: Column("MS-SSIM", plotted=False, bd=False), MS_SSIM_DB: Column("MS-SSIM", "dB")}

    def version(self) -> str:
        return metadata.version("pytorch-msssim")

    def compute(self, original: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
        value = ms_ssim(original, reconstruction)
        return {MS_SSIM: value, MS_SSIM_DB: to_db(value)}


@hookimpl
def register_metrics(register: Callable[[Metric], None]) -> None:
    register(MSSSIMMetric())
