"""What a model contributes to training: the :class:`TrainingTask` interface and training options.

:func:`~codecbench.learned.training.train` runs the loop; a task says what to optimise. A task is
built by :meth:`LearnedCodec.training_task <codecbench.learned.codec.LearnedCodec.training_task>`
from a model and the rate-distortion ``lmbda``; :class:`RateDistortionTask` (CompressAI's MSE
rate-distortion loss) is the default.

**Training options.** A model config (the ``-m KEY=VALUE`` options of ``codecbench train``,
recorded in ``model.pt``) holds the model's constructor arguments and may hold settings that only
training reads (loss weights, a rate target, a perceptual loss). A codec's ``build_model`` splits
them with :func:`split_model_config` and keeps the training options on the model with
:func:`with_training_options`; its ``training_task`` reads them back with :func:`training_options`.
They are never part of the weights, so the codec builds the same network when it loads the
checkpoint to code.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

import torch
from torch import nn

from codecbench.errors import CodecError
from codecbench.learned.losses import bits_per_pixel, psnr_from_mse
from codecbench.learned.padding import crop_to, pad_to_stride

__all__ = [
    "RateDistortionTask",
    "TrainingTask",
    "split_model_config",
    "training_options",
    "with_training_options",
]

ModelT = TypeVar("ModelT", bound=nn.Module)


class TrainingTask(abc.ABC):
    """What one model contributes to :func:`~codecbench.learned.training.train`.

    Required: :attr:`model` and :meth:`loss` (the main loss of one batch, with statistics to
    show). Optional hooks: :meth:`aux_loss` with :meth:`aux_parameters` (by default CompressAI's
    entropy bottleneck quantiles and ``model.aux_loss()``, optimised by their own Adam), and
    :meth:`discriminator_loss` for adversarial training: a task that sets :attr:`discriminator`
    gets it checkpointed (:meth:`modules`) and optimised by its own Adam with the same
    learning-rate schedule, one discriminator step after each generator step; it uses the
    discriminator inside :meth:`loss` for the generator's adversarial term.
    """

    model: nn.Module
    discriminator: nn.Module | None = None

    def modules(self) -> dict[str, nn.Module]:
        """Every module whose weights are trained and checkpointed, by name."""
        modules = {"model": self.model}
        if self.discriminator is not None:
            modules["discriminator"] = self.discriminator
        return modules

    def main_parameters(self) -> list[nn.Parameter]:
        """Parameters of the main optimiser (default: the model's, minus :meth:`aux_parameters`)."""
        aux = {id(p) for p in self.aux_parameters()}
        return [p for p in self.model.parameters() if p.requires_grad and id(p) not in aux]

    def aux_parameters(self) -> list[nn.Parameter]:
        """Parameters of the auxiliary optimiser (default: the entropy bottlenecks' quantiles)."""
        return [p for n, p in self.model.named_parameters() if n.endswith(".quantiles")]

    @abc.abstractmethod
    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss to minimise on ``batch`` (``B x 3 x H x W`` in ``[0, 1]``) and stats to log."""

    def aux_loss(self) -> torch.Tensor | None:
        """A loss for :meth:`aux_parameters`, minimised after each main step (default:
        ``model.aux_loss()`` when the model has auxiliary parameters, else none)."""
        aux_loss = getattr(self.model, "aux_loss", None)
        return aux_loss() if aux_loss is not None and self.aux_parameters() else None

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Parameters of the discriminator optimiser (default: :attr:`discriminator`'s, if any)."""
        return list(self.discriminator.parameters()) if self.discriminator is not None else []

    def discriminator_loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The discriminator's loss on ``batch``; called only when it has parameters."""
        raise NotImplementedError(f"{type(self).__name__} has discriminator parameters but no loss")

    @abc.abstractmethod
    def evaluate(self, image: torch.Tensor) -> dict[str, float]:
        """Statistics (at least ``bpp`` and ``psnr``) of the model in eval mode on one image."""

    def export_info(self) -> dict[str, Any]:
        """What ``model.pt`` records about the training objective (e.g. the perceptual loss)."""
        return {}

    def compile(self) -> None:
        """``--compile``: compile what :meth:`loss` runs (default: ``self.model.compile()``, in
        place, so state dict keys do not change). Tasks that call submodules override it."""
        self.model.compile()


class RateDistortionTask(TrainingTask):
    """``lmbda * 255^2 * MSE + bpp`` for a CompressAI model (CompressAI's ``RateDistortionLoss``).

    The model's ``forward`` returns ``{"x_hat", "likelihoods"}``; bpp here is the likelihood
    estimate used for training, never a benchmark figure. The entropy bottleneck's ``quantiles``
    are the auxiliary parameters, trained on ``model.aux_loss()``.
    """

    def __init__(self, model: nn.Module, lmbda: float, stride: int) -> None:
        self.model, self.lmbda, self.stride = model, lmbda, stride

    def rate_distortion(self, x: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
        out = self.model(x)
        bpp = bits_per_pixel(out["likelihoods"], x.shape[0] * height * width)
        x_hat = crop_to(out["x_hat"], height, width)
        mse = torch.mean((x_hat - crop_to(x, height, width)) ** 2)
        return {"loss": self.lmbda * 255**2 * mse + bpp, "bpp": bpp, "mse": mse}

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        rd = self.rate_distortion(batch, *batch.shape[-2:])
        mse = rd["mse"].item()
        return rd["loss"], {"loss": rd["loss"].item(), "bpp": rd["bpp"].item(), "psnr": psnr_from_mse(mse)}

    def evaluate(self, image: torch.Tensor) -> dict[str, float]:
        height, width = image.shape[-2:]
        rd = self.rate_distortion(pad_to_stride(image, self.stride), height, width)
        return {"loss": rd["loss"].item(), "bpp": rd["bpp"].item(), "psnr": psnr_from_mse(rd["mse"].item())}


def split_model_config(codec: str, config: Mapping[str, Any], architecture: Collection[str],
                       training: Collection[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(constructor arguments, training options)`` of a model config.

    Keys in ``architecture`` build the network; keys in ``training`` are training options. Any
    other key is a ``CodecError`` naming ``codec`` and the keys it accepts."""
    known = set(architecture) | set(training)
    unknown = sorted(set(config) - known)
    if unknown:
        raise CodecError(f"Unknown {codec} model options {unknown}; expected some of {sorted(known)}")
    return ({k: v for k, v in config.items() if k in architecture},
            {k: v for k, v in config.items() if k not in architecture})


def with_training_options(model: ModelT, options: Mapping[str, Any]) -> ModelT:
    """``model`` carrying ``options`` as its :func:`training_options` (not part of its weights)."""
    model.training_options = dict(options)
    return model


def training_options(model: nn.Module) -> dict[str, Any]:
    """The training options ``model`` carries (``{}`` when it was built without any)."""
    return dict(getattr(model, "training_options", {}))
