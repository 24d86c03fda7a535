"""What one unit of a benchmark is: a codec point on one image, encoded, decoded and measured.

The harness, never the codec, computes ``bpp = 8 * len(data) / (H * W)``, times encode and decode
(``perf_counter`` around ``synchronize()``), checks the decoded image and computes the metrics.
Every executor (in this process, a pool of workers, a Ray cluster) computes a unit with
:func:`execute_unit`, or completes a stored one with :func:`measure_stream`; both never raise, so a
failing codec or metric is a result like any other. This module sits below the runner and the
executors and imports neither.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from codecbench import threads as torch_threads
from codecbench.codec import Codec, Point, check_image_array
from codecbench.errors import CodecError
from codecbench.image import read_image
from codecbench.metrics import Metric


@dataclass
class UnitResult:
    """The outcome of a unit, ready to be stored (a failure carries its ``error``)."""

    status: str
    error: str | None = None
    height: int | None = None
    width: int | None = None
    stream: bytes | None = None
    bpp: float | None = None
    encode_s: float | None = None
    decode_s: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def bits_per_pixel(data: bytes, height: int, width: int) -> float:
    """``8 * len(data) / (height * width)``: the only bpp codecbench reports."""
    return 8 * len(data) / (height * width)


def describe_error(exc: BaseException) -> str:
    """``Type: message (at file.py:line)`` for a stored error."""
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def image_metrics(
    metrics: Sequence[Metric], original: np.ndarray, reconstruction: np.ndarray
) -> dict[str, float]:
    """All per-image metric values for one pair (set metrics are left out)."""
    values: dict[str, float] = {}
    for metric in metrics:
        if metric.kind == "image":
            values.update(metric.compute(original, reconstruction))
    return values


@lru_cache(maxsize=4)
def cached_image(path: str | Path) -> np.ndarray:
    """:func:`~codecbench.image.read_image`, read-only; the last few images read are kept."""
    image = read_image(path)
    image.setflags(write=False)
    return image


def decode_checked(codec: Codec, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """Decode ``data`` in this process and check the result is a ``uint8`` image of ``shape``.

    Only for streams this process just encoded: a stored stream may be hostile, and is decoded
    by :func:`codecbench.executors.decode_guarded` in a worker process instead."""
    reconstruction = codec.decode(data)
    check_image_array(reconstruction, f"{codec.name}.decode() output")
    if reconstruction.shape != shape:
        raise CodecError(
            f"{codec.name}.decode() returned shape {reconstruction.shape}, expected {shape}"
        )
    return reconstruction


def execute_unit(codec: Codec, point: Point, image: np.ndarray, metrics: Sequence[Metric]) -> UnitResult:
    """Encode, decode and measure one image at one point. Never raises: failures are results."""
    height, width = image.shape[:2]
    try:
        codec.load()
        torch_threads.apply()  # loading may have imported torch
        codec.synchronize()
        start = time.perf_counter()
        data = codec.encode(image.copy(), point)
        codec.synchronize()
        encode_s = time.perf_counter() - start
        if not isinstance(data, (bytes, bytearray)):
            raise CodecError(f"{codec.name}.encode() returned {type(data).__name__}, not bytes")
        data = bytes(data)
        start = time.perf_counter()
        reconstruction = decode_checked(codec, data, image.shape)
        codec.synchronize()
        decode_s = time.perf_counter() - start
    except Exception as exc:  # a failing codec is recorded, and the run goes on
        return UnitResult("failed", error=describe_error(exc), height=height, width=width)
    result = UnitResult(
        "ok", height=height, width=width, stream=data, bpp=bits_per_pixel(data, height, width),
        encode_s=encode_s, decode_s=decode_s,
    )
    try:
        torch_threads.apply()
        result.metrics = image_metrics(metrics, image, reconstruction)
    except Exception as exc:
        result.status, result.error = "failed", f"metric: {describe_error(exc)}"
    return result


def measure_stream(codec: Codec, stream: bytes, image: np.ndarray,
                   metrics: Sequence[Metric]) -> UnitResult:
    """The metric values of a stored unit, from its stored ``stream`` (no re-encoding). Never
    raises: a stream that does not decode, or a metric that fails, is a failed result."""
    try:
        codec.load()
        torch_threads.apply()
        reconstruction = decode_checked(codec, stream, image.shape)
        torch_threads.apply()
        values = image_metrics(metrics, image, reconstruction)
    except Exception as exc:
        return UnitResult("failed", error=f"metric: {describe_error(exc)}")
    return UnitResult("ok", height=image.shape[0], width=image.shape[1], metrics=values)
