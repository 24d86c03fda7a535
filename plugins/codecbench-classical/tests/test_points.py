"""Every classical codec sweeps from the lowest rate its knob allows and records its library version."""

from __future__ import annotations

import re

import pytest

from codecbench import Codec
from codecbench_classical.avif import AVIF
from codecbench_classical.bpg import BPG
from codecbench_classical.heif import HEVCHEIF
from codecbench_classical.jpeg import JPEG
from codecbench_classical.jpeg2000 import JPEG2000
from codecbench_classical.jxl import JPEGXL
from codecbench_classical.webp import WebP

CODECS = [JPEG(), WebP(), AVIF(), JPEG2000(), HEVCHEIF(), JPEGXL(), BPG()]
LIBRARY = {"jpeg": "libjpeg-turbo", "webp": "libwebp", "avif": "libavif", "jpeg2000": "openjpeg",
           "hevc-heif": "x265", "jxl": "libjxl"}


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_sweep_starts_at_the_lowest_rate_the_knob_allows(codec: Codec) -> None:
    assert codec.point_range is not None
    assert codec.points[0] == codec.point_range[0]
    assert list(codec.points) == sorted(set(codec.points))
    assert codec.points[-1] <= codec.point_range[1]


@pytest.mark.parametrize("codec", [c for c in CODECS if c.name in LIBRARY], ids=lambda c: c.name)
def test_version_names_the_library_and_its_version(codec: Codec) -> None:
    assert re.search(rf"{LIBRARY[codec.name]}-\d+\.\d+", codec.version()), codec.version()
