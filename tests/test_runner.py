import json
from pathlib import Path

import pytest
from toy_codecs import Broken, Quantizer, WrongShape

from codecbench.dataset import FolderDataset
from codecbench.machine import cpu_name
from codecbench.metrics.msssim import MSSSIMMetric
from codecbench.metrics.psnr import PSNRMetric
from codecbench.results import ResultStore
from codecbench.runner import Runner, plan_units
from codecbench.unit import bits_per_pixel, execute_unit
from codecbench.testing import synthetic_image


def run(store: ResultStore, codecs, folder: Path, metrics=None):
    dataset = FolderDataset(folder)
    units = plan_units(codecs, dataset, dataset.images(), {c.name: c.points for c in codecs})
    return Runner(store, metrics or [PSNRMetric()], progress=False).run(units)


def test_bpp_is_bytes_over_pixels() -> None:
    assert bits_per_pixel(b"x" * 12, 4, 6) == 4.0


def test_execute_unit_measures_real_bytes() -> None:
    image = synthetic_image(16, 8)
    result = execute_unit(Quantizer(), 4, image, [PSNRMetric()])
    assert result.status == "ok"
    assert result.bpp == 8 * (5 + 16 * 8 * 3) / (16 * 8)
    assert result.encode_s > 0 and result.decode_s > 0 and 20 < result.metrics["psnr"] < 40


def test_failures_are_rows_and_the_run_goes_on(tmp_path: Path, image_folder: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        summary = run(store, [Broken(), WrongShape(), Quantizer()], image_folder)
        frame = store.frame()
    assert summary.computed == 3 * 2 + 9  # broken fails on one image per point, wrong-shape everywhere
    failed = frame[frame.status == "failed"]
    assert set(failed.codec) == {"broken", "wrong-shape"}
    assert failed[failed.codec == "broken"].error.str.contains("cannot encode 48-row").all()
    assert failed[failed.codec == "wrong-shape"].error.str.contains("expected").all()
    assert summary.failed == len(failed) == 3 + 9


def test_rerun_skips_complete_rows(tmp_path: Path, image_folder: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        first = run(store, [Quantizer()], image_folder)
        Quantizer.encodes = 0
        second = run(store, [Quantizer()], image_folder)
    assert first.computed == 9 and second.skipped == 9 and second.computed == 0
    assert Quantizer.encodes == 0


def test_new_metrics_are_added_from_stored_streams_without_re_encoding(
    tmp_path: Path, image_folder: Path
) -> None:
    big = tmp_path / "big"
    big.mkdir()
    from PIL import Image

    Image.fromarray(synthetic_image(192, 200)).save(big / "a.png")
    with ResultStore(tmp_path / "r.sqlite") as store:
        run(store, [Quantizer()], big)
        Quantizer.encodes = 0
        summary = run(store, [Quantizer()], big, [PSNRMetric(), MSSSIMMetric()])
        frame = store.frame()
    assert summary.metrics_added == 3 and Quantizer.encodes == 0
    assert frame["ms-ssim"].notna().all()


def test_failed_rows_are_retried(tmp_path: Path, image_folder: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        run(store, [Broken()], image_folder)
        Broken.encode = Quantizer.encode  # the cause of the failure is fixed
        try:
            summary = run(store, [Broken()], image_folder)
        finally:
            del Broken.encode
        assert summary.failed == 0 and summary.computed == 3
        assert (store.frame().attempts[store.frame().image == "img1.png"] == 2).all()


def test_unavailable_codec_fails_each_unit_with_its_reason(tmp_path: Path, image_folder: Path) -> None:
    class Missing(Quantizer):
        name = "missing"

        def unavailable_reason(self) -> str:
            return "binary not found; install it"

    with ResultStore(tmp_path / "r.sqlite") as store:
        summary = run(store, [Missing()], image_folder)
    assert summary.failed == 9
    assert all("binary not found" in f.error for f in summary.failures)


def test_environment_is_recorded(tmp_path: Path, image_folder: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        run(store, [Quantizer()], image_folder)
        runs = store.runs()
    assert len(runs) == 1 and '"codecbench": "0.1.0"' in runs.environment[0]
    assert json.loads(runs.environment[0])["cpu"] == cpu_name()  # which CPU encoded the rows


@pytest.mark.parametrize("point", [2, 8])
def test_lossless_point_gives_capped_psnr(point: int, tmp_path: Path, image_folder: Path) -> None:
    result = execute_unit(Quantizer(), point, synthetic_image(8, 8), [PSNRMetric()])
    assert (result.metrics["psnr"] == 100.0) == (point == 8)  # PSNR_CAP, never inf
