"""HiFiC, High-Fidelity Generative Image Compression (Mentzer et al. 2020), for codecbench.

The codec ``hific`` codes an image with HiFiC's encoder, mean-scale hyperprior (CompressAI's
entropy models and range coder: real bytes) and ChannelNorm generator. Points ``1..3`` are the
shipped checkpoints at HiFiC's Lo/Mi/Hi rate targets (see ``checkpoints/hific.toml`` and the
README). ``codecbench train hific`` trains it with the paper's rate-controlled GAN objective
(:mod:`codecbench_hific.training`); the loss settings are model options (``-m target_bpp=0.14``)
so that each checkpoint records them beside the architecture.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

from codecbench import Codec, hookimpl
from codecbench.learned import LearnedCodec, shipped_checkpoints_dir

if TYPE_CHECKING:  # registering the codec imports no torch (``codecbench list`` stays fast)
    from torch import nn

    from codecbench.learned import TrainingTask

ARCHITECTURE_KEYS = ("N", "M", "width", "res_blocks")


class HiFiCCodec(LearnedCodec):
    name = "hific"
    description = "HiFiC (Mentzer et al. 2020): hyperprior + ChannelNorm GAN generator, trained here"
    stride = 64  # E downsamples by 16, the hyper-encoder by 4 more
    float64_modules = ("h_s",)  # its scales choose y's CDFs: float64 so that other CPUs choose alike
    manifest = shipped_checkpoints_dir(__file__) / "hific.toml"
    default_lmbda = 1.0  # lambda_a of HiFiC Mi (target 0.30 bpp)
    # The paper's sizes: E/G widths 60..960, M = 220 latent channels, 9 residual blocks.
    model_config: Mapping[str, Any] = {"N": 320, "M": 220, "width": 60, "res_blocks": 9,
                                       "target_bpp": 0.30}
    preset_model_configs: Mapping[str, Mapping[str, Any]] = {
        "small": {"N": 64, "M": 64, "width": 8, "res_blocks": 2, "disc_width": 16},
        "full": {},
    }

    def build_model(self, **config: Any) -> nn.Module:
        from codecbench.learned import split_model_config, with_training_options
        from codecbench_hific.model import HiFiCModel
        from codecbench_hific.training import TRAINING_OPTIONS

        architecture, options = split_model_config("HiFiC", config, ARCHITECTURE_KEYS, TRAINING_OPTIONS)
        return with_training_options(HiFiCModel(**architecture), options)

    def training_task(self, model: nn.Module, lmbda: float) -> TrainingTask:
        from codecbench.learned import training_options
        from codecbench_hific.training import HiFiCTask, LossSettings

        settings = LossSettings(lambda_a=lmbda, **training_options(model))
        return HiFiCTask(model, settings, self.stride)


@hookimpl
def register_codecs(register: Callable[[Codec], None]) -> None:
    register(HiFiCCodec())
