"""JPEG 2000 through Pillow's OpenJPEG: one quality layer at a target rate, 9/7 wavelet, 4:4:4."""

from __future__ import annotations

from typing import Any, Callable

import PIL
from PIL import features

from codecbench import Codec, hookimpl
from codecbench_classical.pillow_codec import PillowCodec

# OpenJPEG's rate is a compression ratio against the raw 8-bit RGB size (24 bits per pixel).
RAW_BITS_PER_PIXEL = 24


class JPEG2000(PillowCodec):
    name = "jpeg2000"
    description = (
        "JPEG 2000 (Pillow / OpenJPEG), raw codestream, irreversible 9/7 wavelet with the YCbCr "
        "colour transform (4:4:4, no subsampling), one quality layer; point = target bits per pixel "
        "(compression ratio 24/point)"
    )
    pillow_format = "JPEG2000"
    # The knob is OpenJPEG's own rate target, so the rate is monotonic in it. Below ~0.0045 bpp
    # only headers remain; above ~7 bpp every coding pass is already kept.
    points = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
    point_range = (0.005, 8.0)
    integer_points = False

    def unavailable_reason(self) -> str | None:
        if not features.check("jpg_2000"):
            return "this Pillow was built without OpenJPEG; reinstall a PyPI wheel: pip install --force-reinstall pillow"
        return None

    def library_version(self) -> str:
        return f"pillow-{PIL.__version__}/openjpeg-{features.version('jpg_2000')}"

    def save_options(self, point: float) -> dict[str, Any]:
        return {
            "no_jp2": True,
            "irreversible": True,
            "mct": 1,
            "quality_mode": "rates",
            "quality_layers": [RAW_BITS_PER_PIXEL / point],
        }


@hookimpl
def register_codecs(register: Callable[[Codec], None]) -> None:
    register(JPEG2000())
