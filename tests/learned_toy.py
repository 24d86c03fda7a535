"""A tiny learned codec for the toolkit's tests: CompressAI's scale hyperprior with 8 channels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codecbench.learned import LearnedCodec
from codecbench.learned.checkpoints import export_payload, write_atomic

compressai = pytest.importorskip("compressai")


class ToyLearnedCodec(LearnedCodec):
    """``ScaleHyperprior(N=8, M=8)``: g_a downsamples by 16, h_a by 4 more, so the stride is 64."""

    name = "toy-learned"
    description = "tiny scale-hyperprior model for tests"
    stride = 64
    default_lmbda = 0.01
    model_config = {"N": 8, "M": 8}

    def build_model(self, **config: Any) -> Any:
        from compressai.models import ScaleHyperprior

        return ScaleHyperprior(**config)

    def model_from_state_dict(self, state_dict: Any) -> Any:
        from compressai.models import ScaleHyperprior

        return ScaleHyperprior.from_state_dict(dict(state_dict))


def toy_task() -> Any:
    """A :class:`~codecbench.learned.RateDistortionTask` of a new toy model (noise quantisation,
    entropy-bottleneck quantiles trained by the auxiliary loss)."""
    from codecbench.learned import RateDistortionTask

    codec = ToyLearnedCodec()
    return RateDistortionTask(codec.build_model(**codec.model_config), 0.01, codec.stride)


def toy_config(data: Path, out: Path, **changes: Any) -> Any:
    """A 4-step CPU :class:`~codecbench.learned.TrainConfig` (64 px crops, batch 2, lr halved at step
    2, validation and checkpoint every 2 steps) with ``changes`` applied."""
    from codecbench.learned import TrainConfig
    from codecbench.learned.training import apply_preset

    base = TrainConfig(data=data, out=out, val_count=1, crop=64, batch_size=2, steps=4,
                       lr_milestones=(2,), lmbda=0.01, val_every=2, checkpoint_every=2,
                       device="cpu", progress=False)
    return apply_preset(base, None, **changes)


def save_toy_checkpoint(path: Path, seed: int = 0) -> Path:
    """Export a freshly initialised toy model (seeded) the way ``codecbench train`` does."""
    import torch

    torch.manual_seed(seed)
    codec = ToyLearnedCodec()
    model = codec.build_model(**codec.model_config)
    write_atomic(export_payload(codec.name, codec.model_config, model.state_dict()), path)
    return path


def toy_codec(*weights: Path) -> ToyLearnedCodec:
    codec = ToyLearnedCodec()
    codec.configure(weights=",".join(str(w) for w in weights))
    return codec
