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
