"""``codecbench train``: train a learned codec's model with the shared pipeline."""

from __future__ import annotations

import inspect
import re
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from codecbench import plugins
from codecbench.cli.options import command_line, parse_options
from codecbench.codec import Codec
from codecbench.errors import CodecError
from codecbench.hookspecs import hookimpl


def parse_milestones(value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of steps",
                                 param_hint="--lr-milestones") from None


def parse_model_options(pairs: tuple[str, ...]) -> dict[str, object]:
    """``N=48`` style constructor arguments, with integer and float values converted."""
    options: dict[str, object] = {}
    for key, value in parse_options(pairs).items():
        for kind in (int, float):
            try:
                options[key] = kind(value)
                break
            except ValueError:
                continue
        else:
            options[key] = value
    return options


def trainable_codecs() -> list[Codec]:
    """The registered codecs ``train`` can train (learned codecs built on ``LearnedCodec``).

    Does not import torch: without ``codecbench.learned`` imported, no plugin defines one."""
    learned = sys.modules.get("codecbench.learned")
    if learned is None:
        return []
    return [c for c in plugins.codecs() if isinstance(c, learned.LearnedCodec)]


class TrainCommand(click.Command):
    """``train``, whose help ends with the trainable codecs (looked up only when help is shown)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        try:
            names = [c.name for c in trainable_codecs()]
        except Exception:  # help must show even if a plugin misbehaves
            return
        with formatter.section("Trainable codecs"):
            formatter.write_text(", ".join(names) or "none installed")


def model_options(codec: Any, preset: str | None) -> dict[str, Any]:
    """The model constructor arguments a codec declares, with their defaults (for messages)."""
    options = {**codec.model_config, **codec.preset_model_configs.get(preset or "", {})}
    for name, param in inspect.signature(codec.build_model).parameters.items():
        if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) and name not in options:
            options[name] = param.default if param.default is not param.empty else "required"
    return options


def build_checked(codec: Any, config: Mapping[str, Any], given: Mapping[str, Any],
                  preset: str | None) -> Any:
    """``codec.build_model(**config)``; an unknown ``-m`` name becomes one line naming the valid ones."""
    try:
        return codec.build_model(**config)
    except TypeError as exc:
        match = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if not match or match.group(1) not in given:
            raise
        valid = ", ".join(f"{k}={v}" for k, v in model_options(codec, preset).items())
        raise CodecError(f"Codec {codec.name!r} has no model option {match.group(1)!r} (-m); its "
                         f"model options: {valid or 'none'}") from None


def saved_at(path: Path) -> int | None:
    """``path``'s modification time in nanoseconds, ``None`` when it does not exist."""
    return path.stat().st_mtime_ns if path.is_file() else None


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def interrupted_message(out: Path, before: int | None, command: str) -> str:
    """What Ctrl-C during ``train`` saved (or last saved), and the command that resumes; ``before``
    is :func:`saved_at` of ``OUT/last.pt`` when the command started."""
    state, model = out / "last.pt", out / "model.pt"
    if state.is_file() and saved_at(state) != before:
        step = ""
        try:
            from codecbench.learned import read_checkpoint

            step = f" at step {read_checkpoint(model)['step']}"
        except Exception:  # the message matters more than the step
            pass
        head = f"Interrupted{step}: saved the resumable state {state} and the checkpoint {model}."
    elif state.is_file():
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(state.stat().st_mtime))
        head = f"Interrupted before a step was saved; the last saved state is {state} ({when})."
    else:
        return f"Interrupted before training started; nothing was saved. To start:\n  {command}"
    return f"{head} Rerun the same command to resume:\n  {command}"


@click.command("train", cls=TrainCommand)
@click.argument("codec_name", metavar="CODEC")
@click.option("--data", required=True, multiple=True,
              type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder of training images (random crops are taken from them); repeat to "
                   "train on several folders.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: last.pt (resumable state), model.pt (checkpoint), log.jsonl.")
@click.option("--val", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Held-out validation folder (default: hold out --val-count images of --data).")
@click.option("--val-count", type=click.IntRange(min=0), default=None,
              help="Images of --data held out for validation when --val is not given [8].")
@click.option("--preset", type=click.Choice(["small", "full"]), default=None,
              help="small: scaled to a 2-core CPU; full: 256x256 crops, 400k steps.")
@click.option("--lambda", "lmbda", type=float, default=None,
              help="Rate-distortion trade-off; its role is the codec's (the default task: loss = "
                   "lambda*255^2*MSE + bpp; see the plugin README). Default: the codec's.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Total training steps.")
@click.option("--max-minutes", type=float, default=None,
              help="Stop (resumably) once the run's total training time reaches this.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Images per batch [8].")
@click.option("--crop", type=click.IntRange(min=16), default=None, help="Crop side in pixels [256].")
@click.option("--lr", type=float, default=None, help="Learning rate [1e-4].")
@click.option("--lr-milestones", default=None,
              help="Comma-separated steps at which the learning rate is halved [100000,300000].")
@click.option("--model-option", "-m", "model_pairs", multiple=True, metavar="KEY=VALUE",
              help="Model constructor argument, repeatable (e.g. -m N=48).")
@click.option("--init", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Start from these weights: a model.pt (e.g. another lambda's), or another "
                   "run's last.pt, whose critic is kept too (a branch with other settings).")
@click.option("--device", default="auto", show_default=True, help="auto (cuda when available), cpu or cuda.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch (benchmarks/training_throughput.py measures what helps).")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="bf16: autocast the forward passes to bfloat16 (AMX / AVX-512-BF16 CPUs, recent "
                   "GPUs; falls back to fp32 with a message elsewhere); fp16: autocast to float16 "
                   "with a gradient scaler (CUDA only). Weights, optimizer state and validation "
                   "stay fp32.")
@click.option("--channels-last", is_flag=True, help="Channels-last memory format for the modules and batches.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (slow first steps).")
@click.option("--seed", type=int, default=None, help="Random seed [0].")
@click.option("--ema-decay", type=click.FloatRange(min=0, max=1, max_open=True), default=None,
              help="Validate and export an exponential moving average of the weights with this "
                   "decay per step (e.g. 0.999; steadies a GAN stage's generator) [0: off].")
@click.option("--val-every", type=click.IntRange(min=1), default=None, help="Validate every N steps.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
              help="Save the resumable state every N steps.")
@click.option("--export-half", is_flag=True,
              help="Store model.pt's weights in float16 (half the size; for shipping).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train_command(codec_name: str, data: tuple[Path, ...], out: Path, val: Path | None, val_count: int | None,
                  preset: str | None, lmbda: float | None, steps: int | None,
                  max_minutes: float | None, batch_size: int | None, crop: int | None,
                  lr: float | None, lr_milestones: str | None, model_pairs: tuple[str, ...],
                  init: Path | None, device: str, threads: int | None, seed: int | None,
                  val_every: int | None, checkpoint_every: int | None, export_half: bool,
                  quiet: bool, precision: str, channels_last: bool, compile_: bool,
                  ema_decay: float | None) -> None:
    """Train the model of a learned CODEC on a folder of images.

    Rerunning the same command resumes from OUT/last.pt (exactly: optimizer, schedule, step and
    random state are restored); raise --steps to train further. Ctrl-C saves OUT/last.pt first.
    Ship OUT/model.pt, or use it with `codecbench run --codec CODEC --weights OUT/model.pt`.

    Under torchrun (one process per GPU, or several CPU processes) it trains with
    DistributedDataParallel: --batch-size is the global batch, and only rank 0 writes and prints.
    """
    from codecbench.learned import LearnedCodec, TrainConfig, train
    from codecbench.learned.data import list_images, split_holdout
    from codecbench.learned.distributed import Ranks
    from codecbench.learned.training import apply_preset

    main_rank = Ranks.from_environment().is_main

    def say(message: str) -> None:
        if not quiet and main_rank:
            click.echo(message, err=True)

    codec = plugins.codecs().get(codec_name)
    if not isinstance(codec, LearnedCodec):
        names = ", ".join(c.name for c in trainable_codecs()) or "none installed"
        raise CodecError(f"Codec {codec_name!r} is not trainable (only learned codecs built on "
                         f"codecbench.learned.LearnedCodec are); trainable codecs: {names}")
    given = parse_model_options(model_pairs)
    model_config = {**codec.model_config, **codec.preset_model_configs.get(preset or "", {}), **given}
    config = apply_preset(
        TrainConfig(data=data, out=out, lmbda=codec.default_lmbda), preset, val=val,
        val_count=val_count, lmbda=lmbda, steps=steps, max_minutes=max_minutes,
        batch_size=batch_size, crop=crop, lr=lr, lr_milestones=parse_milestones(lr_milestones),
        init=init, device=device, threads=threads, seed=seed, val_every=val_every,
        checkpoint_every=checkpoint_every, model_config=model_config, export_half=export_half,
        progress=not quiet, precision=precision, channels_last=channels_last, compile=compile_,
        ema_decay=ema_decay)
    paths = list_images(config.data)
    if config.val is not None:
        held = f"and {len(list_images(config.val))} validation images from {config.val}"
    else:
        paths, held_out = split_holdout(paths, config.val_count)
        held = f"and {len(held_out)} held out for validation"
    say(f"reading {len(paths)} training images from {', '.join(str(d) for d in config.data)} ({held})")
    command = command_line()

    def build_task() -> Any:
        settings = ", ".join(f"{k}={v}" for k, v in model_config.items())
        say(f"building the {codec.name} model ({settings})")
        model = build_checked(codec, model_config, given, preset)
        state = Path(config.out) / "last.pt"
        say(f"resuming from {state}" if state.exists() else
            f"starting from {config.init}" if config.init else "starting from scratch")
        return codec.training_task(model, config.lmbda)

    before = saved_at(Path(config.out) / "last.pt")
    # `kill PID` of a background run (whose SIGINT a non-interactive shell ignores) saves like Ctrl-C.
    previous_handler = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        say("importing the model code (torch, CompressAI)")
        try:
            import compressai  # noqa: F401  (seconds: imported here, after saying so)
        except ImportError:
            pass
        result = train(build_task, config, codec=codec.name, export_info={"training_command": command},
                       load_init=codec.load_init_weights)
    except KeyboardInterrupt:
        if main_rank:
            click.echo(interrupted_message(Path(config.out), before, command), err=True)
        raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    if not main_rank:
        return
    stats = ", ".join(f"{k} {v:.4g}" for k, v in result.val_stats.items()) or "none run"
    click.echo(f"step {result.step}, {result.wall_s / 60:.1f} min of training; validation: {stats}")
    if result.throughput.get("crops_per_s"):
        click.echo(f"throughput: {result.throughput['crops_per_s']} crops/s ({result.throughput['precision']}, "
                   f"{result.throughput['threads']} threads, channels-last {result.throughput['channels_last']}, "
                   f"compile {result.throughput['compile']})")
    click.echo(f"checkpoint: {result.model_path} (use: codecbench run --codec {codec.name} "
               f"--weights {result.model_path})")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(train_command)
