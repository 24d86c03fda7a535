"""A tiny untrained HiFiC checkpoint, written as ``codecbench train`` writes one, for fast tests."""

from __future__ import annotations

from pathlib import Path

import torch

from codecbench.learned.checkpoints import export_payload, write_atomic
from codecbench_hific import HiFiCCodec

TINY = {"N": 16, "M": 16, "width": 4, "res_blocks": 1, "disc_width": 4,
        "perceptual": "st-lpips", "target_bpp": 0.3}


def save_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = HiFiCCodec().build_model(**TINY)
    write_atomic(export_payload("hific", TINY, model.state_dict()), path)
    return path


def tiny_codec(path: Path) -> HiFiCCodec:
    codec = HiFiCCodec()
    codec.configure(weights=str(path))
    return codec
