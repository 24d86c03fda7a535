"""HEVC intra in HEIF through pillow-heif (libheif with the x265 encoder shipped in its wheel)."""

from __future__ import annotations

import functools
import re
from typing import Any, Callable

from codecbench import Codec, hookimpl
from codecbench_classical.options import choice_option
from codecbench_classical.pillow_codec import PillowCodec

X265_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")
X265_TUNES = ("psnr", "ssim", "grain", "fastdecode")


@functools.cache
def register_heif_opener() -> None:
    """Register pillow-heif's HEIF reader and writer with Pillow (once per process)."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def libheif_info() -> dict[str, Any]:
    """pillow-heif's report of libheif and its encoders, or ``{}`` when pillow-heif is missing."""
    try:
        import pillow_heif
    except ImportError:
        return {}
    return pillow_heif.libheif_info()


class HEVCHEIF(PillowCodec):
    name = "hevc-heif"
    description = (
        "HEVC intra in HEIF (pillow-heif / libheif / x265), YCbCr 4:2:0 by default (-o chroma=444), "
        "x265 preset slow, tune ssim (libheif's defaults; tune ssim is also what bpgenc uses), "
        "quality 0..100"
    )
    pillow_format = "HEIF"
    # Quality 60 is about 2 bpp on average on Kodak; quality 0 is the lowest rate x265 reaches here.
    points = (0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60)
    point_range = (0, 100)
    options = {"chroma": "420", "preset": "slow", "tune": "ssim"}

    def unavailable_reason(self) -> str | None:
        info = libheif_info()
        if not info:
            return "pillow-heif is not installed: pip install pillow-heif"
        if "x265" not in info.get("encoders", {}):
            return "this pillow-heif has no x265 encoder; install the PyPI wheel: pip install --force-reinstall pillow-heif"
        return None

    def library_version(self) -> str:
        import pillow_heif

        info = libheif_info()
        x265 = re.search(r"\(([^)]+)\)", info.get("encoders", {}).get("x265", ""))
        return (f"pillow-heif-{pillow_heif.__version__}/libheif-{info['libheif']}"
                f"/x265-{x265.group(1) if x265 else 'unknown'}")

    def register_format(self) -> None:
        register_heif_opener()

    def save_options(self, point: float) -> dict[str, Any]:
        return {
            "quality": int(point),
            "chroma": choice_option(self, "chroma", ("420", "422", "444")),
            "enc_params": {
                "preset": choice_option(self, "preset", X265_PRESETS),
                "tune": choice_option(self, "tune", X265_TUNES),
            },
            "tile_size": 0,  # one HEVC picture, not a grid of tiles
        }


@hookimpl
def register_codecs(register: Callable[[Codec], None]) -> None:
    register(HEVCHEIF())
