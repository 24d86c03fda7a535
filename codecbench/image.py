"""Reading image files into the harness's one convention: ``H x W x 3`` ``uint8`` RGB arrays."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from codecbench.errors import ImageError

log = logging.getLogger(__name__)


def _to_rgb(img: Image.Image, path: Path) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit or 32-bit integer grey: keep the top 8 bits of the 16-bit range.
        arr = np.asarray(img, dtype=np.uint32) >> 8
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
        log.warning("%s: %s image reduced to 8-bit and converted to RGB", path, mode)
        return img.convert("RGB")
    if mode == "F":
        raise ImageError(f"{path}: floating-point images (mode F) are not supported; save as 8-bit RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        log.warning("%s: %s image: alpha composited over white, converted to RGB", path, mode)
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    log.warning("%s: %s image converted to RGB", path, mode)
    return img.convert("RGB")


def _source_notes(img: Image.Image, path: Path) -> None:
    """Warn, naming the file, about what the conversion to 8-bit RGB drops silently otherwise:
    frames after the first, and the low bits of 16-bit colour (Pillow opens a 16-bit RGB PNG or
    TIFF as 8-bit ``RGB``)."""
    frames = getattr(img, "n_frames", 1) or 1
    if frames > 1:
        log.warning("%s: animated or multi-page image (%d frames): only the first is used", path,
                    frames)
    if img.mode == "RGB" or img.mode == "RGBA":
        rawmodes = [t[3] if isinstance(t[3], str) else (t[3] or ("",))[0] for t in img.tile]
        if any(isinstance(r, str) and "16" in r for r in rawmodes):
            log.warning("%s: 16-bit %s image reduced to 8 bits per channel", path, img.mode)


def read_image(path: str | Path) -> np.ndarray:
    """Read ``path`` as an ``H x W x 3`` ``uint8`` RGB array.

    Grey, palette, alpha, 16-bit and animated images (first frame) are converted with a logged
    warning naming the file. Missing,
    truncated or corrupt files and decompression bombs raise :class:`ImageError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _source_notes(img, path)
                img.load()
                rgb = _to_rgb(img, path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: refused as a possible decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path}: not an image file Pillow can read") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: corrupt or truncated image ({exc})") from exc
    array = np.asarray(rgb, dtype=np.uint8)
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"{path}: empty image ({array.shape[1]}x{array.shape[0]})")
    return np.ascontiguousarray(array)


def write_image(image: np.ndarray, path: str | Path) -> None:
    """Write an ``H x W x 3`` ``uint8`` array as a lossless PNG."""
    Image.fromarray(image, "RGB").save(path, format="PNG")
