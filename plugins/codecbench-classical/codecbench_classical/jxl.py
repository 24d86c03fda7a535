"""JPEG XL through pillow-jxl-plugin (libjxl): quality 0..99 (libjxl's butteraugli distance 25..0.19)."""

from __future__ import annotations

import functools
import re
from importlib import metadata, util
from pathlib import Path
from typing import Any, Callable

import numpy as np

from codecbench import BitstreamError, Codec, hookimpl
from codecbench_classical.options import integer_option
from codecbench_classical.pillow_codec import PillowCodec


@functools.cache
def libjxl_version() -> str:
    """The libjxl version compiled into pillow-jxl-plugin's extension, or ``"unknown"``.

    The binding has no version call, so this reads the ``jpegxl-rs-X+libjxl-Y.Z.W`` crate marker
    that the Rust build leaves in the extension module.
    """
    spec = util.find_spec("pillow_jxl")
    folder = Path(spec.origin).parent if spec and spec.origin else None
    for extension in folder.glob("pillow_jxl*.so") if folder else ():
        found = re.search(rb"\+libjxl-(\d+\.\d+\.\d+)", extension.read_bytes())
        if found:
            return found.group(1).decode()
    return "unknown"


class JPEGXL(PillowCodec):
    name = "jxl"
    description = (
        "JPEG XL lossy (pillow-jxl-plugin / libjxl), VarDCT in the XYB colour space (no chroma "
        "subsampling), quality 0..99 (continuous), effort 7 (libjxl's default)"
    )
    pillow_format = "JXL"
    # Quality 90 is about 1.9 bpp on average on Kodak; quality 0 (distance 25, libjxl's maximum)
    # is the lowest rate. Quality 100 would ask for lossless, which is another mode.
    points = (0, 10, 20, 30, 40, 50, 60, 70, 80, 85, 90)
    point_range = (0, 99)
    integer_points = False
    options = {"effort": "7"}

    def unavailable_reason(self) -> str | None:
        if util.find_spec("pillow_jxl") is None:
            return "pillow-jxl-plugin is not installed: pip install pillow-jxl-plugin"
        return None

    def library_version(self) -> str:
        return f"pillow-jxl-plugin-{metadata.version('pillow-jxl-plugin')}/libjxl-{libjxl_version()}"

    def register_format(self) -> None:
        import pillow_jxl  # noqa: F401  (importing it registers the JXL format with Pillow)

    def save_options(self, point: float) -> dict[str, Any]:
        return {"quality": float(point), "effort": integer_option(self, "effort", 1, 9), "lossless": False}

    def decode(self, data: bytes) -> np.ndarray:
        try:
            return super().decode(data)
        except BitstreamError as exc:
            # libjxl's own message for a bad stream ("Generic Error. Please build libjxl ...")
            # misleads, so name the likely cause instead.
            if "Generic Error" in str(exc):
                raise BitstreamError("cannot decode JXL bitstream: libjxl rejected it (truncated or corrupt)") from exc
            raise


@hookimpl
def register_codecs(register: Callable[[Codec], None]) -> None:
    register(JPEGXL())
