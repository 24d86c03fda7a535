"""The metric contract.

Every metric takes the harness's one input convention, ``H x W x 3`` ``uint8`` RGB arrays, and
does its own rescaling. A metric of ``kind = "image"`` is computed per (original, reconstruction)
pair; one of ``kind = "set"`` (FID, KID) once per dataset from all pairs. A metric may produce
several values (``columns``, each mapped to whether higher is better).
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from codecbench.errors import MetricError


class Metric(abc.ABC):
    """Base class of every metric."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    kind: ClassVar[Literal["image", "set"]] = "image"
    columns: ClassVar[Mapping[str, bool]] = {}

    def version(self) -> str:
        """Version of the library or weights behind the metric."""
        return "0"

    def unavailable_reason(self) -> str | None:
        """Why this metric cannot be computed here (and how to fix it), or ``None``."""
        return None

    def compute(self, original: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
        """Values for one image pair (``kind == "image"``), keyed by column."""
        raise MetricError(f"Metric {self.name!r} is not a per-image metric")

    def compute_set(self, pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
        """Values for a whole dataset (``kind == "set"``), keyed by column."""
        raise MetricError(f"Metric {self.name!r} is not a dataset-level metric")


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
    """The folder of local metric weights (``--weights-dir`` / ``CODECBENCH_WEIGHTS``), if set."""
    value = os.environ.get("CODECBENCH_WEIGHTS")
    return Path(value).expanduser() if value else None


def to_tensor(image: np.ndarray) -> "torch.Tensor":  # noqa: F821
    """``H x W x 3`` ``uint8`` array as a ``1 x 3 x H x W`` float tensor in 0..255."""
    import torch

    return torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None]
