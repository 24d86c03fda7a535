"""The ``rdp`` recipe on AEDC (rate gradient through the soft assignment, rate control, frozen stage
2) and ChannelNorm (no image-size dependence, unlike the paper's instance norm)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from codecbench.errors import CodecError
from codecbench.learned import TrainConfig, read_checkpoint
from codecbench.learned.training import _Run
from codecbench.testing import synthetic_image
from codecbench_aedc import AEDCCodec
from codecbench_aedc.model import ChannelNorm

from aedc_tiny import TINY


def rdp_task(lmbda: float = 1e-4, **options: object):
    codec = AEDCCodec()
    torch.manual_seed(0)
    model = codec.build_model(**{**TINY, "recipe": "rdp", **options}).train()
    return codec.training_task(model, lmbda)


def test_channel_norm_does_not_depend_on_the_image_around_a_pixel():
    # Instance norm normalises by statistics of the whole image, so a 128x128 training crop and
    # the full image it came from give a pixel different values (the shipped model's colours
    # shifted by +24 to +44 levels of green on Kodak); ChannelNorm uses the pixel's channels only.
    torch.manual_seed(0)
    x = torch.randn(1, 6, 16, 16) + torch.linspace(0, 3, 16)  # a brightness ramp across the image
    crop = x[..., :8, :8]
    channel, instance = ChannelNorm(6), torch.nn.InstanceNorm2d(6)
    assert torch.allclose(channel(x)[..., :8, :8], channel(crop), atol=1e-6)
    assert not torch.allclose(instance(x)[..., :8, :8], instance(crop), atol=1e-2)
    y = channel(x)
    assert torch.allclose(y.mean(1), torch.zeros(1, 16, 16), atol=1e-5)


def test_norm_option_instance_by_default():
    assert AEDCCodec().build_model(**TINY).encoder[0][1].__class__ is torch.nn.InstanceNorm2d
    model = AEDCCodec().build_model(**TINY, norm="channel")
    assert isinstance(model.encoder[0][1], ChannelNorm)
    with pytest.raises(ValueError, match="norm"):
        AEDCCodec().build_model(**TINY, norm="batch")


def test_stage_one_sends_the_rate_gradient_to_the_encoder():
    task = rdp_task(lmbda=0.0)  # lambda 0: the loss is the rate alone
    batch = torch.rand(2, 3, 64, 64)
    loss, stats = task.loss(batch)
    loss.backward()
    assert task.discriminator is None and stats["bpp"] > 0
    assert loss.item() == pytest.approx(stats["bpp"], rel=1e-5)
    assert task.model.encoder[0][0].weight.grad.abs().sum() > 0
    assert task.model.entropy_model.logits.grad.abs().sum() > 0
    # the value is the hard symbols' rate: the same with or without the gradient path
    with torch.no_grad():
        w = task.model(batch, rate_gradient=True)["likelihoods"]["w"]
        assert torch.allclose(w, task.model(batch)["likelihoods"]["w"], atol=1e-6)


def test_stage_one_loss_is_lambda_distortion_plus_rate():
    task = rdp_task(lmbda=1e-3)
    batch = torch.rand(2, 3, 64, 64)
    loss, stats = task.loss(batch)
    mse = 10 ** (-stats["psnr"] / 10)
    assert loss.item() == pytest.approx(1e-3 * 255**2 * mse + stats["bpp"], rel=1e-4)
    assert stats["rate_multiplier"] == 1.0  # no target_bpp: no rate control


def test_target_bpp_raises_the_rate_multiplier_and_is_checkpointed():
    task = rdp_task(target_bpp=0.001)  # far below the rate of a random model
    assert "rate_controller" in task.modules()
    for _ in range(3):
        task.loss(torch.rand(2, 3, 64, 64))
    assert task.rate_controller.multiplier().item() > 1
    assert task.export_info()["rate_multiplier"] > 1


def test_stage_two_trains_the_generator_only():
    task = rdp_task(lmbda=1e-3, stage=2)
    assert task.discriminator is not None and "rate_controller" not in task.modules()
    frozen = {k: v.clone() for k, v in task.model.state_dict().items() if not k.startswith("generator.")}
    generator = {k: v.clone() for k, v in task.model.generator.state_dict().items()}
    run = _Run(task, TrainConfig(data=(), out=".", lmbda=1e-3, lr=1e-3), torch.device("cpu"))
    assert set(run.optimizers) == {"main", "discriminator"}
    for _ in range(2):
        stats = run.train_step(torch.rand(2, 3, 32, 32))
    assert {"g_loss", "fm_loss", "d_loss"} <= set(stats)
    after = task.model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in frozen.items())  # encoder and symbol model
    assert any(not torch.equal(v, task.model.generator.state_dict()[k]) for k, v in generator.items())


def test_invalid_recipe_and_stage_are_named():
    with pytest.raises(CodecError, match="stage 2"):
        AEDCCodec().training_task(AEDCCodec().build_model(**TINY, stage=2), 10.0)
    with pytest.raises(CodecError, match="recipe"):
        AEDCCodec().training_task(AEDCCodec().build_model(**TINY, recipe="hific"), 10.0)


def test_validation_reports_the_coders_bytes():
    task = rdp_task()
    task.model.eval()
    with torch.no_grad():
        stats = task.evaluate(torch.rand(1, 3, 64, 96))
    assert stats["bpp_coded"] > 0 and stats["bpp"] <= stats["bound_bpp"] + 1e-6
    assert stats["bpp_coded"] == pytest.approx(stats["bpp"], rel=0.5)  # rANS within a few bytes


def test_stage_one_then_stage_two_from_the_command_line(tmp_path: Path):
    from codecbench.cli import cli

    data = tmp_path / "images"
    data.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_image(64, 80, seed=i)).save(data / f"{i}.png")
    options = [x for k, v in {**TINY, "norm": "channel", "recipe": "rdp"}.items() for x in ("-m", f"{k}={v}")]
    common = ["train", "aedc", "--data", str(data), "--steps", "2", "--crop", "64", "--batch-size", "2",
              "--val-count", "1", "--device", "cpu", "--lambda", "1e-3", "--precision", "bf16",
              "--channels-last", "--threads", "1", *options, "-q"]
    result = CliRunner().invoke(cli, [*common, "--out", str(tmp_path / "s1"), "-m", "target_bpp=0.03"])
    assert result.exit_code == 0, result.output
    stage1 = read_checkpoint(tmp_path / "s1" / "model.pt")
    assert (stage1["recipe"], stage1["stage"]) == ("rdp", 1) and "rate_multiplier" in stage1
    result = CliRunner().invoke(cli, [*common, "--out", str(tmp_path / "s2"), "-m", "stage=2",
                                      "--init", str(tmp_path / "s1" / "model.pt")])
    assert result.exit_code == 0, result.output
    stage2 = read_checkpoint(tmp_path / "s2" / "model.pt")
    assert stage2["stage"] == 2 and set(read_checkpoint(tmp_path / "s2" / "last.pt")["optimizers"]) == {
        "main", "discriminator"}
    for key, value in stage1["state_dict"].items():
        if key.startswith(("encoder.", "entropy_model.")):
            assert torch.equal(value, stage2["state_dict"][key])
