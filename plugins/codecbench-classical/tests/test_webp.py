"""WebP through Pillow: contract, rate ordering on Kodak, options, bad streams."""

from __future__ import annotations

import numpy as np
import pytest
from classical_checks import assert_rejects_bad_streams, bpp_per_point

from codecbench import CodecError
from codecbench.testing import check_codec, synthetic_image
from codecbench_classical.webp import WebP


def test_contract_on_synthetic_images() -> None:
    check_codec(WebP())
    check_codec(WebP(), synthetic_image(33, 57, seed=3))


def test_rate_grows_with_the_point_on_kodak(kodak_image: np.ndarray) -> None:
    bpps = bpp_per_point(WebP(), kodak_image)
    assert bpps == sorted(bpps), bpps
    assert bpps[0] < 0.2 and bpps[-1] > 1.0, bpps


def test_stream_is_lossy_webp_and_records_libwebp() -> None:
    data = WebP().encode(synthetic_image(), 50)
    assert data[:4] == b"RIFF" and data[8:16] == b"WEBPVP8 "  # lossy (VP8), not VP8L
    assert "libwebp-" in WebP().version()


def test_method_option_is_used_and_validated() -> None:
    image = synthetic_image(64, 96, seed=1)
    assert WebP().with_options(method="0").encode(image, 50) != WebP().encode(image, 50)
    with pytest.raises(CodecError, match='Invalid method "9"'):
        WebP().with_options(method="9").encode(image, 50)


def test_point_outside_the_range_is_rejected() -> None:
    with pytest.raises(CodecError, match="expected 0..100"):
        WebP().encode(synthetic_image(), 101)


def test_bad_streams_raise_bitstream_error() -> None:
    assert_rejects_bad_streams(WebP())
