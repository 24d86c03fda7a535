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


def test_coded_likelihoods_are_those_of_the_eval_forward():
    codec = HiFiCCodec()
    torch.manual_seed(0)
    model = codec.build_model(**TINY).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    coded = model.coded_likelihoods(out["y"], out["z"])
    for name in ("y", "z"):
        assert torch.equal(coded[name], out["likelihoods"][name]), name


def test_dual_rate_control_follows_the_coded_rate():
    codec = HiFiCCodec()
    torch.manual_seed(0)
    task = codec.training_task(codec.build_model(**{**TINY, "rate_control": "dual", "target_bpp": 1e-3}), 2.0)
    assert "rate_controller" in task.modules()
    batch = torch.rand(2, 3, 64, 64)
    _, first = task.loss(batch)
    _, second = task.loss(batch)
    assert first["lambda"] == pytest.approx(2.0)  # m starts at 1
    # the coded rate is far above the target: m grows by exp(0.002 * log(bpp_coded / target))
    assert second["lambda"] == pytest.approx(2.0 * (first["bpp_coded"] / 1e-3) ** 0.002, rel=1e-5)
    assert task.export_info()["rate_control"] == "dual"


def test_dual_rate_control_needs_no_lambda_b_below_lambda_a():
    assert LossSettings(lambda_a=0.01, target_bpp=0.14, rate_control="dual").lambda_a == 0.01
    with pytest.raises(CodecError, match="rate_control"):
        LossSettings(lambda_a=2.0, rate_control="pid")
    with pytest.raises(CodecError, match="stage"):
        LossSettings(lambda_a=2.0, stage=3)


def test_stage_2_trains_the_generator_only():
    codec = HiFiCCodec()
    torch.manual_seed(0)
    task = codec.training_task(codec.build_model(**TINY, stage=2, rate_control="dual"), 2.0)
    assert task.aux_parameters() == [] and task.aux_loss() is None
    assert set(task.modules()) == {"model", "discriminator"}  # no rate control: the rate is frozen
    loss, stats = task.loss(torch.rand(2, 3, 64, 64))
    assert stats["lambda"] == 0.0
    loss.backward()
    assert task.model.g_s.net[0].weight.grad.abs().sum() > 0
    frozen = [p for n, p in task.model.named_parameters() if not n.startswith("g_s.")]
    assert frozen and all(p.grad is None and not p.requires_grad for p in frozen)
    assert {id(p) for p in task.main_parameters()} == {id(p) for p in task.model.g_s.parameters()}


def test_two_stage_recipe_through_the_command(tmp_path):
    from codecbench.cli import cli

    data = tmp_path / "images"
    data.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_image(64, 80, seed=i)).save(data / f"{i}.png")
    options = [x for k, v in TINY.items() for x in ("-m", f"{k}={v}")]
    common = ["--data", str(data), "--steps", "2", "--crop", "64", "--batch-size", "2", "--val-count", "1",
              "--device", "cpu", "--lambda", "2", *options, "-q"]
    stage1, stage2 = tmp_path / "stage1", tmp_path / "stage2"
    result = CliRunner().invoke(cli, ["train", "hific", "--out", str(stage1), *common,
                                      "-m", "beta=0", "-m", "rate_control=dual"])
    assert result.exit_code == 0, result.output
    assert set(read_checkpoint(stage1 / "last.pt")["modules"]) == {"model", "rate_controller"}
    result = CliRunner().invoke(cli, ["train", "hific", "--out", str(stage2), "--init", str(stage1 / "model.pt"),
                                      *common, "-m", "stage=2"])
    assert result.exit_code == 0, result.output
    first, second = read_checkpoint(stage1 / "model.pt"), read_checkpoint(stage2 / "model.pt")
    assert second["stage"] == 2 and first["rate_control"] == "dual"
    for name, tensor in first["state_dict"].items():
        if not name.startswith("g_s."):  # E and the probability model unchanged by stage 2
            assert torch.equal(tensor, second["state_dict"][name]), name
