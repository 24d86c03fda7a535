"""``train()`` under ``torchrun``: two gloo processes on the CPU behave as one process with the
same global batch, and a run whose rank was killed with SIGKILL resumes to the same weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from codecbench.learned import TrainConfig, train
from codecbench.learned.checkpoints import read_checkpoint
from codecbench.learned.training import TrainingError, resolve_precision

from ddp_train import TinyTask

SCRIPT = Path(__file__).with_name("ddp_train.py")
BASE = {"val_count": 1, "crop": 32, "batch_size": 4, "lr": 1e-2, "lr_milestones": [3], "lmbda": 0.01,
        "val_every": 100, "log_every": 1, "device": "cpu", "threads": 1, "progress": False}


def torchrun(settings: dict[str, Any], processes: int = 2) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={processes}", str(SCRIPT), json.dumps(settings)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def train_losses(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r["split"] == "train"]


def test_two_processes_follow_the_loss_curve_of_one_with_the_same_global_batch(image_folder, tmp_path):
    one = tmp_path / "one"
    config = TrainConfig(data=image_folder, out=one, steps=5, **{**BASE, "lr_milestones": (3,)})
    train(TinyTask, config, codec="toy-learned")
    two = tmp_path / "two"
    done = torchrun({**BASE, "task": "tiny", "data": str(image_folder), "out": str(two), "steps": 5})
    assert done.returncode == 0, done.stderr[-3000:]
    single, double = train_losses(one), train_losses(two)
    assert len(single) == len(double) == 5
    assert single[-1] < single[0]  # it trains
    assert double == pytest.approx(single, rel=1e-5)
    a, b = read_checkpoint(one / "model.pt"), read_checkpoint(two / "model.pt")
    for name, tensor in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][name], tensor, rtol=1e-5, atol=1e-6)
    assert b["throughput"]["processes"] == 2 and b["throughput"]["batch_size"] == 4
    # Only rank 0 wrote: one log line per step, one validation.
    assert sum('"split": "val"' in line for line in (two / "log.jsonl").read_text().splitlines()) == 1


def test_a_rank_killed_with_sigkill_resumes_to_the_weights_of_an_uninterrupted_run(image_folder, tmp_path):
    settings = {**BASE, "task": "toy", "data": str(image_folder), "crop": 64, "steps": 6,
                "checkpoint_every": 2}
    whole = torchrun({**settings, "out": str(tmp_path / "whole")})
    assert whole.returncode == 0, whole.stderr[-3000:]
    # Rank 1 dies at the start of step 5, after the state of step 4 was saved.
    killed = torchrun({**settings, "out": str(tmp_path / "split"), "kill_rank": 1, "kill_step": 5})
    assert killed.returncode != 0
    assert read_checkpoint(tmp_path / "split" / "last.pt")["step"] == 4
    resumed = torchrun({**settings, "out": str(tmp_path / "split")})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = read_checkpoint(tmp_path / "whole" / "last.pt"), read_checkpoint(tmp_path / "split" / "last.pt")
    assert a["step"] == b["step"] == 6
    for name, tensor in a["modules"]["model"].items():
        assert torch.equal(tensor, b["modules"]["model"][name]), name
    for optimizer in ("main", "aux"):
        assert a["optimizers"][optimizer]["state"][0]["exp_avg"].equal(b["optimizers"][optimizer]["state"][0]["exp_avg"])
    assert a["schedulers"]["main"] == b["schedulers"]["main"]
    assert len(a["rng_ranks"]) == 2 and not torch.equal(a["rng_ranks"][0]["cpu"], a["rng_ranks"][1]["cpu"])
    for x, y in zip(a["rng_ranks"], b["rng_ranks"]):
        assert torch.equal(x["cpu"], y["cpu"])


def test_global_batch_must_split_evenly(image_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # refused before joining a process group
    config = TrainConfig(data=image_folder, out=tmp_path / "odd", steps=1, **{**BASE, "batch_size": 3,
                                                                           "lr_milestones": ()})
    with pytest.raises(TrainingError, match="--batch-size 3 is the global batch: it must be a "
                                            "multiple of the 2 processes"):
        train(TinyTask, config, codec="toy-learned")


def test_fp16_is_refused_on_the_cpu():
    with pytest.raises(TrainingError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", torch.device("cpu"))
