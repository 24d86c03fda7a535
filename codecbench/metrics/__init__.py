"""The built-in metrics and the helpers they share.

The contract itself (:class:`~codecbench.metric.Metric`, :class:`~codecbench.metric.Column`) lives
in :mod:`codecbench.metric` and is re-exported here. Every metric takes ``H x W x 3`` ``uint8`` RGB
arrays (:func:`check_pair`) and does its own rescaling.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np

from codecbench.errors import MetricError
from codecbench.metric import Column, Metric

__all__ = ["Column", "Metric", "check_pair", "progress_shown", "showing_progress", "to_tensor",
           "using_weights_dir", "weights_dir"]

_PROGRESS: ContextVar[bool] = ContextVar("codecbench_metric_progress", default=True)
_WEIGHTS_DIR: ContextVar[Path | None] = ContextVar("codecbench_weights_dir", default=None)


def progress_shown() -> bool:
    """Whether metrics may draw their own progress bars (FID's per-image bar) here."""
    return _PROGRESS.get()


@contextmanager
def showing_progress(show: bool) -> Iterator[None]:
    """Within the block, metrics draw their progress bars only if ``show`` (``-q``: not)."""
    token = _PROGRESS.set(show)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def check_pair(original: np.ndarray, reconstruction: np.ndarray) -> None:
    """Raise ``MetricError`` unless both are ``uint8`` arrays of the same ``H x W x 3`` shape."""
    for what, arr in (("original", original), ("reconstruction", reconstruction)):
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise MetricError(f"{what} must be H x W x 3 uint8, got {arr.dtype} {arr.shape}")
    if original.shape != reconstruction.shape:
        raise MetricError(
            f"shape mismatch: original {original.shape}, reconstruction {reconstruction.shape}"
        )


def weights_dir() -> Path | None:
    """The folder of local metric weights: the one given for the block being run
    (:func:`using_weights_dir`: ``--weights-dir``, or a worker's task), else
    ``$CODECBENCH_WEIGHTS``, else ``None``."""
    folder = _WEIGHTS_DIR.get()
    if folder is not None:
        return folder
    value = os.environ.get("CODECBENCH_WEIGHTS")
    return Path(value).expanduser() if value else None


@contextmanager
def using_weights_dir(folder: str | Path | None) -> Iterator[None]:
    """Within the block, metrics look for local weights in ``folder`` (``None``: where they did).

    A value, not an environment variable: a run hands it to its workers in each task."""
    if folder is None:
        yield
        return
    token = _WEIGHTS_DIR.set(Path(folder).expanduser())
    try:
        yield
    finally:
        _WEIGHTS_DIR.reset(token)


def to_tensor(image: np.ndarray) -> "torch.Tensor":  # noqa: F821
    """``H x W x 3`` ``uint8`` array as a ``1 x 3 x H x W`` float tensor in 0..255."""
    import torch

    return torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None]
