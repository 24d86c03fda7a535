"""Codecs of the report tests, registered as a module plugin (``registered_plugin(report_codecs,
...)``) so that the guarded workers that decode stored streams register them too."""

from __future__ import annotations

import zlib

import numpy as np
from codecbench_classical.jpeg import JPEG

from codecbench import BitstreamError, Codec, hookimpl


class JPEG444(JPEG):
    """A second codec for the BD table: JPEG without chroma subsampling, under its own name."""

    name = "jpeg444"
    options = {**JPEG.options, "subsampling": "444"}


class Zip(Codec):
    """The top ``point`` bits of each sample, zlib-compressed. Option ``offset`` is added to every
    sample before coding and taken off after decoding, so only a decoder configured as the encoder
    was gives the image back."""

    name = "zip"
    family = "learned"
    points = (1, 2, 4, 8)
    point_range = (1, 8)
    options = {"offset": "0"}

    def encode(self, image: np.ndarray, point: float) -> bytes:
        shift = 8 - self.validate_point(point)
        h, w, _ = image.shape
        moved = ((image.astype(int) + int(self.config["offset"])) % 256).astype(np.uint8)
        return bytes([shift]) + h.to_bytes(2, "big") + w.to_bytes(2, "big") + zlib.compress((moved >> shift).tobytes(), 9)

    def decode(self, data: bytes) -> np.ndarray:
        if len(data) < 5:
            raise BitstreamError(f"truncated zip stream ({len(data)} bytes)")
        shift, h, w = data[0], int.from_bytes(data[1:3], "big"), int.from_bytes(data[3:5], "big")
        try:
            raw = zlib.decompress(data[5:])
        except zlib.error as exc:
            raise BitstreamError(f"corrupt zip stream: {exc}") from exc
        moved = np.frombuffer(raw, np.uint8).reshape(h, w, 3) << shift  # ValueError on a wrong header
        return ((moved.astype(int) - int(self.config["offset"])) % 256).astype(np.uint8)



@hookimpl
def register_codecs(register) -> None:
    register(Zip())
    register(JPEG444())
