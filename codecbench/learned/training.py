"""The training loop shared by every learned codec (``codecbench train``).

A plugin describes *what* to optimise with a :class:`~codecbench.learned.tasks.TrainingTask` (its
model, its loss, an optional auxiliary loss and an optional discriminator for adversarial
training; see :mod:`codecbench.learned.tasks`); :func:`train`
does the rest: random crops, Adam (beta1 0.9, beta2 0.999) with the learning rate halved at
configurable steps, gradient clipping, a tqdm bar with live loss/bpp/PSNR, periodic validation on
held-out images, and checkpoints that resume exactly (model, optimizers, schedulers, step, RNG).

Files in the output folder: ``last.pt`` (full training state, for resuming), ``model.pt`` (the
shippable checkpoint: see :mod:`codecbench.learned.checkpoints`), ``log.jsonl`` (one line per
logged training interval and per validation) and ``curve.csv`` (the learning curve: one row per
validation with step, training wall time, clock time and the validation figures).

Speed settings (they may change on resume and do not define the run): ``precision`` (``fp32``;
``bf16`` autocast for the forward passes, with a logged fall-back to fp32 where the CPU or GPU has
no bf16 support; ``fp16`` autocast with a gradient scaler, CUDA only), ``channels_last`` memory
format, ``threads`` and ``compile`` (:meth:`TrainingTask.compile`). The chosen settings and the
measured training crops/s are stored in ``model.pt`` (``throughput``) and in each logged training
interval.

Under ``torchrun`` the same function trains with one process per device
(:mod:`codecbench.learned.distributed`): ``batch_size`` is the global batch, split evenly over the
ranks, and only rank 0 writes files and shows progress.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from codecbench.errors import CodecbenchError
from codecbench.learned.checkpoints import (
    TRAINING_STATE_FORMAT,
    export_payload,
    load_weights,
    read_checkpoint,
    write_atomic,
)
from codecbench.learned.data import RandomCrops, center_crops, list_images, split_holdout
from codecbench.learned.distributed import Ranks, gather, mean_over_ranks, process_group, wrap
from codecbench.learned.tasks import TrainingTask
from codecbench.machine import cpu_name

logger = logging.getLogger(__name__)
PRECISIONS = ("fp32", "bf16", "fp16")


class TrainingError(CodecbenchError):
    """A training run cannot start or resume (bad data folder, incompatible checkpoint...)."""


@dataclass
class TrainConfig:
    """Everything that defines a training run. ``lmbda`` and ``model_config`` come from the codec
    when left unset; ``steps``, ``max_minutes``, the intervals, the device, ``export_half`` and
    ``ema_decay`` may change on resume."""

    data: Path | tuple[Path, ...]
    """The folder of training images, or several folders."""
    out: Path
    val: Path | None = None
    val_count: int = 8
    crop: int = 256
    batch_size: int = 8
    steps: int = 400_000
    lr: float = 1e-4
    lr_milestones: tuple[int, ...] = (100_000, 300_000)
    lr_gamma: float = 0.5
    aux_lr: float = 1e-3
    lmbda: float | None = None
    clip_max_norm: float = 1.0
    val_every: int = 5_000
    checkpoint_every: int = 500
    log_every: int = 50
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    max_minutes: float | None = None
    init: Path | None = None
    """Weights to start from: a ``model.pt`` (the model only), or another run's ``last.pt`` (every
    module it trained, the critic included; none of its optimizer state)."""
    model_config: dict[str, Any] = field(default_factory=dict)
    export_half: bool = False
    progress: bool = True
    precision: str = "fp32"
    """``fp32``, ``bf16`` or ``fp16`` (autocast of the forward passes; fp32 weights, optimizer and
    validation; fp16 with a gradient scaler, on CUDA only)."""
    channels_last: bool = False
    compile: bool = False
    ema_decay: float = 0.0
    """Above 0: validation and ``model.pt`` use an exponential moving average of the model's
    weights, updated after every step with this decay (e.g. 0.999); 0: the weights themselves.
    Switched on when resuming, the average starts from the weights resumed."""

    def identity(self) -> dict[str, Any]:
        """The fields a resumed run must share with the run it resumes."""
        keys = ("crop", "batch_size", "lr", "lr_milestones", "lr_gamma", "aux_lr", "lmbda",
                "clip_max_norm", "seed", "model_config")
        return json.loads(json.dumps({k: getattr(self, k) for k in keys}, default=str))


PRESETS: dict[str, dict[str, Any]] = {
    # The defaults: 256x256 crops, lr 1e-4 halved at 100k and 300k steps.
    "full": {"crop": 256, "batch_size": 8, "steps": 400_000, "lr_milestones": (100_000, 300_000),
             "val_every": 5_000, "checkpoint_every": 1_000},
    # Scaled to a shared 2-core CPU (one thread, so parallel jobs do not fight): Cheng2020 with
    # N=48 on 128x128 crops, batch 8, measured 0.5-0.6 s/step on one core.
    "small": {"crop": 128, "batch_size": 8, "steps": 4_000, "lr_milestones": (3_000,),
              "val_every": 500, "checkpoint_every": 100, "threads": 1},
}


def apply_preset(config: TrainConfig, preset: str | None, **overrides: Any) -> TrainConfig:
    """``config`` with a preset's values, then explicit ``overrides`` (``None`` values ignored)."""
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise TrainingError(f'Invalid preset "{preset}"; expected one of {", ".join(PRESETS)}')
        values.update(PRESETS[preset])
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise TrainingError(f"Unknown training settings: {', '.join(sorted(unknown))}")
    return replace(config, **values)


def bf16_unsupported_reason(device: torch.device) -> str | None:
    """Why bf16 autocast would be slow or unsupported on ``device`` (``None`` when it is fine)."""
    if device.type == "cuda":
        return None if torch.cuda.is_bf16_supported() else "this GPU has no bf16 support"
    if not torch.backends.mkldnn.is_available():
        return "torch was built without oneDNN (mkldnn)"
    cpu = getattr(torch, "cpu", None)
    if cpu is not None and hasattr(cpu, "_is_avx512_bf16_supported"):
        if not (cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported()):
            return "this CPU has neither AVX-512-BF16 nor AMX (bf16 would be emulated, slower)"
    return None


def resolve_precision(name: str, device: torch.device) -> str:
    """The precision a run uses: ``name``, or ``fp32`` (logged) where ``bf16`` is unsupported;
    ``fp16`` off CUDA is an error."""
    if name not in PRECISIONS:
        raise TrainingError(f'Invalid precision "{name}"; expected one of {", ".join(PRECISIONS)}')
    if name == "fp16" and device.type != "cuda":
        raise TrainingError(f"--precision fp16 needs a CUDA device (its gradient scaler keeps fp16 "
                            f"gradients from underflowing), not {device.type}; on the CPU use "
                            "--precision bf16 or fp32")
    if name == "bf16":
        reason = bf16_unsupported_reason(device)
        if reason is not None:
            logger.warning("bf16 requested but %s: training in fp32", reason)
            return "fp32"
    return name


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The autocast context of ``precision`` (a no-op for fp32)."""
    if precision in ("bf16", "fp16"):
        return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    return contextlib.nullcontext()


def resolve_device(name: str, ranks: Ranks = Ranks()) -> torch.device:
    """``auto`` is ``cuda`` when available, else ``cpu``; an unavailable ``cuda`` is an error.
    Each rank of a multi-process job gets the GPU of its local rank (``cuda:LOCAL_RANK``)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("--device cuda requested but no CUDA device is available; use --device cpu")
    device = torch.device(name)
    if device.type == "cuda" and ranks.distributed:
        return torch.device("cuda", ranks.local_rank)
    return device


@dataclass
class TrainResult:
    """Where a run ended: its step, cumulative wall time and the files it wrote."""

    step: int
    wall_s: float
    model_path: Path
    state_path: Path
    train_stats: dict[str, float]
    val_stats: dict[str, float]
    throughput: dict[str, Any] = field(default_factory=dict)


class _Run:
    """The mutable state of one training run (kept together so it can be saved and restored)."""

    def __init__(self, task: TrainingTask, config: TrainConfig, device: torch.device,
                 precision: str = "fp32", ranks: Ranks = Ranks()) -> None:
        self.task, self.config, self.device, self.precision = task, config, device, precision
        self.ranks = ranks
        self.step, self.wall_s = 0, 0.0
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.ddp: nn.Module | None = None  # the task in DistributedDataParallel, in a multi-process job
        adam = dict(betas=(0.9, 0.999))
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            "main": torch.optim.Adam(task.main_parameters(), lr=config.lr, **adam)}
        if task.aux_parameters():
            self.optimizers["aux"] = torch.optim.Adam(task.aux_parameters(), lr=config.aux_lr, **adam)
        if task.discriminator_parameters():
            self.optimizers["discriminator"] = torch.optim.Adam(
                task.discriminator_parameters(), lr=config.lr, **adam)
        self.schedulers = {
            name: torch.optim.lr_scheduler.MultiStepLR(
                self.optimizers[name], list(config.lr_milestones), gamma=config.lr_gamma)
            for name in ("main", "discriminator") if name in self.optimizers}
        # The moving average of the model's parameters, by name. By hand, not torch's AveragedModel:
        # that keeps a copy of the whole module and copies the buffers into it at every step, which
        # fails once CompressAI's update() (validation) has resized the model's CDF-table buffers.
        self.ema: dict[str, torch.Tensor] | None = None
        self.ema_steps = 0

    def rng_state(self) -> dict[str, torch.Tensor]:
        """This process's random state (CPU, and its CUDA device's)."""
        state = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def set_rng_state(self, state: Mapping[str, torch.Tensor]) -> None:
        torch.set_rng_state(state["cpu"])
        if self.device.type == "cuda" and "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], self.device)

    def state(self, rng_ranks: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
        """The resumable state; ``rng_ranks`` is the random state of every rank (rank 0 first)."""
        state = {
            "format": TRAINING_STATE_FORMAT, "step": self.step, "wall_s": self.wall_s,
            "identity": json.dumps(self.config.identity(), sort_keys=True),
            "modules": {n: m.state_dict() for n, m in self.task.modules().items()},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "rng_cpu": rng_ranks[0]["cpu"],
            "rng_ranks": rng_ranks,
        }
        if "cuda" in rng_ranks[0]:
            state["rng_cuda"] = rng_ranks[0]["cuda"]
        if self.scaler.is_enabled():
            state["scaler"] = self.scaler.state_dict()
        if self.ema is not None:
            state["ema"] = {"steps": self.ema_steps, "parameters": self.ema}
        return state

    def start_from(self, state: Mapping[str, Any], path: Path) -> None:
        """Load the trained weights of every module another run's state (its ``last.pt``) holds,
        the critic's included, and nothing else: step, optimizers, schedule and average start
        afresh, so any setting may differ (a branch: e.g. a lower lr or another loss weight)."""
        stored = state.get("modules", {})
        if "model" not in stored:
            raise TrainingError(f"{path} is a training state without the model's weights: --init "
                                "a codecbench train last.pt or model.pt")
        for name, module in self.task.modules().items():
            if name in stored:
                try:
                    module.load_state_dict(stored[name])
                except RuntimeError as exc:
                    raise TrainingError(
                        f"--init {path}: its {name} does not fit this run's "
                        f"({str(exc).splitlines()[0]}); branch a run of the same codec and -m "
                        "model options, or --init that run's model.pt") from exc
        if self.ranks.is_main:
            logger.info("started from %s (step %s): %s", path, state.get("step"),
                        ", ".join(n for n in self.task.modules() if n in stored))

    def restore(self, state: Mapping[str, Any], path: Path) -> None:
        if state.get("format") != TRAINING_STATE_FORMAT:
            raise TrainingError(f"{path} is not a codecbench training state")
        stored = json.loads(state["identity"])
        current = self.config.identity()
        differ = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
        if differ:
            detail = "; ".join(f"{k}: was {stored.get(k)!r}, now {current.get(k)!r}" for k in differ)
            raise TrainingError(f"Cannot resume {path}: settings changed ({detail}). "
                                "Use the same settings, or a new --out folder")
        for name, module in self.task.modules().items():
            module.load_state_dict(state["modules"][name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        if self.config.ema_decay and "ema" in state:
            self.ema, self.ema_steps = dict(state["ema"]["parameters"]), int(state["ema"]["steps"])
        self.step, self.wall_s = int(state["step"]), float(state["wall_s"])
        if self.scaler.is_enabled() and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        rng_ranks = state.get("rng_ranks") or [{"cpu": state["rng_cpu"], **(
            {"cuda": state["rng_cuda"]} if "rng_cuda" in state else {})}]
        if len(rng_ranks) == self.ranks.world_size:
            self.set_rng_state(rng_ranks[self.ranks.rank])
        else:  # another number of processes: the run goes on, but not bit for bit as it would have
            if self.ranks.is_main:
                logger.warning("%s was saved by %d process(es), resumed by %d: random state reseeded",
                               path, len(rng_ranks), self.ranks.world_size)
            torch.manual_seed(self.config.seed * 1_000_003 + self.step * 1_009 + self.ranks.rank)

    def losses(self, batch: torch.Tensor, which: str = "loss") -> tuple[torch.Tensor, dict[str, float]]:
        """The task's ``loss`` (or ``discriminator`` loss) of ``batch``, through DistributedDataParallel
        in a multi-process job so that its gradients are averaged over the ranks."""
        with autocast(self.device, self.precision):
            if self.ddp is not None:
                return self.ddp(batch, which)
            return self.task.discriminator_loss(batch) if which == "discriminator" else self.task.loss(batch)

    def train_step(self, batch: torch.Tensor) -> dict[str, float]:
        task, config = self.task, self.config
        for module in task.modules().values():
            module.train()
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        scaler = self.scaler  # fp16 only; otherwise scale() and unscale_() do nothing and step() steps
        loss, stats = self.losses(batch)
        scaler.scale(loss).backward()
        if config.clip_max_norm > 0:
            scaler.unscale_(self.optimizers["main"])
            nn.utils.clip_grad_norm_(task.main_parameters(), config.clip_max_norm)
        scaler.step(self.optimizers["main"])
        if "aux" in self.optimizers:  # fp32 and independent of the batch: the same on every rank
            aux_loss = task.aux_loss()
            if aux_loss is not None:
                aux_loss.backward()
                self.optimizers["aux"].step()
                stats["aux"] = aux_loss.item()
        if "discriminator" in self.optimizers:
            self.optimizers["discriminator"].zero_grad(set_to_none=True)
            d_loss, d_stats = self.losses(batch, "discriminator")
            scaler.scale(d_loss).backward()
            scaler.step(self.optimizers["discriminator"])
            stats.update(d_stats)
        scaler.update()
        for scheduler in self.schedulers.values():
            scheduler.step()
        if config.ema_decay:
            self.update_average()
        self.step += 1
        return stats

    @torch.no_grad()
    def update_average(self) -> None:
        """One step of the parameters' exponential moving average (the first copies them)."""
        params = dict(self.task.model.named_parameters())
        if self.ema is None:
            self.ema = {name: p.detach().clone(memory_format=torch.contiguous_format) for name, p in params.items()}
        else:
            for name, averaged in self.ema.items():
                averaged.lerp_(params[name], 1 - self.config.ema_decay)
        self.ema_steps += 1

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """Inside, the model holds the moving-average weights (when ``ema_decay`` is on); training's
        own weights come back on exit. A swap rather than a second model: validation and export
        take the task's model as it is."""
        if self.ema is None:  # off, or no step yet: nothing averaged
            yield
            return
        params = dict(self.task.model.named_parameters())
        trained = {name: p.detach().clone() for name, p in params.items()}
        with torch.no_grad():
            for name, param in params.items():
                param.copy_(self.ema[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, param in params.items():
                    param.copy_(trained[name])


def to_channels_last(module: nn.Module, device: torch.device) -> None:
    """Convert ``module`` to channels-last memory format in place, except (on the CPU) the 1x1
    strided convolutions with fewer than 16 input channels, which keep contiguous weights and inputs.

    Why: oneDNN's backward-weights kernel for such a convolution on channels-last input (its
    reduce-to-unit-stride path, taken when the input channels are fewer than its 8- or 16-channel
    block) writes past its workspace: heap corruption, then a crash (uxlfoundation/oneDNN#6035,
    open; seen here with torch 2.14.1 on an AVX2-only CPU, on the stride-2 skip of CompressAI's
    ``ResidualBlockWithStride``, whose input is the image). In contiguous format it is correct.
    """
    module.to(memory_format=torch.channels_last)
    if device.type != "cpu":
        return
    for conv in module.modules():
        if (isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.stride != (1, 1)
                and conv.in_channels < 16):
            conv.weight.data = conv.weight.data.clone(memory_format=torch.contiguous_format)
            conv.register_forward_pre_hook(_contiguous_input)


def _contiguous_input(_: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (args[0].contiguous(), *args[1:])


def exported_tensor(tensor: torch.Tensor, half: bool) -> torch.Tensor:
    """A tensor as ``model.pt`` stores it: on the CPU, floats in float16 when ``half`` (half the
    file size; ``load_state_dict`` casts back to the model's float32 when the codec loads it)."""
    tensor = tensor.detach().cpu()
    return tensor.half() if half and tensor.is_floating_point() else tensor


def check_finite(stats: Mapping[str, float], step: int, state_path: Path) -> None:
    """Stop a diverged run before it saves: NaN weights must never replace the last good state."""
    bad = {k: v for k, v in stats.items() if k in ("loss", "aux", "bpp") and not math.isfinite(v)}
    if bad:
        raise TrainingError(
            f"Training diverged at step {step} ({', '.join(f'{k} {v}' for k, v in bad.items())}); "
            f"{state_path} keeps the last saved state. Start again with a lower --lr in a new --out "
            f"folder (--init {state_path.parent / 'model.pt'} keeps the progress)")


def _mean_stats(rows: Iterable[Mapping[str, float]]) -> dict[str, float]:
    rows = list(rows)
    keys = {k for row in rows for k in row}
    return {k: sum(r[k] for r in rows if k in r) / sum(1 for r in rows if k in r) for k in sorted(keys)}


def _format_stats(stats: Mapping[str, float]) -> dict[str, str]:
    return {k: f"{v:.4g}" for k, v in stats.items() if k in ("loss", "bpp", "psnr")}


def validate(task: TrainingTask, images: list[torch.Tensor], device: torch.device) -> dict[str, float]:
    """Mean of :meth:`TrainingTask.evaluate` over ``images``, in eval mode and without gradients."""
    for module in task.modules().values():
        module.eval()
    with torch.no_grad():
        return _mean_stats(task.evaluate(image.to(device)) for image in images)


def train(build_task: Callable[[], TrainingTask], config: TrainConfig, *, codec: str,
          export_info: Mapping[str, Any] | None = None,
          load_init: Callable[[nn.Module, Mapping[str, Any]], None] = load_weights) -> TrainResult:
    """Train (or resume training of) the task ``build_task()`` makes, as ``config`` says.

    The global RNG is seeded with ``config.seed`` before ``build_task`` runs, so a run is
    reproducible. If ``config.out / "last.pt"`` exists, the run resumes from it, after checking
    that the settings that define the run are unchanged. Ctrl-C saves the state before exiting
    (in a multi-process job, the last periodic checkpoint stands instead).
    ``export_info`` is stored in ``model.pt`` beside the weights (e.g. the training command);
    ``load_init`` loads ``config.init`` into a new model (default: :func:`load_weights`).

    Started by ``torchrun``, every rank calls this function: it joins the process group and
    trains its slice of each global batch (:mod:`codecbench.learned.distributed`); rank 0's result
    holds the validation figures, the other ranks' none.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    ranks = Ranks.from_environment()
    device = resolve_device(config.device, ranks)
    if config.batch_size % ranks.world_size:
        raise TrainingError(f"--batch-size {config.batch_size} is the global batch: it must be a "
                            f"multiple of the {ranks.world_size} processes")
    with process_group(ranks, device):
        return _train(build_task, config, codec, export_info, load_init, ranks, device)


def _train(build_task: Callable[[], TrainingTask], config: TrainConfig, codec: str,
           export_info: Mapping[str, Any] | None,
           load_init: Callable[[nn.Module, Mapping[str, Any]], None], ranks: Ranks,
           device: torch.device) -> TrainResult:
    precision = resolve_precision(config.precision, device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    if config.lmbda is None:
        raise TrainingError("No rate-distortion lambda given (--lambda)")
    if not 0 <= config.ema_decay < 1:
        raise TrainingError(f"--ema-decay must be in [0, 1) (e.g. 0.999; 0 turns averaging off), "
                            f"not {config.ema_decay}")
    train_paths = list_images(config.data)
    if config.val is not None:
        val_paths = list_images(config.val)
    else:
        train_paths, val_paths = split_holdout(train_paths, config.val_count)
    crops = RandomCrops(train_paths, config.crop, seed=config.seed)
    val_images = center_crops(val_paths, max(config.crop, 256)) if ranks.is_main else []
    share = config.batch_size // ranks.world_size
    rows = slice(ranks.rank * share, (ranks.rank + 1) * share)  # this rank's slice of each batch

    torch.manual_seed(config.seed)
    task = build_task()
    if ranks.rank:  # the same initial weights everywhere, other training noise on every rank
        torch.manual_seed(config.seed * 1_000_003 + ranks.rank)
    for module in task.modules().values():
        module.to(device)
    run = _Run(task, config, device, precision, ranks)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    state_path, model_path, log_path = out / "last.pt", out / "model.pt", out / "log.jsonl"
    curve_path = out / "curve.csv"
    if state_path.exists():
        run.restore(read_checkpoint(state_path), state_path)
    elif config.init is not None:
        payload = read_checkpoint(config.init)
        if payload.get("format") == TRAINING_STATE_FORMAT:
            run.start_from(payload, config.init)
        else:
            load_init(task.model, payload)
    if config.channels_last:
        for module in task.modules().values():
            to_channels_last(module, device)
    if config.compile:
        task.compile()
    if ranks.distributed:
        run.ddp = wrap(task, device)
    session = {"steps": 0, "seconds": 0.0}

    def throughput() -> dict[str, Any]:
        crops = session["steps"] * config.batch_size
        return {"crops_per_s": round(crops / session["seconds"], 2) if session["seconds"] else None,
                "steps_measured": session["steps"], "crop": config.crop,
                "batch_size": config.batch_size, "precision": precision,
                "channels_last": config.channels_last, "compile": config.compile,
                "threads": torch.get_num_threads(), "device": str(device), "cpu": cpu_name(),
                "processes": ranks.world_size}

    def save() -> None:
        """Every rank calls it (their random states are gathered); rank 0 writes."""
        rng_ranks = gather(run.rng_state())
        if not ranks.is_main:
            return
        write_atomic(run.state(rng_ranks), state_path)
        info = {"lmbda": config.lmbda, "step": run.step, "wall_s": round(run.wall_s, 1),
                "train_config": json.loads(json.dumps(asdict(config), default=str)),
                "throughput": throughput(), **task.export_info(), **(export_info or {})}
        with run.averaged_weights():  # written inside: the state dict's tensors share the weights' storage
            state_dict = {k: exported_tensor(v, config.export_half) for k, v in task.model.state_dict().items()}
            write_atomic(export_payload(codec, config.model_config, state_dict, **info), model_path)

    def log(split: str, stats: Mapping[str, float]) -> None:
        row = {"step": run.step, "split": split, "lr": run.optimizers["main"].param_groups[0]["lr"],
               "wall_s": round(run.wall_s, 1), **stats}
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def write_curve(stats: Mapping[str, float]) -> None:
        row = {"step": run.step, "wall_s": round(run.wall_s, 1),
               "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **stats}
        header = list(row)
        if curve_path.exists():
            with open(curve_path, encoding="utf-8", newline="") as f:
                header = next(csv.reader(f), header)
        with open(curve_path, "a", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
            if f.tell() == 0:
                writer.writeheader()
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    def validate_and_log() -> dict[str, float]:
        with run.averaged_weights():
            stats = validate(task, val_images, device)
        log("val", stats)
        write_curve(stats)
        bar.write(f"step {run.step}: validation " + ", ".join(f"{k} {v:.4g}" for k, v in stats.items()),
                  file=sys.stderr)
        return stats

    recent: list[dict[str, float]] = []
    val_stats: dict[str, float] = {}
    val_step: int | None = None
    budget_s = config.max_minutes * 60 if config.max_minutes is not None else math.inf
    bar = tqdm(total=config.steps, initial=run.step, desc=f"train {codec}", unit="step",
               file=sys.stderr, disable=not (config.progress and ranks.is_main), dynamic_ncols=True)
    try:
        while run.step < config.steps and run.wall_s < budget_s:
            started = time.perf_counter()
            batch = crops.batch(run.step, config.batch_size)[rows].to(device)
            stats = run.train_step(batch.contiguous(memory_format=memory_format))
            # The mean over ranks (the figures of the whole batch for batch-mean statistics), and a
            # step time every rank agrees on, so that all stop at the same step.
            stats["_elapsed"] = time.perf_counter() - started
            stats = mean_over_ranks(stats, device)
            elapsed = stats.pop("_elapsed")
            check_finite(stats, run.step, state_path)
            recent.append(stats)
            run.wall_s += elapsed
            session["steps"] += 1
            session["seconds"] += elapsed
            recent = recent[-config.log_every:]
            bar.update(1)
            bar.set_postfix(_format_stats(_mean_stats(recent)), refresh=False)
            if ranks.is_main and run.step % config.log_every == 0:
                log("train", {**_mean_stats(recent), "crops_per_s": throughput()["crops_per_s"]})
            if val_images and (run.step % config.val_every == 0 or run.step == config.steps):
                val_stats, val_step = validate_and_log(), run.step
            if run.step % config.checkpoint_every == 0:
                save()
        if val_images and val_step != run.step:
            # Stopped by --max-minutes (or resumed) between validations: the figures reported are
            # those of the checkpoint written below.
            val_stats, val_step = validate_and_log(), run.step
    except KeyboardInterrupt:
        if not ranks.distributed:  # a save gathers every rank's state: not after an interrupt
            save()
        raise
    finally:
        bar.close()
    save()
    return TrainResult(run.step, run.wall_s, model_path, state_path, _mean_stats(recent), val_stats,
                       throughput())
