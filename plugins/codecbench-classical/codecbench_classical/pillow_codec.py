"""Shared machinery for codecs that Pillow (or a Pillow plugin) encodes and decodes."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import PIL
from PIL import Image

from codecbench import BitstreamError, Codec


class PillowCodec(Codec):
    """A codec written through ``Image.save(format=...)`` and read back with ``Image.open``."""

    pillow_format: str

    def register_format(self) -> None:
        """Make ``pillow_format`` known to Pillow (a no-op for formats Pillow itself provides)."""

    def save_options(self, point: float) -> dict[str, Any]:
        """Keyword arguments for ``Image.save`` at ``point``."""
        raise NotImplementedError

    def library_version(self) -> str:
        """Version of the library doing the coding (recorded with every result)."""
        return f"pillow-{PIL.__version__}"

    def version(self) -> str:
        return self.library_version()

    def encode(self, image: np.ndarray, point: float) -> bytes:
        point = self.validate_point(point)
        self.register_format()
        buffer = io.BytesIO()
        Image.fromarray(image, "RGB").save(buffer, format=self.pillow_format, **self.save_options(point))
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        self.register_format()
        try:
            with warnings.catch_warnings():
                # Pillow only warns between its pixel limit and twice it: refuse those sizes too,
                # at open (header only), before any pixel is allocated, as read_image does.
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as img:
                    if img.format != self.pillow_format:
                        raise BitstreamError(f"not a {self.pillow_format} bitstream (found {img.format})")
                    img.load()
                    return np.asarray(img.convert("RGB"), dtype=np.uint8)
        except BitstreamError:
            raise
        except Exception as exc:
            raise BitstreamError(f"cannot decode {self.pillow_format} bitstream: {exc}") from exc
