"""``codecbench train cheng2020-anchor`` end to end: killed with SIGKILL, rerun, resumes exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from codecbench.learned.checkpoints import is_exported, read_checkpoint
from codecbench.testing import synthetic_image

STEPS = 24


def train_command(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "codecbench", "train", "cheng2020-anchor", "--preset", "small",
            "-m", "N=8", "--crop", "64", "--batch-size", "2", "--steps", str(STEPS),
            "--checkpoint-every", "1", "--val-count", "1", "--data", str(data), "--out", str(out),
            "--device", "cpu", "-q"]


def test_killed_training_resumes_exactly(tmp_path):
    data = tmp_path / "images"
    data.mkdir()
    for i, (h, w) in enumerate([(96, 128), (80, 80), (71, 101)]):
        Image.fromarray(synthetic_image(h, w, seed=i)).save(data / f"{i}.png")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole_out, split_out = tmp_path / "whole", tmp_path / "split"
    whole = subprocess.Popen(train_command(data, whole_out), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    killed = subprocess.Popen(train_command(data, split_out), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (split_out / "last.pt").exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    stopped_at = read_checkpoint(split_out / "last.pt")["step"]
    assert 0 < stopped_at < STEPS, f"kill came too late or too early: step {stopped_at}"

    resumed = subprocess.run(train_command(data, split_out), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"step {STEPS}," in resumed.stdout
    stdout, stderr = whole.communicate(timeout=120)
    assert whole.returncode == 0, stderr

    a, b = read_checkpoint(whole_out / "last.pt"), read_checkpoint(split_out / "last.pt")
    for name, tensor in a["modules"]["model"].items():
        assert torch.equal(tensor, b["modules"]["model"][name]), name
    for name in ("main", "aux"):
        for key, state in a["optimizers"][name]["state"].items():
            assert torch.equal(state["exp_avg_sq"], b["optimizers"][name]["state"][key]["exp_avg_sq"])
    assert torch.equal(a["rng_cpu"], b["rng_cpu"])
    exported = read_checkpoint(split_out / "model.pt")
    assert is_exported(exported) and exported["codec"] == "cheng2020-anchor"
    assert exported["model_config"] == {"N": 8, "mixtures": 3} and exported["step"] == STEPS


def test_single_gaussian_control_trains_and_round_trips(tmp_path):
    """``-m mixtures=1``: issue 17's control, same schedule as the mixture, one Gaussian per latent."""
    import numpy as np
    from click.testing import CliRunner

    from codecbench.cli import cli
    from codecbench.learned.padding import crop_to, image_to_tensor, pad_to_stride, tensor_to_image
    from codecbench_cheng2020 import Cheng2020Anchor
    from codecbench_cheng2020.mixture import GaussianMixtureContextModel

    from test_cheng2020_codec import coded_forward

    data = tmp_path / "images"
    data.mkdir()
    for i in range(2):
        Image.fromarray(synthetic_image(80, 96, seed=i)).save(data / f"{i}.png")
    out = tmp_path / "single"
    args = ["train", "cheng2020-anchor", "--preset", "small", "-m", "N=8", "-m", "mixtures=1", "--crop", "64",
            "--batch-size", "2", "--steps", "2", "--val-count", "1", "--lambda", "0.0018", "--data", str(data),
            "--out", str(out), "--device", "cpu", "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    exported = read_checkpoint(out / "model.pt")
    assert exported["model_config"] == {"N": 8, "mixtures": 1}

    codec = Cheng2020Anchor()
    codec.configure(weights=str(out / "model.pt"))
    image = synthetic_image(64, 96, seed=5)
    decoded = codec.decode(codec.encode(image, 1))
    model = codec.build_model(**exported["model_config"])
    assert not isinstance(model, GaussianMixtureContextModel)
    model.load_state_dict({k: v.float() for k, v in exported["state_dict"].items()})
    expected = tensor_to_image(crop_to(coded_forward(model.eval(), pad_to_stride(image_to_tensor(image), 64)), 64, 96))
    difference = np.abs(decoded.astype(int) - expected.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01
