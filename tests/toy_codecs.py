"""Small real codecs for the core's tests (importable by tests as ``toy_codecs``)."""

from __future__ import annotations

import numpy as np

from codecbench.codec import Codec
from codecbench.metrics import Column, Metric


class Knob(Codec):
    """A codec with three discrete points and one option; its bytes mean nothing."""

    name = "knob"
    points = (1, 2, 3)
    options = {"mode": "a"}

    def encode(self, image: np.ndarray, point: float) -> bytes:
        return b"x"

    def decode(self, data: bytes) -> np.ndarray:
        return np.zeros((1, 1, 3), np.uint8)


class Quantizer(Knob):
    """A real (if trivial) codec: keeps the top `point` bits of each sample, header + raw bytes."""

    name = "quantizer"
    points = (2, 4, 8)
    encodes = 0

    def encode(self, image: np.ndarray, point: float) -> bytes:
        type(self).encodes += 1
        h, w, _ = image.shape
        shift = 8 - int(point)
        return bytes([shift]) + h.to_bytes(2, "big") + w.to_bytes(2, "big") + (image >> shift).tobytes()

    def decode(self, data: bytes) -> np.ndarray:
        shift, h, w = data[0], int.from_bytes(data[1:3], "big"), int.from_bytes(data[3:5], "big")
        return (np.frombuffer(data[5:], np.uint8).reshape(h, w, 3) << shift).astype(np.uint8)


class Broken(Quantizer):
    name = "broken"

    def encode(self, image: np.ndarray, point: float) -> bytes:
        if image.shape[0] == 48:
            raise RuntimeError("cannot encode 48-row images")
        return super().encode(image, point)


class WrongShape(Quantizer):
    name = "wrong-shape"

    def decode(self, data: bytes) -> np.ndarray:
        return super().decode(data)[1:]


class CountingSetMetric(Metric):
    """A dataset-level metric whose value is the number of images; ``calls`` counts computations."""

    name = "count"
    kind = "set"
    columns = {"count": Column("count")}

    def __init__(self) -> None:
        self.calls = 0

    def compute_set(self, pairs):
        self.calls += 1
        return {"count": float(sum(1 for _ in pairs))}
