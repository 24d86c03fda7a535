"""Run under ``torchrun`` by ``test_distributed_training.py``: ``train()`` on a tiny task.

Usage: ``python -m torch.distributed.run --nproc-per-node N tests/ddp_train.py CONFIG_JSON``,
where CONFIG_JSON holds ``task`` (``tiny`` or ``toy``), ``data``, ``out`` and TrainConfig fields;
``kill_rank`` and ``kill_step`` make that rank kill itself (SIGKILL) when it starts that step.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codecbench.learned import TrainConfig, TrainingTask, psnr_from_mse, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learned_toy import toy_task  # noqa: E402


class TinyTask(TrainingTask):
    """A two-layer convolutional autoencoder trained on MSE: no random noise, so that runs with
    different numbers of processes can be compared step by step."""

    def __init__(self) -> None:
        self.model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 3, 3, padding=1))

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        mse = torch.mean((self.model(batch) - batch) ** 2)
        return mse, {"loss": mse.item(), "bpp": 0.0, "psnr": psnr_from_mse(mse.item())}

    def evaluate(self, image: torch.Tensor) -> dict[str, float]:
        return self.loss(image)[1]


def killing(task: TrainingTask, step: int) -> TrainingTask:
    """``task``, whose ``loss`` kills this process with SIGKILL when called for the ``step``-th time."""
    calls = {"n": 0}
    loss = task.loss

    def counted(batch: torch.Tensor) -> Any:
        calls["n"] += 1
        if calls["n"] == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return loss(batch)

    task.loss = counted  # type: ignore[method-assign]
    return task


def main() -> None:
    settings = json.loads(sys.argv[1])
    make = {"tiny": TinyTask, "toy": toy_task}[settings.pop("task")]
    kill_rank, kill_step = settings.pop("kill_rank", None), settings.pop("kill_step", None)
    rank = int(os.environ.get("RANK", 0))

    def build() -> TrainingTask:
        task = make()
        return killing(task, kill_step) if rank == kill_rank else task

    settings["data"], settings["out"] = Path(settings["data"]), Path(settings["out"])
    settings["lr_milestones"] = tuple(settings.get("lr_milestones", ()))
    train(build, TrainConfig(**settings), codec="toy-learned")


if __name__ == "__main__":
    main()
