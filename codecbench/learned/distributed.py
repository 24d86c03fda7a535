"""Training on several processes: ``torchrun`` ranks and PyTorch's DistributedDataParallel.

``codecbench train`` started by ``torchrun`` (or any launcher that sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``) runs one process per device:
:func:`~codecbench.learned.training.train` joins the process group (NCCL on GPUs, gloo on CPUs),
wraps the task in DistributedDataParallel through :class:`TaskModule` (so the gradients of every
loss a task computes, generator and discriminator alike, are averaged over the ranks whatever
submodules the task calls) and lets rank 0 alone write files and draw the progress bar.

What keeps several processes equal to one: each rank trains on its own slice of the global batch
that one process would have drawn (``--batch-size`` is the global batch), so with batch-mean
losses the averaged gradients are those of the whole batch; the logged statistics are the mean over
ranks; the time budget is decided on a wall time every rank agrees on; and the resumable state
holds the random state of every rank.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from codecbench.learned.tasks import TrainingTask

__all__ = ["Ranks", "TaskModule", "gather", "mean_over_ranks", "process_group", "wrap"]


@dataclass(frozen=True)
class Ranks:
    """This process's place in a multi-process job (rank 0 of 1 when started alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls) -> "Ranks":
        """The ranks ``torchrun`` sets in the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)."""
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, logs and the progress bar (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


@contextlib.contextmanager
def process_group(ranks: Ranks, device: torch.device) -> Iterator[None]:
    """Inside the block, this process belongs to the default process group (NCCL for CUDA devices,
    gloo for the CPU), unless the job has one process or the caller already initialised one."""
    import torch.distributed as dist

    if not ranks.distributed or dist.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=ranks.rank,
                            world_size=ranks.world_size)
    try:
        yield
    finally:
        dist.destroy_process_group()


class TaskModule(nn.Module):
    """A task's trained modules as one module whose ``forward`` computes one of the task's losses,
    so that DistributedDataParallel sees (and synchronises) every loss the task computes."""

    def __init__(self, task: TrainingTask) -> None:
        super().__init__()
        self.task = task
        self.parts = nn.ModuleDict(task.modules())

    def forward(self, batch: torch.Tensor, which: str = "loss") -> tuple[torch.Tensor, dict[str, float]]:
        if which == "discriminator":
            return self.task.discriminator_loss(batch)
        return self.task.loss(batch)


def wrap(task: TrainingTask, device: torch.device) -> nn.Module:
    """The task in DistributedDataParallel.

    The auxiliary parameters (the entropy bottlenecks' quantiles) are left out: their loss does
    not depend on the batch, so every rank computes the same gradient for them, and the main loss
    reaches them only through a rounding that has no gradient. Parameters a loss does not reach
    (the discriminator in a generator step) are expected, hence ``find_unused_parameters``."""
    from torch.nn.parallel import DistributedDataParallel

    module = TaskModule(task)
    aux = {id(p) for p in task.aux_parameters()}
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
        module, [name for name, p in module.named_parameters() if id(p) in aux])
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)


def mean_over_ranks(values: Mapping[str, float], device: torch.device) -> dict[str, float]:
    """The mean of each value over the ranks (every rank passes the same keys and gets the same
    result, bit for bit)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return dict(values)
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return {k: v / dist.get_world_size() for k, v in zip(keys, tensor.tolist())}


def gather(value: Any) -> list[Any]:
    """``value`` of every rank, in rank order (``[value]`` in a single process)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return [value]
    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values
