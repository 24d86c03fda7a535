"""The learned-codec toolkit: everything a learned codec plugin needs, so plugins only define models.

A learned plugin imports from here (and from ``codecbench``'s top level) only; the submodules are
the toolkit's own layout, free to change. The guide is ``docs/learned-codec.md``.

* Inference: :class:`LearnedCodec` wraps a CompressAI-style model as a codec (real bytes through
  CompressAI's entropy coders, any image size, shipped or user checkpoints) and as a trainable
  model; :class:`Bitstream` is its container (magic, format version, codec, checkpoint id, size,
  streams, symbol digest, CRC); :func:`record_symbols` and :func:`single_threaded` serve models
  with their own entropy-coding loops (:mod:`~codecbench.learned.codec`).
* Checkpoints: :class:`CheckpointSpec` and :func:`load_manifest` (shipped checkpoints declared in
  TOML, verified by sha256), :func:`shipped_checkpoints_dir`, :func:`read_checkpoint`,
  :func:`export_payload` / :func:`is_exported` (the ``model.pt`` format), :func:`load_weights`,
  :func:`write_atomic`, :func:`sha256_of`.
* Training: :class:`TrainingTask` (with adversarial hooks) and :class:`RateDistortionTask`;
  training options beside the architecture (:func:`split_model_config`,
  :func:`with_training_options`, :func:`training_options`); :func:`train`, :class:`TrainConfig`,
  :data:`PRESETS`, :class:`TrainingError`; data (:func:`list_images`, :class:`RandomCrops`).
* Losses (:mod:`~codecbench.learned.losses`): bpp from likelihoods, PSNR from MSE, the perceptual
  losses (:class:`LPIPSLoss`, :class:`STLPIPSLoss`, :func:`perceptual_loss`), the non-saturating
  adversarial losses and :class:`RateController`.
* Tensors: :func:`pad_to_stride`, :func:`crop_to`, :func:`padded_size`, :func:`image_to_tensor`,
  :func:`tensor_to_image`.

Importing this package is cheap and imports no torch: each name is loaded from its submodule on
first use (PEP 562 ``__getattr__``), so a plugin that defines its codec classes at import time
registers without torch (``codecbench list`` stays fast). :class:`LearnedCodec`,
:class:`CheckpointSpec`, :func:`shipped_checkpoints_dir` and the other checkpoint helpers, and
:class:`Bitstream` load without torch; the tensor, training and loss helpers import it. Loading a
name applies the torch thread count a run requested once torch is imported
(:mod:`codecbench.threads`). The package also silences the ``torch.jit.script`` deprecation warning
that importing CompressAI triggers (through torch_geometric, up to three times per command): a
filter for that one message, installed before any learned codec can import CompressAI.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from codecbench import threads as _threads

warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning,
                        module=r"torch\.jit\._script")

if TYPE_CHECKING:
    from codecbench.files import sha256_of
    from codecbench.learned.bitstream import Bitstream, record_symbols
    from codecbench.learned.checkpoints import (
        CheckpointSpec,
        checkpoint_id,
        export_payload,
        is_exported,
        load_manifest,
        load_weights,
        read_checkpoint,
        shipped_checkpoints_dir,
        write_atomic,
    )
    from codecbench.learned.codec import LearnedCodec, LoadedModel, single_threaded
    from codecbench.learned.data import RandomCrops, center_crops, list_images, split_holdout
    from codecbench.learned.losses import (
        PERCEPTUAL_LOSSES,
        LPIPSLoss,
        RateController,
        STLPIPSLoss,
        bits_per_pixel,
        discriminator_adversarial_loss,
        generator_adversarial_loss,
        perceptual_loss,
        psnr_from_mse,
        resolve_perceptual,
    )
    from codecbench.learned.padding import crop_to, image_to_tensor, pad_to_stride, padded_size, tensor_to_image
    from codecbench.learned.tasks import (
        RateDistortionTask,
        TrainingTask,
        split_model_config,
        training_options,
        with_training_options,
    )
    from codecbench.learned.training import PRESETS, TrainConfig, TrainingError, TrainResult, train

_SUBMODULES = {
    "codecbench.files": ["sha256_of"],
    "codecbench.learned.bitstream": ["Bitstream", "record_symbols"],
    "codecbench.learned.checkpoints": ["CheckpointSpec", "checkpoint_id", "export_payload", "is_exported",
                                       "load_manifest", "load_weights", "read_checkpoint",
                                       "shipped_checkpoints_dir", "write_atomic"],
    "codecbench.learned.codec": ["LearnedCodec", "LoadedModel", "single_threaded"],
    "codecbench.learned.data": ["RandomCrops", "center_crops", "list_images", "split_holdout"],
    "codecbench.learned.losses": ["PERCEPTUAL_LOSSES", "LPIPSLoss", "RateController", "STLPIPSLoss",
                                  "bits_per_pixel", "discriminator_adversarial_loss",
                                  "generator_adversarial_loss", "perceptual_loss", "psnr_from_mse",
                                  "resolve_perceptual"],
    "codecbench.learned.padding": ["crop_to", "image_to_tensor", "pad_to_stride", "padded_size",
                                   "tensor_to_image"],
    "codecbench.learned.tasks": ["RateDistortionTask", "TrainingTask", "split_model_config",
                                 "training_options", "with_training_options"],
    "codecbench.learned.training": ["PRESETS", "TrainConfig", "TrainingError", "TrainResult", "train"],
}
_HOME = {name: module for module, names in _SUBMODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    """Load a facade name from its submodule on first use (PEP 562)."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    _threads.apply()  # a no-op until torch is imported; then the count a run requested
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "PERCEPTUAL_LOSSES",
    "PRESETS",
    "Bitstream",
    "CheckpointSpec",
    "LPIPSLoss",
    "LearnedCodec",
    "LoadedModel",
    "RandomCrops",
    "RateController",
    "RateDistortionTask",
    "STLPIPSLoss",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "TrainingTask",
    "bits_per_pixel",
    "center_crops",
    "checkpoint_id",
    "crop_to",
    "discriminator_adversarial_loss",
    "export_payload",
    "generator_adversarial_loss",
    "image_to_tensor",
    "is_exported",
    "list_images",
    "load_manifest",
    "load_weights",
    "pad_to_stride",
    "padded_size",
    "perceptual_loss",
    "psnr_from_mse",
    "read_checkpoint",
    "record_symbols",
    "resolve_perceptual",
    "sha256_of",
    "shipped_checkpoints_dir",
    "single_threaded",
    "split_holdout",
    "split_model_config",
    "tensor_to_image",
    "train",
    "training_options",
    "with_training_options",
    "write_atomic",
]
