"""WebP (lossy VP8) through Pillow's libwebp: quality 0..100, always 4:2:0."""

from __future__ import annotations

from typing import Any, Callable

import PIL
from PIL import features

from codecbench import Codec, hookimpl
from codecbench_classical.options import integer_option
from codecbench_classical.pillow_codec import PillowCodec


class WebP(PillowCodec):
    name = "webp"
    description = (
        "WebP lossy (Pillow / libwebp), VP8 in YCbCr 4:2:0 (the only chroma format of lossy WebP), "
        "quality 0..100, method 6 (slowest, smallest)"
    )
    pillow_format = "WEBP"
    # Quality 90 is about 1.9 bpp on average on Kodak; quality 0 is the lowest rate libwebp reaches.
    points = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 85, 90)
    point_range = (0, 100)
    options = {"method": "6"}

    def unavailable_reason(self) -> str | None:
        if not features.check("webp"):
            return "this Pillow was built without WebP; reinstall a PyPI wheel: pip install --force-reinstall pillow"
        return None

    def library_version(self) -> str:
        return f"pillow-{PIL.__version__}/libwebp-{features.version('webp')}"

    def save_options(self, point: float) -> dict[str, Any]:
        return {"quality": int(point), "method": integer_option(self, "method", 0, 6), "lossless": False}


@hookimpl
def register_codecs(register: Callable[[Codec], None]) -> None:
    register(WebP())
