"""Tiny Cheng2020 models for the plugin's tests (N=8: fast, but the real architectures)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from codecbench.learned.checkpoints import export_payload, write_atomic
from codecbench_cheng2020 import Cheng2020Codec

TINY = {"N": 8, "mixtures": 3}  # the paper's Gaussian mixture, as shipped
SINGLE = {"N": 8}  # CompressAI's single Gaussian (official files, checkpoints from before the mixture)
LATENT_GAIN = 20.0  # a fresh g_a gives latents that nearly all round to 0; scaled, they span about +-10


def tiny_model(codec: Cheng2020Codec, seed: int = 0, config: Mapping[str, Any] = TINY) -> torch.nn.Module:
    """A freshly initialised (seeded) tiny model of ``codec``'s architecture, in eval mode.

    The output convolution of ``g_a`` is scaled by :data:`LATENT_GAIN` so that the coders have
    non-zero symbols to code."""
    torch.manual_seed(seed)
    model = codec.build_model(**config).eval()
    last = [m for m in model.g_a if isinstance(m, torch.nn.Conv2d)][-1]  # the output conv (before attention)
    with torch.no_grad():
        last.weight.mul_(LATENT_GAIN)
        last.bias.mul_(LATENT_GAIN)
    return model


def save_exported(codec: Cheng2020Codec, path: Path, seed: int = 0, config: Mapping[str, Any] = TINY) -> Path:
    """The model of :func:`tiny_model` saved the way ``codecbench train`` exports ``model.pt``."""
    write_atomic(export_payload(codec.name, config, tiny_model(codec, seed, config).state_dict()), path)
    return path


def configured(codec_class: type[Cheng2020Codec], *weights: Path) -> Cheng2020Codec:
    """A new codec of ``codec_class`` serving ``weights`` (``--weights PATH,...``)."""
    codec = codec_class()
    codec.configure(weights=",".join(str(w) for w in weights))
    return codec
