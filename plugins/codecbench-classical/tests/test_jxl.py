"""JPEG XL through pillow-jxl-plugin: contract, continuous quality, rate ordering, bad streams."""

from __future__ import annotations

import numpy as np
import pytest
from classical_checks import assert_rejects_bad_streams, bpp_per_point

from codecbench import CodecError
from codecbench.testing import check_codec, synthetic_image
from codecbench_classical.jpeg import JPEG
from codecbench_classical.jxl import JPEGXL, libjxl_version


def test_contract_on_synthetic_images() -> None:
    check_codec(JPEGXL())
    check_codec(JPEGXL(), synthetic_image(33, 57, seed=3))


def test_rate_grows_with_the_point_on_kodak(kodak_image: np.ndarray) -> None:
    bpps = bpp_per_point(JPEGXL(), kodak_image)
    assert bpps == sorted(bpps), bpps
    assert bpps[0] < 0.3 and bpps[-1] > 1.0, bpps


def test_quality_is_continuous() -> None:
    image = synthetic_image(128, 128)
    assert JPEGXL().encode(image, 42.5) != JPEGXL().encode(image, 42)
    with pytest.raises(CodecError, match="expected 0..99"):
        JPEGXL().encode(image, 100)


def test_effort_option_is_validated() -> None:
    with pytest.raises(CodecError, match='Invalid effort "0"'):
        JPEGXL().with_options(effort="0").encode(synthetic_image(), 50)


def test_version_reads_libjxl_from_the_extension() -> None:
    assert libjxl_version()[0].isdigit()
    assert JPEGXL().version().endswith(f"/libjxl-{libjxl_version()}")


def test_bad_streams_raise_bitstream_error() -> None:
    assert_rejects_bad_streams(JPEGXL())
    with pytest.raises(CodecError, match="not a JXL bitstream"):
        JPEGXL().decode(JPEG().encode(synthetic_image(), 50))
