"""MS-SSIM through pytorch-msssim (data_range 255), also reported in dB."""

from __future__ import annotations

import math
from importlib import metadata
from typing import Callable

import numpy as np

from codecbench.errors import MetricError
from codecbench.hookspecs import hookimpl
from codecbench.metrics import Metric, check_pair, to_tensor

MS_SSIM = "ms-ssim"
MS_SSIM_DB = "ms-ssim-db"
# pytorch-msssim's default 11-px window over 5 scales needs a shorter side above (11 - 1) * 2**4.
MIN_SIDE = 161


def ms_ssim(original: np.ndarray, reconstruction: np.ndarray) -> float:
    """Multi-scale SSIM of two RGB images, averaged over channels, in 0..1."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    check_pair(original, reconstruction)
    if min(original.shape[:2]) < MIN_SIDE:
        raise MetricError(
            f"MS-SSIM needs images of at least {MIN_SIDE} px on the shorter side, "
            f"got {original.shape[1]}x{original.shape[0]}"
        )
    value = _ms_ssim(to_tensor(original), to_tensor(reconstruction), data_range=255)
    return float(value)


def to_db(value: float) -> float:
    """``-10 log10(1 - value)``, the usual dB scale for MS-SSIM; ``inf`` at 1."""
    return math.inf if value >= 1 else -10 * math.log10(1 - value)


class MSSSIMMetric(Metric):
    name = MS_SSIM
    description = "MS-SSIM (pytorch-msssim, data_range 255) and -10 log10(1 - MS-SSIM) in dB"
    columns = {MS_SSIM: True, MS_SSIM_DB: True}

    def version(self) -> str:
        return metadata.version("pytorch-msssim")

    def compute(self, original: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
        value = ms_ssim(original, reconstruction)
        return {MS_SSIM: value, MS_SSIM_DB: to_db(value)}


@hookimpl
def register_metrics(register: Callable[[Metric], None]) -> None:
    register(MSSSIMMetric())
