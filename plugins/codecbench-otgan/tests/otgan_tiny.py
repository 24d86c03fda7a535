"""Tiny models and OT maps for the plugin's tests (the real architecture, N=8, 2 latent channels)."""

from __future__ import annotations

from pathlib import Path

import torch

from codecbench.learned.checkpoints import export_payload, write_atomic
from codecbench_otgan.artefact import map_payload
from codecbench_otgan.model import LatentAutoencoder
from codecbench_otgan.ot import OTConfig, OTMap

TINY = {"N": 8, "latent_channels": 2, "levels": 5}


def tiny_model(seed: int = 0, **options: object) -> LatentAutoencoder:
    """A freshly initialised (seeded) tiny model, in eval mode with its coding tables built."""
    torch.manual_seed(seed)
    model = LatentAutoencoder(**TINY, **options).eval()
    model.update(force=True)
    return model


def save_exported(codec: str, path: Path, seed: int = 0) -> Path:
    """The model of :func:`tiny_model` saved the way ``codecbench train`` exports ``model.pt``."""
    write_atomic(export_payload(codec, TINY, tiny_model(seed).state_dict()), path)
    return path


def save_tiny_map(path: Path, count: int = 12, side: int = 2) -> Path:
    """An OT map file over ``count`` random integer codes of shape ``2 x side x side``."""
    generator = torch.Generator().manual_seed(1)
    targets = torch.randint(-2, 3, (count, TINY["latent_channels"] * side * side), generator=generator)
    ot_map = OTMap(targets.float(), torch.zeros(count), OTConfig())
    write_atomic(map_payload(ot_map, (TINY["latent_channels"], side, side), [], False), path)
    return path
