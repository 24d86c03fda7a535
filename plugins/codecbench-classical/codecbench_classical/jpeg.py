"""JPEG through Pillow (libjpeg-turbo): quality 1..95, 4:2:0 by default, 4:4:4 as an option."""

from __future__ import annotations

from typing import Any, Callable

import PIL
from PIL import features

from codecbench import Codec, CodecError, hookimpl
from codecbench_classical.pillow_codec import PillowCodec

# Pillow's `subsampling` argument: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0.
SUBSAMPLING = {"444": 0, "422": 1, "420": 2}
BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


class JPEG(PillowCodec):
    name = "jpeg"
    description = "JPEG (Pillow / libjpeg-turbo), baseline Huffman, quality 1..95"
    pillow_format = "JPEG"
    # Quality 1 (every quantizer at its maximum) is the lowest rate libjpeg reaches, about 0.17 bpp
    # on average on Kodak at 4:2:0; quality 85 is about 1.9 bpp and 95 about 3.4 bpp.
    points = (1, *range(5, 100, 5))
    point_range = (1, 95)
    options = {"subsampling": "420", "optimize": "false"}

    def library_version(self) -> str:
        turbo = features.version("libjpeg_turbo")
        return f"pillow-{PIL.__version__}/libjpeg-turbo-{turbo}"

    def save_options(self, point: float) -> dict[str, Any]:
        subsampling = str(self.config["subsampling"]).replace(":", "")
        if subsampling not in SUBSAMPLING:
            raise CodecError(
                f'Invalid subsampling "{self.config["subsampling"]}" for jpeg; expected 420, 422 or 444'
            )
        optimize = BOOLEANS.get(str(self.config["optimize"]).lower())
        if optimize is None:
            raise CodecError(
                f'Invalid optimize "{self.config["optimize"]}" for jpeg; expected true or false'
            )
        return {"quality": int(point), "subsampling": SUBSAMPLING[subsampling], "optimize": optimize}


@hookimpl
def register_codecs(register: Callable[[Codec], None]) -> None:
    register(JPEG())
