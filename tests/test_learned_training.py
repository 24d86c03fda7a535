"""The shared training loop: exact resume, adversarial hooks, presets and ``codecbench train``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

from codecbench.learned import TrainConfig, TrainingError, TrainingTask, train
from codecbench.learned.checkpoints import is_exported, read_checkpoint
from codecbench.learned.data import RandomCrops, list_images, split_holdout
from codecbench.learned.training import apply_preset, to_channels_last
from codecbench.testing import synthetic_image

from learned_toy import ToyLearnedCodec, toy_config, toy_task


def test_resumed_run_matches_uninterrupted_run(image_folder, tmp_path):
    whole = train(toy_task, toy_config(image_folder, tmp_path / "whole"), codec="toy-learned")
    first = train(toy_task, toy_config(image_folder, tmp_path / "split", steps=2), codec="toy-learned")
    assert first.step == 2
    resumed = train(toy_task, toy_config(image_folder, tmp_path / "split"), codec="toy-learned")
    assert resumed.step == whole.step == 4
    a, b = read_checkpoint(whole.state_path), read_checkpoint(resumed.state_path)
    for name, tensor in a["modules"]["model"].items():
        assert torch.equal(tensor, b["modules"]["model"][name]), name
    assert a["optimizers"]["main"]["state"][0]["exp_avg"].equal(b["optimizers"]["main"]["state"][0]["exp_avg"])
    assert a["schedulers"]["main"] == b["schedulers"]["main"]
    assert a["schedulers"]["main"]["_last_lr"] == [0.5e-4]  # halved at step 2
    assert torch.equal(a["rng_cpu"], b["rng_cpu"])
    assert "aux" in a["optimizers"]


def test_outputs_and_log(image_folder, tmp_path):
    result = train(toy_task, toy_config(image_folder, tmp_path / "run"), codec="toy-learned",
                   export_info={"training_command": "codecbench train toy-learned"})
    exported = read_checkpoint(result.model_path)
    assert is_exported(exported) and exported["codec"] == "toy-learned" and exported["step"] == 4
    assert exported["training_command"] == "codecbench train toy-learned"
    assert set(result.val_stats) >= {"bpp", "psnr", "loss"}
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert sum('"split": "val"' in line for line in lines) == 2


def test_resume_with_changed_settings_is_refused(image_folder, tmp_path):
    train(toy_task, toy_config(image_folder, tmp_path / "run", steps=2), codec="toy-learned")
    with pytest.raises(TrainingError, match="lmbda: was 0.01, now 0.02"):
        train(toy_task, toy_config(image_folder, tmp_path / "run", lmbda=0.02), codec="toy-learned")


class AdversarialTask(TrainingTask):
    """A toy GAN task: the generator fools a 1-layer discriminator, which learns to tell."""

    def __init__(self) -> None:
        self.model = nn.Conv2d(3, 3, 3, padding=1)
        self.discriminator = nn.Sequential(nn.Conv2d(3, 1, 4, stride=4), nn.Flatten(), nn.LazyLinear(1))
        self.discriminator(torch.zeros(1, 3, 64, 64))

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model, "discriminator": self.discriminator}

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())

    def loss(self, batch):
        fake = self.model(batch)
        adversarial = nn.functional.softplus(-self.discriminator(fake)).mean()
        loss = nn.functional.mse_loss(fake, batch) + 0.1 * adversarial
        return loss, {"loss": loss.item()}

    def discriminator_loss(self, batch):
        real, fake = self.discriminator(batch), self.discriminator(self.model(batch).detach())
        loss = nn.functional.softplus(-real).mean() + nn.functional.softplus(fake).mean()
        return loss, {"d_loss": loss.item()}

    def evaluate(self, image):
        return {"bpp": 0.0, "psnr": 0.0}


def test_adversarial_hooks(image_folder, tmp_path):
    torch.manual_seed(0)
    before = [p.detach().clone() for p in AdversarialTask().discriminator.parameters()]
    result = train(AdversarialTask, toy_config(image_folder, tmp_path / "gan"), codec="toy-gan")
    state = read_checkpoint(result.state_path)
    assert set(state["optimizers"]) == {"main", "discriminator"}
    assert set(state["schedulers"]) == {"main", "discriminator"}
    after = list(state["modules"]["discriminator"].values())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    assert "d_loss" in result.train_stats


def test_init_from_another_runs_state_keeps_its_critic_and_starts_afresh(image_folder, tmp_path):
    parent = train(AdversarialTask, toy_config(image_folder, tmp_path / "parent"), codec="toy-gan")
    # lr 0: the branch's weights stay what it started from, so they show what --init loaded
    branch = train(AdversarialTask, toy_config(image_folder, tmp_path / "branch", steps=2, lr=0.0,
                                               init=parent.state_path), codec="toy-gan")
    before, after = read_checkpoint(parent.state_path), read_checkpoint(branch.state_path)
    for name in ("model", "discriminator"):
        for key, tensor in before["modules"][name].items():
            assert torch.equal(tensor, after["modules"][name][key]), (name, key)
    assert after["step"] == 2  # its own count, schedule and optimizers, not the parent's
    assert after["optimizers"]["main"]["state"][0]["step"] == 2


def test_init_from_a_state_that_does_not_fit_is_a_training_error(image_folder, tmp_path):
    parent = train(toy_task, toy_config(image_folder, tmp_path / "toy", steps=2), codec="toy-learned")
    with pytest.raises(TrainingError, match="its model does not fit this run's"):
        train(AdversarialTask, toy_config(image_folder, tmp_path / "gan", init=parent.state_path),
              codec="toy-gan")
    state = read_checkpoint(parent.state_path)
    del state["modules"]["model"]
    torch.save(state, tmp_path / "no-model.pt")
    with pytest.raises(TrainingError, match="without the model's weights"):
        train(AdversarialTask, toy_config(image_folder, tmp_path / "gan2", init=tmp_path / "no-model.pt"),
              codec="toy-gan")


def test_batches_depend_only_on_seed_and_step(image_folder):
    paths = list_images(image_folder)
    a, b = RandomCrops(paths, 40, seed=3), RandomCrops(paths, 40, seed=3)
    assert torch.equal(a.batch(7, 4), b.batch(7, 4))
    assert not torch.equal(a.batch(7, 4), a.batch(8, 4))
    assert a.batch(0, 2).shape == (2, 3, 40, 40)
    assert RandomCrops(paths, 128).batch(0, 1).shape == (1, 3, 128, 128)  # small images padded


def test_several_training_folders_are_listed_in_order(image_folder, tmp_path):
    other = tmp_path / "more"
    other.mkdir()
    Image.fromarray(synthetic_image(40, 40)).save(other / "a.png")
    assert list_images([image_folder, other]) == list_images(image_folder) + [other / "a.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="No images"):
        list_images([image_folder, tmp_path / "empty"])


def test_holdout_is_stable_and_disjoint(image_folder):
    paths = list_images(image_folder)
    train_paths, held = split_holdout(paths, 1)
    assert len(held) == 1 and not set(held) & set(train_paths)
    assert split_holdout(list(reversed(paths)), 1)[1] == held
    with pytest.raises(Exception, match="Cannot hold out 3 of 3"):
        split_holdout(paths, 3)


def test_presets_and_errors(tmp_path):
    config = apply_preset(TrainConfig(data=tmp_path, out=tmp_path), "small", steps=10)
    assert config.crop == 128 and config.steps == 10 and config.lr == 1e-4
    assert apply_preset(config, "full").lr_milestones == (100_000, 300_000)
    with pytest.raises(TrainingError, match='Invalid preset "huge"'):
        apply_preset(config, "huge")
    with pytest.raises(Exception, match="does not exist"):
        list_images(tmp_path / "absent")


def test_train_command_then_run(image_folder, tmp_path, registered_plugin):
    from codecbench import hookimpl
    from codecbench.cli import cli

    class Plugin:
        @hookimpl
        def register_codecs(self, register):
            register(ToyLearnedCodec())

    registered_plugin(Plugin(), "toy-learned-plugin")
    out = tmp_path / "run"
    args = ["train", "toy-learned", "--data", str(image_folder), "--out", str(out), "--steps", "2",
            "--crop", "64", "--batch-size", "2", "--val-count", "1", "--device", "cpu", "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "step 2" in result.output and (out / "model.pt").is_file()
    result = CliRunner().invoke(cli, args[:-1] + ["--steps", "3", "-q"])  # resumes at step 2
    assert result.exit_code == 0 and "step 3" in result.output, result.output
    result = CliRunner().invoke(cli, ["run", "--codec", "toy-learned", "--dataset", f"folder:{image_folder}",
                                      "--weights", str(out / "model.pt"), "--jobs", "1", "-m", "psnr", "-q"])
    assert result.exit_code == 0, result.output
    assert "3 computed" in result.output


def test_train_rejects_non_learned_codec(image_folder, tmp_path, registered_plugin):
    from codecbench import hookimpl
    from codecbench.cli import cli

    from toy_codecs import Knob

    class Plugin:
        @hookimpl
        def register_codecs(self, register):
            register(Knob())

    registered_plugin(Plugin(), "knob-plugin")
    result = CliRunner().invoke(cli, ["train", "knob", "--data", str(image_folder), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "'knob' is not trainable" in result.output


def test_export_half_halves_model_file_and_loads(image_folder, tmp_path):
    from learned_toy import toy_codec

    from codecbench.testing import synthetic_image

    settings = {"steps": 1, "model_config": dict(ToyLearnedCodec.model_config)}
    full = train(toy_task, toy_config(image_folder, tmp_path / "full", **settings), codec="toy-learned")
    half = train(toy_task, toy_config(image_folder, tmp_path / "half", export_half=True, **settings),
                 codec="toy-learned")
    state_dict = read_checkpoint(half.model_path)["state_dict"]
    assert {v.dtype for v in state_dict.values() if v.is_floating_point()} == {torch.float16}
    assert half.model_path.stat().st_size < 0.75 * full.model_path.stat().st_size
    codec = toy_codec(half.model_path)
    model = codec.model_for_point(1).model
    assert next(model.parameters()).dtype == torch.float32
    image = synthetic_image(33, 57)
    assert codec.decode(codec.encode(image, 1)).shape == image.shape


class DivergingTask(TrainingTask):
    """A task whose loss becomes NaN at its third step."""

    def __init__(self) -> None:
        self.model, self.calls = nn.Conv2d(3, 3, 1), 0

    def loss(self, batch):
        self.calls += 1
        loss = nn.functional.mse_loss(self.model(batch), batch) * (float("nan") if self.calls >= 3 else 1.0)
        return loss, {"loss": loss.item()}

    def evaluate(self, image):
        return {"bpp": 0.0, "psnr": 0.0}


def test_diverged_run_stops_without_overwriting_last_good_state(image_folder, tmp_path):
    config = toy_config(image_folder, tmp_path / "run", checkpoint_every=2, val_every=100)
    with pytest.raises(TrainingError, match="diverged at step 3 .*loss nan.*lower --lr"):
        train(DivergingTask, config, codec="toy")
    state = read_checkpoint(tmp_path / "run" / "last.pt")
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["modules"]["model"].values())


def test_a_run_stopped_by_its_time_budget_validates_its_last_step(image_folder, tmp_path):
    result = train(toy_task, toy_config(image_folder, tmp_path / "run", steps=50, max_minutes=1e-9),
                   codec="toy-learned")
    assert result.step < 50 and set(result.val_stats) >= {"bpp", "psnr"}
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if row["split"] == "val"] == [result.step]


CHANNELS_LAST_STRIDED_1X1 = """
import torch
from torch import nn
from codecbench.learned.training import to_channels_last
torch.set_num_threads(1)
conv = nn.Conv2d(3, 48, 1, stride=2)
to_channels_last(conv, torch.device("cpu"))
x = torch.randn(8, 3, 64, 64).contiguous(memory_format=torch.channels_last)
for _ in range(5):
    conv(x).square().mean().backward()
print(conv.weight.stride(), float(conv.weight.grad.abs().sum()))
"""


def test_channels_last_training_survives_the_onednn_strided_1x1_bug():
    # Without the work-around, this layer crashes on AVX2-only CPUs (uxlfoundation/oneDNN#6035):
    # in a subprocess, so that a crash fails this test instead of killing the test run.
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", CHANNELS_LAST_STRIDED_1X1], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("(3, 1, 1, 1) ")  # contiguous weight, the correct kernel
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 1, stride=2), nn.Conv2d(24, 8, 1, stride=2))
    to_channels_last(model, torch.device("cpu"))
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not model[0].weight.is_contiguous()
    assert model[1].weight.stride() == (8, 1, 1, 1)  # 1x1, strided, 8 input channels: contiguous
    assert model[2].weight.stride() == (24, 1, 24, 24)  # 24 input channels: channels-last


def test_speed_settings_train_and_are_recorded(image_folder, tmp_path):
    from codecbench.learned.training import resolve_precision

    config = toy_config(image_folder, tmp_path / "run", steps=2, precision="bf16", channels_last=True,
                        threads=1)
    result = train(toy_task, config, codec="toy-learned")
    exported = read_checkpoint(result.model_path)
    expected = resolve_precision("bf16", torch.device("cpu"))  # fp32 where the CPU lacks bf16
    assert exported["throughput"]["precision"] == result.throughput["precision"] == expected
    assert exported["throughput"]["channels_last"] is True and exported["throughput"]["threads"] == 1
    assert exported["throughput"]["crops_per_s"] > 0
    assert exported["train_config"]["precision"] == "bf16"
    assert all(torch.isfinite(v).all() for v in exported["state_dict"].values() if v.is_floating_point())
    curve = (tmp_path / "run" / "curve.csv").read_text().splitlines()
    assert curve[0].startswith("step,wall_s,time,") and "bpp" in curve[0] and len(curve) == 2
    with pytest.raises(TrainingError, match='Invalid precision "fp8"'):
        resolve_precision("fp8", torch.device("cpu"))


def test_bf16_falls_back_to_fp32_where_unsupported(monkeypatch):
    from codecbench.learned import training

    monkeypatch.setattr(training, "bf16_unsupported_reason", lambda device: "no AMX here")
    assert training.resolve_precision("bf16", torch.device("cpu")) == "fp32"


def test_train_command_speed_options(image_folder, tmp_path, registered_plugin):
    from codecbench import hookimpl
    from codecbench.cli import cli

    class Plugin:
        @hookimpl
        def register_codecs(self, register):
            register(ToyLearnedCodec())

    registered_plugin(Plugin(), "toy-learned-plugin")
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, [
        "train", "toy-learned", "--data", str(image_folder), "--out", str(out), "--steps", "1",
        "--crop", "64", "--batch-size", "2", "--val-count", "1", "--device", "cpu", "-q",
        "--precision", "bf16", "--channels-last", "--threads", "1", "--ema-decay", "0.9"])
    assert result.exit_code == 0, result.output
    assert "throughput:" in result.output and "crops/s" in result.output
    train_config = read_checkpoint(out / "model.pt")["train_config"]
    assert train_config["channels_last"] is True and train_config["ema_decay"] == 0.9


def test_shared_losses():
    from codecbench.learned import bits_per_pixel, discriminator_adversarial_loss, psnr_from_mse

    assert float(bits_per_pixel({"y": torch.full((1, 2, 2, 2), 0.5)}, 4)) == pytest.approx(2.0)
    assert psnr_from_mse(0.01) == pytest.approx(20.0)
    assert float(discriminator_adversarial_loss(torch.zeros(2), torch.zeros(2))) == pytest.approx(1.3863, 1e-3)


def test_ema_exports_the_moving_average_and_resumes_exactly(image_folder, tmp_path):
    decay = 0.5
    whole = train(toy_task, toy_config(image_folder, tmp_path / "whole", ema_decay=decay), codec="toy-learned")
    state = read_checkpoint(whole.state_path)
    trained = state["modules"]["model"]
    averaged = state["ema"]["parameters"]
    exported = read_checkpoint(whole.model_path)["state_dict"]
    name = next(k for k in trained if trained[k].is_floating_point() and not trained[k].equal(averaged[k]))
    assert exported[name].equal(averaged[name]), "model.pt holds the average, not the last weights"
    assert state["ema"]["steps"] == 4
    plain = train(toy_task, toy_config(image_folder, tmp_path / "plain"), codec="toy-learned")
    assert read_checkpoint(plain.state_path)["modules"]["model"][name].equal(trained[name]), \
        "averaging does not change training itself"

    train(toy_task, toy_config(image_folder, tmp_path / "split", steps=2, ema_decay=decay), codec="toy-learned")
    resumed = train(toy_task, toy_config(image_folder, tmp_path / "split", ema_decay=decay), codec="toy-learned")
    assert read_checkpoint(resumed.model_path)["state_dict"][name].equal(exported[name])
    off = train(toy_task, toy_config(image_folder, tmp_path / "split", steps=5), codec="toy-learned")
    assert "ema" not in read_checkpoint(off.state_path), "switched off on resume: the last weights again"


def test_ema_decay_out_of_range_is_refused_before_training(image_folder, tmp_path):
    with pytest.raises(TrainingError, match=r"--ema-decay must be in \[0, 1\).*not 1.0"):
        train(toy_task, toy_config(image_folder, tmp_path / "run", ema_decay=1.0), codec="toy-learned")
    assert not (tmp_path / "run").exists()


def test_ema_switched_on_when_resuming_averages_from_there(image_folder, tmp_path):
    train(toy_task, toy_config(image_folder, tmp_path / "run", steps=2), codec="toy-learned")
    assert "ema" not in read_checkpoint(tmp_path / "run" / "last.pt")
    result = train(toy_task, toy_config(image_folder, tmp_path / "run", ema_decay=0.5), codec="toy-learned")
    assert result.step == 4 and read_checkpoint(result.state_path)["ema"]["steps"] == 2


class ResizingBufferTask(AdversarialTask):
    """Its model's buffer changes size between steps, as CompressAI's CDF tables do when
    validation calls ``update()``."""

    def __init__(self) -> None:
        super().__init__()
        self.model.register_buffer("table", torch.zeros(0))

    def loss(self, batch):
        self.model.table = torch.arange(len(self.model.table) + 1.0)
        return super().loss(batch)


def test_ema_survives_buffers_that_change_size(image_folder, tmp_path):
    result = train(ResizingBufferTask, toy_config(image_folder, tmp_path / "run", ema_decay=0.9), codec="toy")
    assert result.step == 4 and read_checkpoint(result.model_path)["state_dict"]["table"].numel() == 4
