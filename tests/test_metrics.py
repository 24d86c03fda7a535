import math

import numpy as np
import pytest

from codecbench.errors import MetricError
from codecbench.metrics.msssim import MSSSIMMetric, ms_ssim, to_db, window_for
from codecbench.metrics.psnr import PSNRMetric, psnr
from codecbench.testing import synthetic_image


def test_psnr_matches_the_definition() -> None:
    a = np.zeros((4, 4, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] = 10  # one error of 10 over 48 samples: MSE = 100 / 48
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / (100 / 48)))


def test_psnr_identical_is_capped() -> None:
    a = synthetic_image()
    assert psnr(a, a) == 100.0  # PSNR_CAP: a mean over images stays finite
    big = np.zeros((512, 768, 3), np.uint8)
    near = big.copy()
    near[0, 0, 0] = 1  # 108.8 dB uncapped
    assert psnr(big, near) == 100.0


def test_psnr_rejects_shape_mismatch() -> None:
    with pytest.raises(MetricError, match="shape mismatch"):
        psnr(synthetic_image(8, 8), synthetic_image(8, 9))


@pytest.mark.parametrize("band_pixels", [1, 57 * 5, 1 << 18])  # a row, 5 rows + a last partial, all
def test_psnr_in_bands_equals_the_whole_image_value_exactly(
    band_pixels: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codecbench.metrics import psnr as module

    a = synthetic_image(83, 57, seed=1)
    b = np.clip(a.astype(int) + np.random.default_rng(2).integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    whole = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)  # the untiled definition
    monkeypatch.setattr(module, "BAND_PIXELS", band_pixels)
    assert module.squared_error_sum(a, b) / a.size == whole
    assert psnr(a, b) == 10 * math.log10(255.0**2 / whole)


def test_psnr_memory_does_not_grow_with_the_image() -> None:
    import tracemalloc

    a = synthetic_image(1024, 1536)
    b = np.clip(a.astype(np.int16) + 3, 0, 255).astype(np.uint8)
    tracemalloc.start()
    try:
        psnr(a, b)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # whole-image float64 arrays: 48 bytes per pixel, 72 MiB here


def test_psnr_metric_reports_its_column() -> None:
    a = synthetic_image()
    b = np.clip(a.astype(int) + 3, 0, 255).astype(np.uint8)
    assert set(PSNRMetric().compute(a, b)) == set(PSNRMetric.columns)


def test_ms_ssim_identical_is_one_and_degrades_with_noise() -> None:
    a = synthetic_image(192, 192)
    rng = np.random.default_rng(0)
    light = np.clip(a + rng.normal(0, 5, a.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(a + rng.normal(0, 40, a.shape), 0, 255).astype(np.uint8)
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    assert 1 > ms_ssim(a, light) > ms_ssim(a, heavy) > 0


def test_ms_ssim_db_scale() -> None:
    assert to_db(0.99) == pytest.approx(20.0)
    assert to_db(1.0) == 100.0  # capped like PSNR: an exact reconstruction keeps means finite
    assert to_db(1 - 1e-12) == 100.0
    values = MSSSIMMetric().compute(synthetic_image(192, 192), synthetic_image(192, 192, seed=1))
    assert values["ms-ssim-db"] == pytest.approx(to_db(values["ms-ssim"]))


def test_ms_ssim_narrows_its_window_for_small_images_and_refuses_tiny_ones() -> None:
    assert [window_for(side) for side in (512, 161, 160, 80, 64, 33)] == [11, 11, 9, 5, 3, 3]
    face = synthetic_image(80, 80)
    noisy = np.clip(face.astype(int) + np.random.default_rng(0).integers(-30, 31, face.shape), 0, 255)
    assert ms_ssim(face, face) == pytest.approx(1.0, abs=1e-6)
    assert 0 < ms_ssim(face, noisy.astype(np.uint8)) < 1
    with pytest.raises(MetricError, match="at least 33 px"):
        ms_ssim(synthetic_image(32, 32), synthetic_image(32, 32))


def test_an_exact_reconstruction_has_finite_ms_ssim_db() -> None:
    image = synthetic_image(200, 200)
    nearly = image.copy()
    nearly[0, 0, 0] ^= 1
    for reconstruction in (image, nearly):
        values = MSSSIMMetric().compute(image, reconstruction)
        assert values["ms-ssim"] == 1.0 and values["ms-ssim-db"] == 100.0
