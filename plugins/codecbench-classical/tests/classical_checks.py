"""Checks shared by the classical codec tests (beyond ``codecbench.testing.check_codec``)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from codecbench import BitstreamError, Codec
from codecbench.testing import synthetic_image


def png_bytes(image: np.ndarray) -> bytes:
    """``image`` as a PNG file: a valid image in a foreign format."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def bpp_per_point(codec: Codec, image: np.ndarray) -> list[float]:
    """Bits per pixel of ``image`` at each of the codec's default points, in order."""
    pixels = image.shape[0] * image.shape[1]
    return [8 * len(codec.encode(image, point)) / pixels for point in codec.points]


def assert_rejects_bad_streams(codec: Codec) -> None:
    """Truncated, corrupt and foreign data all raise ``BitstreamError``, never return an image."""
    image = synthetic_image()
    data = codec.encode(image, codec.points[len(codec.points) // 2])
    bad = {
        "truncated to half": data[: len(data) // 2],
        "missing its last 10 bytes": data[:-10],
        "empty": b"",
        "random bytes": bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8)),
        "a PNG file": png_bytes(image),
    }
    for what, stream in bad.items():
        with pytest.raises(BitstreamError):
            codec.decode(stream)
            pytest.fail(f"{codec.name} decoded a stream {what}")
