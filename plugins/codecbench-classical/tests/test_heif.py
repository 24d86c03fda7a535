"""HEVC intra in HEIF through pillow-heif's x265: contract, rate ordering, options, bad streams."""

from __future__ import annotations

import io

import numpy as np
import pytest
from classical_checks import assert_rejects_bad_streams, bpp_per_point
from PIL import Image

from codecbench import BitstreamError, CodecError
from codecbench.testing import check_codec, synthetic_image
from codecbench_classical.avif import AVIF
from codecbench_classical.heif import HEVCHEIF


def test_contract_on_synthetic_images() -> None:
    check_codec(HEVCHEIF())
    check_codec(HEVCHEIF(), synthetic_image(33, 57, seed=3))


def test_rate_grows_with_the_point_on_kodak(kodak_image: np.ndarray) -> None:
    bpps = bpp_per_point(HEVCHEIF(), kodak_image)
    assert bpps == sorted(bpps), bpps
    assert bpps[0] < 0.1 and bpps[-1] > 1.0, bpps


@pytest.mark.parametrize("chroma", ["420", "444"])
def test_chroma_option_sets_the_coded_chroma_format(chroma: str) -> None:
    data = HEVCHEIF().with_options(chroma=chroma).encode(synthetic_image(), 50)
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "HEIF" and img.info["chroma"] == int(chroma)


def test_invalid_options_name_the_problem() -> None:
    with pytest.raises(CodecError, match='Invalid preset "quick"'):
        HEVCHEIF().with_options(preset="quick").encode(synthetic_image(), 50)
    with pytest.raises(CodecError, match='Invalid tune "film"'):
        HEVCHEIF().with_options(tune="film").encode(synthetic_image(), 50)


def test_version_names_libheif_and_x265() -> None:
    version = HEVCHEIF().version()
    assert "libheif-" in version and "x265-" in version


def test_bad_streams_raise_bitstream_error() -> None:
    assert_rejects_bad_streams(HEVCHEIF())


def test_an_avif_stream_is_not_taken_for_hevc() -> None:
    with pytest.raises(BitstreamError):
        HEVCHEIF().decode(AVIF().encode(synthetic_image(), 50))
