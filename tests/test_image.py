import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codecbench.errors import ImageError
from codecbench.image import read_image, write_image
from codecbench.testing import synthetic_image


def test_rgb_roundtrip(tmp_path: Path) -> None:
    image = synthetic_image(31, 17)
    write_image(image, tmp_path / "a.png")
    assert np.array_equal(read_image(tmp_path / "a.png"), image)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16", "CMYK"])
def test_other_modes_are_converted_with_a_warning(tmp_path: Path, mode: str, caplog) -> None:
    source = Image.fromarray(synthetic_image(20, 30))
    if mode == "I;16":
        converted = Image.fromarray((np.asarray(source.convert("L"), dtype=np.uint16) * 257))
        assert converted.mode == "I;16"
    else:
        converted = source.convert(mode)
    path = tmp_path / ("a.tif" if mode == "CMYK" else "a.png")
    converted.save(path)
    with caplog.at_level("WARNING"):
        image = read_image(path)
    assert image.shape == (20, 30, 3) and image.dtype == np.uint8
    assert str(path) in caplog.text and "RGB" in caplog.text


def test_sixteen_bit_keeps_the_high_byte(tmp_path: Path) -> None:
    grey = np.full((4, 4), 0xAB12, dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "g.png")
    assert (read_image(tmp_path / "g.png") == 0xAB).all()


def test_alpha_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    assert (read_image(tmp_path / "t.png") == 255).all()


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such image file"):
        read_image(tmp_path / "nope.png")


def test_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_text("hello")
    with pytest.raises(ImageError, match="x.png: not an image"):
        read_image(tmp_path / "x.png")


def test_truncated_image(tmp_path: Path) -> None:
    write_image(synthetic_image(64, 64), tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "b.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="b.png: corrupt or truncated"):
        read_image(tmp_path / "b.png")


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A small real PNG whose header (IHDR, CRC fixed up) claims ``width x height``."""
    write_image(synthetic_image(8, 8), path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("side", [10_000, 30_000])  # Pillow only warns for the first; both refused
def test_decompression_bombs_are_refused_before_any_pixel_is_decoded(
    tmp_path: Path, side: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import ImageFile

    bomb = png_declaring(tmp_path / "bomb.png", side, side)

    def load(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded (allocated) before the size was refused")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    with pytest.raises(ImageError, match="bomb.png: refused as a possible decompression bomb"):
        read_image(bomb)
