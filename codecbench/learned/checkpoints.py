"""Checkpoints as artefacts: declared in a manifest, verified by sha256, loaded safely.

A learned plugin ships its trained weights beside a TOML manifest, one table per checkpoint::

    [[checkpoint]]
    name = "cheng2020-anchor-q1"
    point = 1
    file = "cheng2020-anchor-q1.pt"
    sha256 = "..."
    lmbda = 0.0018
    training_command = "codecbench train cheng2020-anchor ..."
    budget = "4000 steps, 12 min on 2 CPU cores, 128x128 crops, batch 8, N=48"

Checkpoint files written by ``codecbench train`` are dicts tagged ``format = EXPORT_FORMAT`` with
the codec name, the model's constructor arguments and its state dict. Everything is loaded with
``torch.load(weights_only=True)``: a checkpoint can hold tensors and plain values, never code.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codecbench.errors import CodecError, CodecUnavailableError
from codecbench.files import sha256_of

if TYPE_CHECKING:  # torch is imported where a file is read or written: manifests load without it
    import torch

EXPORT_FORMAT = "codecbench.learned.model/1"
MAX_CHECKPOINT_ELEMENTS = 1 << 30
"""Tensor elements a checkpoint may hold (4 GiB of float32; AEDC at its full size holds 160 M)."""
TRAINING_STATE_FORMAT = "codecbench.learned.training/1"


@dataclass(frozen=True)
class CheckpointSpec:
    """A shipped checkpoint: which point it serves, its file and checksum, and how it was made."""

    name: str
    point: float
    file: Path
    sha256: str
    lmbda: float
    training_command: str
    budget: str
    extra: Mapping[str, Any] = field(default_factory=dict)


def load_manifest(path: Path) -> list[CheckpointSpec]:
    """The checkpoints a TOML manifest declares, ordered by point; files resolve beside it."""
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8")).get("checkpoint", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CodecError(f"Cannot read checkpoint manifest {path}: {exc}") from exc
    specs = []
    required = ("name", "point", "file", "sha256", "lmbda", "training_command", "budget")
    for table in tables:
        missing = [k for k in required if k not in table]
        if missing:
            raise CodecError(f"Checkpoint manifest {path}: entry {table.get('name', '?')!r} lacks {missing}")
        known = {k: table[k] for k in required}
        specs.append(CheckpointSpec(
            name=known["name"], point=float(known["point"]), file=path.parent / known["file"],
            sha256=str(known["sha256"]).lower(), lmbda=float(known["lmbda"]),
            training_command=known["training_command"], budget=known["budget"],
            extra={k: v for k, v in table.items() if k not in required},
        ))
    return sorted(specs, key=lambda s: s.point)


def shipped_checkpoints_dir(package_file: str) -> Path:
    """A plugin's ``checkpoints`` folder, given its package's ``__file__``.

    Inside the package in an installed wheel (force-included there), beside the package in a
    source checkout or an editable install.
    """
    package = Path(package_file).resolve().parent
    inside = package / "checkpoints"
    return inside if inside.is_dir() else package.parent / "checkpoints"


def checkpoint_id(sha256: str) -> str:
    """The short id a bitstream records: the first 16 hex digits of the checkpoint's sha256."""
    return sha256[:16]


def read_checkpoint(path: Path, sha256: str | None = None) -> dict[str, Any]:
    """Load a checkpoint file (verifying ``sha256`` when given) as a dict of tensors and values."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CodecUnavailableError(f"Checkpoint file {path} not found")
    if sha256 is not None:
        actual = sha256_of(path)
        if actual != sha256.lower():
            raise CodecError(
                f"Checkpoint {path} has sha256 {actual}, expected {sha256}; the file is corrupted or "
                "was replaced (restore it with `git checkout`, or pass your own with --weights)"
            )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch's own message runs to a page and suggests weights_only=False, which would run code
        # from the file: name the error only.
        raise CodecError(f"Cannot load checkpoint {path}: not a torch file of tensors and plain values "
                         f"({type(exc).__name__}); pass a model.pt written by `codecbench train` or an "
                         "official CompressAI checkpoint") from exc
    if not isinstance(payload, dict):
        raise CodecError(f"Checkpoint {path} holds a {type(payload).__name__}, not a dict")
    check_tensors(payload, path)
    return payload


def check_tensors(payload: Any, path: Path) -> None:
    """Refuse a checkpoint whose tensors declare more than they hold: a tensor with fewer stored
    elements than its shape (a stride-0 view: a 1 KB file can declare a billion elements, and a
    model built to its shape allocates them), or more than :data:`MAX_CHECKPOINT_ELEMENTS` in all."""
    total = 0
    for name, tensor in _tensors(payload, ""):
        stored = tensor.untyped_storage().nbytes() // max(1, tensor.element_size())
        if tensor.numel() > stored:
            raise CodecError(f"Checkpoint {path}: tensor {name} declares shape {tuple(tensor.shape)} "
                             f"({tensor.numel()} elements) but stores {stored}; refused (a forged file)")
        total += tensor.numel()
        if total > MAX_CHECKPOINT_ELEMENTS:
            raise CodecError(f"Checkpoint {path} holds more than {MAX_CHECKPOINT_ELEMENTS} tensor "
                             "elements; refused before building a model that large")


def _tensors(value: Any, name: str) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor inside nested dicts, lists and tuples, with its key path."""
    import torch

    if isinstance(value, torch.Tensor):
        yield name, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _tensors(item, f"{name}.{key}" if name else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{name}[{i}]")


def write_atomic(payload: Mapping[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: an interrupted save never leaves a torn file."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(dict(payload), tmp)
    os.replace(tmp, path)


def export_payload(codec: str, model_config: Mapping[str, Any], state_dict: Mapping[str, Any],
                   **info: Any) -> dict[str, Any]:
    """The dict a shippable checkpoint holds (what ``codecbench train`` writes as ``model.pt``)."""
    return {"format": EXPORT_FORMAT, "codec": codec, "model_config": dict(model_config),
            "state_dict": dict(state_dict), **info}


def is_exported(payload: Mapping[str, Any]) -> bool:
    """Whether ``payload`` was written by :func:`export_payload` (else: a bare state dict)."""
    return payload.get("format") == EXPORT_FORMAT


def load_weights(model: torch.nn.Module, payload: Mapping[str, Any]) -> None:
    """Load a checkpoint (``codecbench train``'s ``model.pt`` or a bare state dict) strictly."""
    model.load_state_dict(payload["state_dict"] if is_exported(payload) else payload)
