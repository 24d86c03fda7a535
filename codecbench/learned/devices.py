"""Where a learned codec runs its transforms (``codecbench run --device``).

``codecbench run --device cuda`` sets ``CODECBENCH_DEVICE`` for the command; its workers inherit
it (Ray's through the job's runtime environment). A codec loading a model there moves the
modules named in its ``device_modules`` (by default the analysis and synthesis transforms ``g_a``
and ``g_s``, where nearly all of the arithmetic is) to the GPU, wrapped so that their inputs and
outputs stay on the CPU (:class:`OnDevice`). Everything that chooses the entropy coder's CDFs (the
hyperprior's synthesis ``h_s``, context models, entropy parameters, CDF tables) and the rANS coder
itself stay on the CPU, on one thread (:func:`~codecbench.learned.codec.single_threaded`).

So entropy coding is deterministic across devices: a stream encoded on one device decodes to the
same symbols on any other, because the decoder rebuilds the encoder's CDFs from the same CPU
arithmetic (the container's symbol digest would refuse it otherwise). What the device changes
is float rounding in the transforms: the latent that the encoder quantizes (a symbol here and
there can round the other way, so the bytes of a CUDA encoding may differ from a CPU one) and the
decoded pixels (within one grey level). cuDNN runs in its deterministic mode.

With several GPUs, each worker process claims the lowest free slot (a lock file held for the
process's life) and uses GPU ``slot % count``, so the workers of a run, and of runs beside it,
spread evenly over the GPUs.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codecbench.errors import CodecUnavailableError

__all__ = ["DEVICES", "ENV", "OnDevice", "device_slot", "place_transforms", "worker_device"]

ENV = "CODECBENCH_DEVICE"
DEVICES = ("cpu", "cuda", "auto")
_held: list[tuple[int, Any]] = []  # this process's slot and its lock (kept for the process's life)


def device_slot(folder: Path | None = None) -> int:
    """This process's slot: the lowest number whose lock file no other live process holds."""
    from filelock import FileLock, Timeout

    if _held:
        return _held[0][0]
    folder = folder or Path(tempfile.gettempdir()) / f"codecbench-devices-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    for slot in itertools.count():
        lock = FileLock(folder / f"slot-{slot}.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        _held.append((slot, lock))
        return slot
    raise AssertionError("unreachable")


def worker_device(name: str | None = None) -> torch.device:
    """The device ``name`` (default: ``$CODECBENCH_DEVICE``, else ``cpu``) means for this process:
    ``auto`` is ``cuda`` when available; ``cuda`` is GPU ``device_slot() % count``."""
    name = name or os.environ.get(ENV) or "cpu"
    if name not in DEVICES:
        raise CodecUnavailableError(f'Invalid device "{name}" in {ENV}; expected one of {", ".join(DEVICES)}')
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise CodecUnavailableError("--device cuda requested but torch sees no CUDA device")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return torch.device("cuda", device_slot() % torch.cuda.device_count())


def _moved(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(_moved(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _moved(v, device) for k, v in value.items()}
    return value


class OnDevice(nn.Module):
    """``module`` running on ``device``, taking and returning CPU tensors."""

    def __init__(self, module: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.module = module.to(device)
        self.device = device

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.module(*_moved(args, self.device), **_moved(kwargs, self.device))
        return _moved(out, torch.device("cpu"))


def place_transforms(model: nn.Module, names: Sequence[str], device: torch.device | None = None) -> nn.Module:
    """``model`` with its submodules ``names`` (those it has) on ``device`` (default:
    :func:`worker_device`); nothing changes on the CPU."""
    device = device or worker_device()
    if device.type == "cpu":
        return model
    for name in names:
        module = getattr(model, name, None)
        if isinstance(module, nn.Module) and not isinstance(module, OnDevice):
            setattr(model, name, OnDevice(module, device))
    return model
