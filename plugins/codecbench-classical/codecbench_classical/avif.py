"""AVIF (AV1 intra) through Pillow's libavif and its AV1 encoder (libaom in PyPI wheels)."""

from __future__ import annotations

from typing import Any, Callable

import PIL
from PIL import features

from codecbench import Codec, hookimpl
from codecbench_classical.options import choice_option, integer_option
from codecbench_classical.pillow_codec import PillowCodec

# Pillow's `subsampling` argument for AVIF.
SUBSAMPLING = {"420": "4:2:0", "422": "4:2:2", "444": "4:4:4"}


def encoder_versions() -> str:
    """The AV1 encoders libavif was built with, e.g. ``aom-3.14.1`` (empty when not reported)."""
    try:
        from PIL import _avif  # Pillow exposes the AV1 codec versions only here
    except ImportError:
        return ""
    # codec_versions() reads like "dav1d [dec]:1.5.3-0-gb546257, aom [enc]:3.14.1"
    encoders = []
    for entry in _avif.codec_versions().split(","):
        name, _, version = entry.strip().partition(":")
        if "[enc]" in name:
            encoders.append(f"{name.replace('[enc]', '').strip()}-{version.strip()}")
    return "/".join(encoders)


class AVIF(PillowCodec):
    name = "avif"
    description = (
        "AVIF (Pillow / libavif / libaom), AV1 intra, YCbCr 4:2:0 by default (Pillow's default; "
        "-o subsampling=444), quality 0..100, encoder speed 6"
    )
    pillow_format = "AVIF"
    # Quality 85 is about 2 bpp on average on Kodak; quality 0 (quantizer 63) is the lowest rate.
    points = (0, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85)
    point_range = (0, 100)
    options = {"subsampling": "420", "speed": "6"}

    def unavailable_reason(self) -> str | None:
        if not features.check("avif"):
            return "this Pillow was built without AVIF; install Pillow>=11.3 from PyPI: pip install -U pillow"
        return None

    def library_version(self) -> str:
        encoders = encoder_versions()
        return f"pillow-{PIL.__version__}/libavif-{features.version('avif')}" + (f"/{encoders}" if encoders else "")

    def save_options(self, point: float) -> dict[str, Any]:
        return {
            "quality": int(point),
            "subsampling": SUBSAMPLING[choice_option(self, "subsampling", tuple(SUBSAMPLING))],
            "speed": integer_option(self, "speed", 0, 10),
        }


@hookimpl
def register_codecs(register: Callable[[Codec], None]) -> None:
    register(AVIF())
