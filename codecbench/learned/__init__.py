"""The learned-codec toolkit: everything a learned codec plugin shares, so plugins only define models.

* :class:`LearnedCodec` wraps a CompressAI-style model as a codec (real bytes via CompressAI's
  entropy coders, any image size, shipped or user checkpoints) and as a trainable model;
* :class:`Bitstream`: the container (magic, format version, codec, checkpoint id, size, streams, CRC);
* :func:`train`, :class:`TrainConfig`, :class:`TrainingTask` (with adversarial hooks) and
  :class:`RateDistortionTask`: the training pipeline behind ``codecbench train``;
* :class:`CheckpointSpec` and :func:`load_manifest`: shipped checkpoints, verified by sha256.

Importing this package imports torch, so the core imports it lazily (never when listing codecs).
"""

from codecbench.learned.bitstream import Bitstream
from codecbench.learned.checkpoints import (
    CheckpointSpec,
    file_sha256,
    load_manifest,
    read_checkpoint,
    shipped_checkpoints_dir,
)
from codecbench.learned.codec import LearnedCodec
from codecbench.learned.padding import crop_to, pad_to_stride
from codecbench.learned.training import (
    PRESETS,
    RateDistortionTask,
    TrainConfig,
    TrainingError,
    TrainingTask,
    train,
)

__all__ = [
    "PRESETS",
    "Bitstream",
    "CheckpointSpec",
    "LearnedCodec",
    "RateDistortionTask",
    "TrainConfig",
    "TrainingError",
    "TrainingTask",
    "crop_to",
    "file_sha256",
    "load_manifest",
    "pad_to_stride",
    "read_checkpoint",
    "shipped_checkpoints_dir",
    "train",
]
