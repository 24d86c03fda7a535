"""AVIF through Pillow's libavif: contract, rate ordering on Kodak, chroma option, bad streams."""

from __future__ import annotations

import numpy as np
import pytest
from classical_checks import assert_rejects_bad_streams, bpp_per_point

from codecbench import BitstreamError, CodecError
from codecbench.testing import check_codec, synthetic_image
from codecbench_classical.avif import AVIF
from codecbench_classical.heif import HEVCHEIF


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def test_contract_on_synthetic_images() -> None:
    check_codec(AVIF())
    check_codec(AVIF(), synthetic_image(33, 57, seed=3))


def test_rate_grows_with_the_point_on_kodak(kodak_image: np.ndarray) -> None:
    bpps = bpp_per_point(AVIF(), kodak_image)
    assert bpps == sorted(bpps), bpps
    assert bpps[0] < 0.1 and bpps[-1] > 1.0, bpps


def test_444_keeps_more_colour_than_the_default_420() -> None:
    image = synthetic_image(64, 96, seed=1)
    default, full = AVIF(), AVIF().with_options(subsampling="4:4:4")
    assert psnr(image, full.decode(full.encode(image, 95))) > psnr(image, default.decode(default.encode(image, 95)))
    with pytest.raises(CodecError, match='Invalid subsampling "411"'):
        AVIF().with_options(subsampling="411").encode(image, 50)


def test_version_names_libavif_and_its_encoder() -> None:
    assert "libavif-" in AVIF().version() and "aom-" in AVIF().version()


def test_bad_streams_raise_bitstream_error() -> None:
    assert_rejects_bad_streams(AVIF())


def test_an_hevc_heif_stream_is_not_taken_for_avif() -> None:
    # Both are HEIF containers; the AVIF decoder must refuse the HEVC one.
    with pytest.raises(BitstreamError):
        AVIF().decode(HEVCHEIF().encode(synthetic_image(), 50))
