"""Tiny Cheng2020 models for the plugin's tests (N=8: fast, but the real architectures)."""

from __future__ import annotations

from pathlib import Path

import torch

from codecbench.learned.checkpoints import export_payload, write_atomic
from codecbench_cheng2020 import Cheng2020Codec

TINY = {"N": 8}


def tiny_model(codec: Cheng2020Codec, seed: int = 0) -> torch.nn.Module:
    """A freshly initialised (seeded) tiny model of ``codec``'s architecture, in eval mode."""
    torch.manual_seed(seed)
    return codec.build_model(**TINY).eval()


def save_exported(codec: Cheng2020Codec, path: Path, seed: int = 0) -> Path:
    """The model of :func:`tiny_model` saved the way ``codecbench train`` exports ``model.pt``."""
    write_atomic(export_payload(codec.name, TINY, tiny_model(codec, seed).state_dict()), path)
    return path


def configured(codec_class: type[Cheng2020Codec], *weights: Path) -> Cheng2020Codec:
    """A new codec of ``codec_class`` serving ``weights`` (``--weights PATH,...``)."""
    codec = codec_class()
    codec.configure(weights=",".join(str(w) for w in weights))
    return codec
