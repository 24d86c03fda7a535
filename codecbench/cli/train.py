"""``codecbench train``: train a learned codec's model with the shared pipeline."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from codecbench import plugins
from codecbench.cli import cli, handle_errors, parse_options
from codecbench.errors import CodecError


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


@cli.command("train")
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
              help="Start from these weights (e.g. fine-tune another lambda's model.pt).")
@click.option("--device", default="auto", show_default=True, help="auto (cuda when available), cpu or cuda.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch (benchmarks/training_throughput.py measures what helps).")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="bf16: autocast the forward passes to bfloat16 (AMX / AVX-512-BF16 CPUs, recent "
                   "GPUs; falls back to fp32 with a message elsewhere). Weights, optimizer state "
                   "and validation stay fp32.")
@click.option("--channels-last", is_flag=True, help="Channels-last memory format for the modules and batches.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (slow first steps).")
@click.option("--seed", type=int, default=None, help="Random seed [0].")
@click.option("--val-every", type=click.IntRange(min=1), default=None, help="Validate every N steps.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
              help="Save the resumable state every N steps.")
@click.option("--export-half", is_flag=True,
              help="Store model.pt's weights in float16 (half the size; for shipping).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handle_errors
def train_command(codec_name: str, data: tuple[Path, ...], out: Path, val: Path | None, val_count: int | None,
                  preset: str | None, lmbda: float | None, steps: int | None,
                  max_minutes: float | None, batch_size: int | None, crop: int | None,
                  lr: float | None, lr_milestones: str | None, model_pairs: tuple[str, ...],
                  init: Path | None, device: str, threads: int | None, seed: int | None,
                  val_every: int | None, checkpoint_every: int | None, export_half: bool,
                  quiet: bool, precision: str, channels_last: bool, compile_: bool) -> None:
    """Train the model of a learned CODEC on a folder of images.

    Rerunning the same command resumes from OUT/last.pt (exactly: optimizer, schedule, step and
    random state are restored); raise --steps to train further. Ship OUT/model.pt, or use it
    with `codecbench run --codec CODEC --weights OUT/model.pt`.
    """
    from codecbench.learned import LearnedCodec, TrainConfig, train
    from codecbench.learned.training import apply_preset

    codec = plugins.codecs().get(codec_name)
    if not isinstance(codec, LearnedCodec):
        raise CodecError(f"Codec {codec_name!r} is not trainable (only learned codecs built on "
                         "codecbench.learned.LearnedCodec are)")
    model_config = {**codec.model_config, **codec.preset_model_configs.get(preset or "", {}),
                    **parse_model_options(model_pairs)}
    config = apply_preset(
        TrainConfig(data=data, out=out, lmbda=codec.default_lmbda), preset, val=val,
        val_count=val_count, lmbda=lmbda, steps=steps, max_minutes=max_minutes,
        batch_size=batch_size, crop=crop, lr=lr, lr_milestones=parse_milestones(lr_milestones),
        init=init, device=device, threads=threads, seed=seed, val_every=val_every,
        checkpoint_every=checkpoint_every, model_config=model_config, export_half=export_half,
        progress=not quiet, precision=precision, channels_last=channels_last, compile=compile_)
    command = "codecbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = train(lambda: codec.training_task(codec.build_model(**model_config), config.lmbda),
                   config, codec=codec.name, export_info={"training_command": command},
                   load_init=codec.load_init_weights)
    stats = ", ".join(f"{k} {v:.4g}" for k, v in result.val_stats.items()) or "none run"
    click.echo(f"step {result.step}, {result.wall_s / 60:.1f} min of training; validation: {stats}")
    if result.throughput.get("crops_per_s"):
        click.echo(f"throughput: {result.throughput['crops_per_s']} crops/s ({result.throughput['precision']}, "
                   f"{result.throughput['threads']} threads, channels-last {result.throughput['channels_last']}, "
                   f"compile {result.throughput['compile']})")
    click.echo(f"checkpoint: {result.model_path} (use: codecbench run --codec {codec.name} "
               f"--weights {result.model_path})")
