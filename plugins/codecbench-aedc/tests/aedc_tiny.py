"""A tiny untrained AEDC checkpoint, written as ``codecbench train`` writes one, for fast tests."""

from __future__ import annotations

from pathlib import Path

import torch

from codecbench.learned import export_payload, write_atomic
from codecbench_aedc import AEDCCodec

TINY = {"C": 4, "L": 5, "width": 4, "res_blocks": 1, "disc_width": 4, "disc_scales": 2}


def save_tiny_checkpoint(path: Path, seed: int = 0, **config: object) -> Path:
    torch.manual_seed(seed)
    config = {**TINY, **config}
    model = AEDCCodec().build_model(**config)
    with torch.no_grad():  # a non-uniform symbol model, so the coder's tables matter
        model.entropy_model.logits.copy_(torch.randn_like(model.entropy_model.logits))
    write_atomic(export_payload("aedc", config, model.state_dict()), path)
    return path


def tiny_codec(path: Path) -> AEDCCodec:
    codec = AEDCCodec()
    codec.configure(weights=str(path))
    return codec
