"""``tiny``: a learned codec plugin in one module, the example of ``docs/learned-codec.md``.

CompressAI's factorized-prior autoencoder (Ballé et al. 2018) at a tiny size, trained by
``codecbench train tiny`` with an MSE rate-distortion loss whose rate weight can hold a target
rate (``-m target_bpp=0.5``). ``tests/test_learned_guide.py`` installs it as a plugin, trains it,
ships the checkpoint with a manifest and benchmarks it with ``codecbench run``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from codecbench import Codec, hookimpl
from codecbench.learned import (
    LearnedCodec,
    RateController,
    TrainingTask,
    bits_per_pixel,
    crop_to,
    pad_to_stride,
    psnr_from_mse,
    shipped_checkpoints_dir,
    split_model_config,
    training_options,
    with_training_options,
)

ARCHITECTURE = ("N", "M")  # FactorizedPrior's constructor arguments
TRAINING = ("target_bpp",)  # read by TinyTask only; recorded in model.pt, never in the weights


class TinyTask(TrainingTask):
    """``lmbda * 255^2 * MSE + m * bpp``: ``m`` holds the rate at ``target_bpp`` when it is set."""

    def __init__(self, model: nn.Module, lmbda: float, stride: int, target_bpp: float = 0.0) -> None:
        self.model, self.lmbda, self.stride = model, lmbda, stride
        self.rate = RateController(target_bpp)

    def modules(self) -> dict[str, nn.Module]:
        return {**super().modules(), "rate": self.rate}  # last.pt keeps the multiplier too

    def terms(self, x: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(x)
        bpp = bits_per_pixel(out["likelihoods"], x.shape[0] * height * width)
        mse = torch.mean((crop_to(out["x_hat"], height, width) - crop_to(x, height, width)) ** 2)
        return bpp, mse

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        bpp, mse = self.terms(batch, *batch.shape[-2:])
        loss = self.lmbda * 255**2 * mse + self.rate.multiplier() * bpp
        self.rate.update(bpp.item())
        return loss, {"loss": loss.item(), "bpp": bpp.item(), "psnr": psnr_from_mse(mse.item())}

    def evaluate(self, image: torch.Tensor) -> dict[str, float]:
        bpp, mse = self.terms(pad_to_stride(image, self.stride), *image.shape[-2:])
        return {"bpp": bpp.item(), "psnr": psnr_from_mse(mse.item())}


class TinyCodec(LearnedCodec):
    name = "tiny"
    description = "Factorized-prior autoencoder with 8 channels (the learned-codec guide's example)"
    stride = 16  # g_a downsamples by 16: images are padded to a multiple of it
    manifest = shipped_checkpoints_dir(__file__) / "tiny.toml"
    default_lmbda = 0.01
    model_config = {"N": 8, "M": 8, "target_bpp": 0.0}

    def build_model(self, **config: Any) -> nn.Module:
        from compressai.models import FactorizedPrior

        architecture, options = split_model_config(self.name, config, ARCHITECTURE, TRAINING)
        return with_training_options(FactorizedPrior(**architecture), options)

    def training_task(self, model: nn.Module, lmbda: float) -> TrainingTask:
        return TinyTask(model, lmbda, self.stride, **training_options(model))


@hookimpl
def register_codecs(register: Callable[[Codec], None]) -> None:
    register(TinyCodec())
