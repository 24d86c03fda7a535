"""HiFiC's loss: known values of each term, rate control, the GAN hooks, and a short training run."""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from codecbench.errors import CodecError
from codecbench.learned.checkpoints import read_checkpoint
from codecbench.testing import synthetic_image
from codecbench_hific import HiFiCCodec
from codecbench_hific.training import (
    BETA,
    K_M,
    K_P,
    LAMBDA_B,
    LossSettings,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    mse_255,
    rate_weight,
)

from hific_tiny import TINY


def test_paper_weights():
    assert (K_M, K_P, BETA, LAMBDA_B) == (0.075 / 32, 1.0, 0.15, 1 / 16)


def test_rate_control_switches_at_the_target():
    settings = LossSettings(lambda_a=2.0, target_bpp=0.14)
    assert rate_weight(0.15, settings) == 2.0
    assert rate_weight(0.14, settings) == LAMBDA_B
    assert rate_weight(0.01, settings) == LAMBDA_B


def test_rate_control_needs_lambda_a_above_lambda_b():
    with pytest.raises(CodecError, match="lambda_a > lambda_b"):
        LossSettings(lambda_a=0.01, target_bpp=0.14)


def test_mse_is_on_the_255_scale():
    x = torch.zeros(1, 3, 4, 4)
    assert mse_255(x + 2 / 255, x).item() == pytest.approx(4.0)


def test_adversarial_losses_known_values():
    zero = [torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 1, 1)]  # D = 1/2 everywhere
    assert generator_adversarial_loss(zero).item() == pytest.approx(math.log(2))
    assert discriminator_adversarial_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    sure = [torch.full((1, 1, 2, 2), 20.0)]  # D ~ 1: the generator fools it
    assert generator_adversarial_loss(sure).item() == pytest.approx(0, abs=1e-6)
    assert discriminator_adversarial_loss(sure, sure).item() == pytest.approx(20, rel=1e-3)


@pytest.fixture(scope="module")
def task():
    codec = HiFiCCodec()
    torch.manual_seed(0)
    return codec.training_task(codec.build_model(**TINY), 2.0)


def test_loss_is_the_weighted_sum_of_its_terms(task):
    batch = torch.rand(2, 3, 64, 64)
    task.discriminator.eval()  # spectral norm's power iteration would change D between calls
    torch.manual_seed(1)
    loss, stats = task.loss(batch)
    torch.manual_seed(1)  # same quantization noise
    t = task.terms(batch, 64, 64)
    with torch.no_grad():
        g = generator_adversarial_loss(task.discriminator(t["x_hat"], t["y_hat"]))
    lmbda = 2.0 if t["bpp"].item() > 0.3 else LAMBDA_B
    expected = lmbda * t["bpp"] + K_M * t["mse"] + K_P * t["perceptual"] + BETA * g
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert stats["lambda"] == lmbda and task.perceptual_name == "st-lpips"
    task.discriminator.train()


def test_rate_control_in_the_loss(task):
    batch = torch.rand(2, 3, 64, 64)
    for target, expected in ((1e-6, 2.0), (1e6, LAMBDA_B)):
        task.settings = LossSettings(lambda_a=2.0, target_bpp=target, perceptual="st-lpips")
        assert task.loss(batch)[1]["lambda"] == expected


def test_gradients_reach_generator_and_discriminator(task):
    batch = torch.rand(2, 3, 64, 64)
    for module in task.modules().values():
        module.zero_grad()
    task.loss(batch)[0].backward()
    assert task.model.g_s.net[0].weight.grad.abs().sum() > 0
    d_loss, stats = task.discriminator_loss(batch)
    task.discriminator.zero_grad()
    d_loss.backward()
    assert task.discriminator.scales[1].context.weight.grad.abs().sum() > 0  # conditioned on y_hat
    assert stats["d_loss"] > 0


def test_beta_zero_has_no_discriminator():
    codec = HiFiCCodec()
    task = codec.training_task(codec.build_model(**{**TINY, "beta": 0}), 2.0)
    assert task.discriminator_parameters() == [] and set(task.modules()) == {"model"}


def test_unknown_model_option_named():
    with pytest.raises(CodecError, match="colour"):
        HiFiCCodec().build_model(**TINY, colour=1)


def test_train_command_records_settings_and_resumes(tmp_path):
    from codecbench.cli import cli

    data = tmp_path / "images"
    data.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_image(64, 80, seed=i)).save(data / f"{i}.png")
    out = tmp_path / "run"
    options = [x for k, v in TINY.items() for x in ("-m", f"{k}={v}")]
    args = ["train", "hific", "--data", str(data), "--out", str(out), "--steps", "2", "--crop", "64",
            "--batch-size", "2", "--val-count", "1", "--device", "cpu", "--lambda", "2", *options, "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    model = read_checkpoint(out / "model.pt")
    assert model["model_config"]["perceptual"] == "st-lpips" and model["lmbda"] == 2.0
    assert set(read_checkpoint(out / "last.pt")["optimizers"]) == {"main", "aux", "discriminator"}
    result = CliRunner().invoke(cli, [*args[:-1], "--steps", "3", "-q"]).output
    assert "step 3" in result, result
