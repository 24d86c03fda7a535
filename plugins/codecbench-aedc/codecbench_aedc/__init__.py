"""AEDC, GANs for Extreme Learned Image Compression (Agustsson et al. 2019), for codecbench.

The codec ``aedc`` codes an image as ``C`` channels at ``1/16`` resolution, each entry one of
``L`` centres, entropy-coded with a learned per-channel categorical model and CompressAI's rANS
coder (real bytes; the paper's fixed-length bound ``C * log2(L) / 256`` bpp is reported beside).
Points ``1..k`` are the shipped checkpoints (``checkpoints/aedc.toml``), ordered by rate.
``codecbench train aedc`` trains it with the paper's multi-scale LS-GAN objective, or with the
flagship's two-stage rate-distortion-perception recipe (``-m recipe=rdp -m stage=1|2``;
:mod:`codecbench_aedc.training`); ``C``, ``L`` and ``norm`` are model options (``-m C=4``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Callable

from codecbench import Codec, hookimpl
from codecbench.learned import LearnedCodec, shipped_checkpoints_dir

if TYPE_CHECKING:  # registering the codec imports no torch (``codecbench list`` stays fast)
    from torch import nn

    from codecbench.learned import TrainingTask

ARCHITECTURE_KEYS = ("C", "L", "width", "res_blocks", "learned_centres", "norm")
LATENT_STRIDE = 16


class AEDCCodec(LearnedCodec):
    name = "aedc"
    description = "AEDC (Agustsson et al. 2019): L-centre /16 latent, multi-scale GAN, trained here"
    # Images are padded to 32 so that the /16 latent is at least 2x2 (instance norm needs >1 value).
    stride = 32
    manifest = shipped_checkpoints_dir(__file__) / "aedc.toml"
    default_lmbda = 10.0  # the paper's MSE weight
    # The paper's sizes: widths 60..960, 9 residual blocks, L = 5 fixed centres; C = 8 (0.073 bpp).
    model_config: Mapping[str, Any] = {"C": 8, "L": 5, "width": 60, "res_blocks": 9}
    preset_model_configs: Mapping[str, Mapping[str, Any]] = {
        "small": {"width": 8, "res_blocks": 2, "disc_width": 16},
        "full": {},
    }

    def build_model(self, **config: Any) -> nn.Module:
        from codecbench.learned import split_model_config, with_training_options
        from codecbench_aedc.model import AEDCModel
        from codecbench_aedc.training import LossSettings

        training = [f.name for f in fields(LossSettings) if f.name != "lambda_mse"]  # lambda: --lambda
        architecture, options = split_model_config("AEDC", config, ARCHITECTURE_KEYS, training)
        return with_training_options(AEDCModel(**architecture), options)

    def training_task(self, model: nn.Module, lmbda: float) -> TrainingTask:
        from codecbench.learned import training_options
        from codecbench_aedc.training import AEDCTask, LossSettings

        settings = LossSettings(lambda_mse=lmbda, **training_options(model))
        return AEDCTask(model, settings, self.stride)

    def latent_shape(self, height: int, width: int) -> tuple[int, ...]:
        from codecbench.learned import padded_size

        padded_h, padded_w = padded_size(height, width, self.stride)
        return padded_h // LATENT_STRIDE, padded_w // LATENT_STRIDE


@hookimpl
def register_codecs(register: Callable[[Codec], None]) -> None:
    register(AEDCCodec())
