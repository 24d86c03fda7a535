"""The learned-codec toolkit: everything a learned codec plugin shares, so plugins only define models.

* :class:`LearnedCodec` wraps a CompressAI-style model as a codec (real bytes via CompressAI's
  entropy coders, any image size, shipped or user checkpoints) and as a trainable model;
* :class:`Bitstream`: the container (magic, format version, codec, checkpoint id, size, streams, CRC);
* :func:`train`, :class:`TrainConfig`, :class:`TrainingTask` (with adversarial hooks) and
  :class:`RateDistortionTask`: the training pipeline behind ``codecbench train``;
* :class:`CheckpointSpec` and :func:`load_manifest`: shipped checkpoints, verified by sha256;
* :mod:`~codecbench.learned.losses`: the shared losses (bpp from likelihoods, PSNR from MSE,
  :class:`LPIPSLoss`, the non-saturating adversarial losses).

Importing this package imports torch, so the core imports it lazily (never when listing codecs).
It also applies the torch thread count a run requested (:mod:`codecbench.threads`), and silences
the ``torch.jit.script`` deprecation warning that importing CompressAI triggers (through
torch_geometric, up to three times per command): a filter for that one message, installed before
any learned codec can import CompressAI.
"""

import warnings

warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning,
                        module=r"torch\.jit\._script")

from codecbench import threads as _threads  # noqa: E402
from codecbench.learned.bitstream import Bitstream  # noqa: E402
from codecbench.learned.checkpoints import (
    CheckpointSpec,
    file_sha256,
    load_manifest,
    read_checkpoint,
    shipped_checkpoints_dir,
)
from codecbench.learned.codec import LearnedCodec
from codecbench.learned.losses import (
    LPIPSLoss,
    bits_per_pixel,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    psnr_from_mse,
)
from codecbench.learned.padding import crop_to, pad_to_stride
from codecbench.learned.training import (
    PRESETS,
    RateDistortionTask,
    TrainConfig,
    TrainingError,
    TrainingTask,
    train,
)

_threads.apply()  # torch is imported now: a learned codec is about to load

__all__ = [
    "PRESETS",
    "Bitstream",
    "CheckpointSpec",
    "LPIPSLoss",
    "LearnedCodec",
    "RateDistortionTask",
    "TrainConfig",
    "TrainingError",
    "TrainingTask",
    "bits_per_pixel",
    "crop_to",
    "discriminator_adversarial_loss",
    "file_sha256",
    "generator_adversarial_loss",
    "load_manifest",
    "pad_to_stride",
    "psnr_from_mse",
    "read_checkpoint",
    "shipped_checkpoints_dir",
    "train",
]
