"""JPEG 2000 through Pillow's OpenJPEG: the point is a target rate, continuous and monotonic."""

from __future__ import annotations

import numpy as np
import pytest
from classical_checks import assert_rejects_bad_streams, bpp_per_point

from codecbench import CodecError
from codecbench.testing import check_codec, synthetic_image
from codecbench_classical.jpeg2000 import JPEG2000


def test_contract_on_synthetic_images() -> None:
    check_codec(JPEG2000())
    check_codec(JPEG2000(), synthetic_image(33, 57, seed=3))


def test_rate_follows_the_target_on_kodak(kodak_image: np.ndarray) -> None:
    bpps = bpp_per_point(JPEG2000(), kodak_image)
    assert bpps == sorted(bpps), bpps
    # OpenJPEG allocates the rate: above the header floor, bpp lands within 5% of the target.
    for point, bpp in zip(JPEG2000.points, bpps):
        if point >= 0.02:
            assert bpp == pytest.approx(point, rel=0.05), (point, bpp)


def test_any_point_in_the_range_is_accepted() -> None:
    image = synthetic_image(128, 128)
    sizes = [len(JPEG2000().encode(image, p)) for p in (0.25, 0.333, 0.5)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3
    with pytest.raises(CodecError, match="expected 0.005..8"):
        JPEG2000().encode(image, 9)


def test_stream_is_a_raw_codestream_and_records_openjpeg() -> None:
    assert JPEG2000().encode(synthetic_image(), 1.0)[:4] == b"\xff\x4f\xff\x51"  # SOC, SIZ markers
    assert "openjpeg-" in JPEG2000().version()


def test_bad_streams_raise_bitstream_error() -> None:
    assert_rejects_bad_streams(JPEG2000())
