"""AEDC's loss: known values of each term, the weighted sum, the GAN hooks, and a short training run."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from codecbench.errors import CodecError
from codecbench.learned import read_checkpoint
from codecbench.testing import synthetic_image
from codecbench_aedc import AEDCCodec
from codecbench_aedc.training import (
    LAMBDA_FM,
    LAMBDA_MSE,
    feature_matching_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)

from aedc_tiny import TINY


def test_paper_weights():
    assert (LAMBDA_MSE, LAMBDA_FM, AEDCCodec.default_lmbda) == (10.0, 10.0, 10.0)


def test_lsgan_known_values():
    ones = [[torch.ones(1, 1, 2, 2)], [torch.ones(1, 1, 1, 1)]]
    zeros = [[torch.zeros(1, 1, 2, 2)], [torch.zeros(1, 1, 1, 1)]]
    assert lsgan_generator_loss(ones).item() == 0  # D says "real" at every scale
    assert lsgan_generator_loss(zeros).item() == 2.0  # (0 - 1)^2 summed over 2 scales
    assert lsgan_discriminator_loss(ones, zeros).item() == 0
    assert lsgan_discriminator_loss(zeros, ones).item() == 2.0  # 0.5 * (1 + 1) per scale


def test_feature_matching_known_value():
    # 2 scales of 4 hidden layers + logits; fake features off by 0.5 everywhere.
    real = [[torch.zeros(1, 2, 4, 4) for _ in range(5)] for _ in range(2)]
    fake = [[torch.full((1, 2, 4, 4), 0.5) for _ in range(5)] for _ in range(2)]
    assert feature_matching_loss(real, fake).item() == pytest.approx(4 * 0.5)  # weights sum to 4
    assert feature_matching_loss(real, real).item() == 0


@pytest.fixture(scope="module")
def task():
    codec = AEDCCodec()
    torch.manual_seed(0)
    return codec.training_task(codec.build_model(**TINY), 10.0)


def test_loss_is_the_weighted_sum_of_its_terms(task):
    batch = torch.rand(2, 3, 64, 64)
    loss, stats = task.loss(batch)
    t = task.terms(batch, 64, 64)
    with torch.no_grad():
        real, fake = task.discriminator(batch), task.discriminator(t["x_hat"])
        # the paper's MSE is on [-1, 1]: 4x the MSE on [0, 1]
        expected = (lsgan_generator_loss(fake) + 10 * 4 * t["mse"] + 10 * feature_matching_loss(real, fake)
                    + t["bpp"])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert stats["bpp"] == pytest.approx(t["bpp"].item())


def test_rate_term_trains_only_the_symbol_model(task):
    # beta = 0 as in the paper: the symbol model fits the codes, the encoder gets no rate gradient.
    batch = torch.rand(2, 3, 64, 64)
    task.model.zero_grad()
    task.terms(batch, 64, 64)["bpp"].backward()
    assert task.model.entropy_model.logits.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in task.model.encoder.parameters())


def test_gradients_reach_encoder_and_discriminator(task):
    batch = torch.rand(2, 3, 64, 64)
    task.model.zero_grad()
    task.loss(batch)[0].backward()
    assert task.model.encoder[0][0].weight.grad.abs().sum() > 0  # through the soft quantizer
    task.discriminator.zero_grad()
    d_loss, stats = task.discriminator_loss(batch)
    d_loss.backward()
    assert all(s.layers[0][0].weight.grad.abs().sum() > 0 for s in task.discriminator.scales)
    assert stats["d_loss"] > 0


def test_warm_up_stage_has_no_discriminator():
    codec = AEDCCodec()
    task = codec.training_task(codec.build_model(**TINY, adversarial=0, lambda_fm=0), 10.0)
    assert task.discriminator_parameters() == [] and set(task.modules()) == {"model"}
    batch = torch.rand(2, 3, 64, 64)
    loss, stats = task.loss(batch)
    t = task.terms(batch, 64, 64)
    assert loss.item() == pytest.approx((10 * 4 * t["mse"] + t["bpp"]).item(), rel=1e-5)
    assert "g_loss" not in stats


def test_unknown_model_option_named():
    with pytest.raises(CodecError, match="beta"):
        AEDCCodec().build_model(**TINY, beta=1)


def test_train_command_and_resume(tmp_path):
    from codecbench.cli import cli

    data = tmp_path / "images"
    data.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_image(64, 80, seed=i)).save(data / f"{i}.png")
    out = tmp_path / "run"
    options = [x for k, v in TINY.items() for x in ("-m", f"{k}={v}")]
    args = ["train", "aedc", "--data", str(data), "--out", str(out), "--steps", "2", "--crop", "64",
            "--batch-size", "2", "--val-count", "1", "--device", "cpu", *options, "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert read_checkpoint(out / "model.pt")["model_config"]["C"] == 4
    assert set(read_checkpoint(out / "last.pt")["optimizers"]) == {"main", "discriminator"}
    result = CliRunner().invoke(cli, [*args[:-1], "--steps", "3", "-q"]).output
    assert "step 3" in result, result
