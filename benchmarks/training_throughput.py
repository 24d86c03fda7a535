"""Training crops/s of one learned codec's training step under the speed settings of ``codecbench train``.

For each configuration (threads, precision, channels-last, torch.compile, crop size) it builds the
codec's training task afresh, runs a few warm-up steps (compilation happens there), then times
``--steps`` full training steps (forward, backward, optimizer and auxiliary steps, as
``codecbench train`` runs them) on random crops, and prints crops/s. Each configuration takes a few
seconds. Example (the OT+GAN flagship's stage-1 configuration)::

    CODECBENCH_WEIGHTS=../shared/weights python benchmarks/training_throughput.py --codec ot \\
        -m N=64 -m latent_channels=8 -m upsample=subpixel -m recipe=rdp -m lpips_weight=100

``--configs`` picks configurations by name (default: all); bf16 falls back to fp32 with a message
where the CPU has no AVX-512-BF16/AMX (see ``codecbench.learned.training.bf16_unsupported_reason``).
"""

from __future__ import annotations

import argparse
import time

import torch

from codecbench import plugins
from codecbench.cli.train import parse_model_options
from codecbench.learned.training import TrainConfig, _Run, bf16_unsupported_reason, resolve_precision

# name: (threads, precision, channels_last, compile, crop)
CONFIGS: dict[str, tuple[int, str, bool, bool, int]] = {
    "1t-fp32-128": (1, "fp32", False, False, 128),
    "1t-bf16-128": (1, "bf16", False, False, 128),
    "1t-bf16-cl-128": (1, "bf16", True, False, 128),
    "2t-fp32-128": (2, "fp32", False, False, 128),
    "2t-fp32-cl-128": (2, "fp32", True, False, 128),
    "2t-bf16-128": (2, "bf16", False, False, 128),
    "2t-bf16-cl-128": (2, "bf16", True, False, 128),
    "1t-bf16-cl-compile-128": (1, "bf16", True, True, 128),
    "2t-fp32-compile-128": (2, "fp32", False, True, 128),
    "2t-bf16-compile-128": (2, "bf16", False, True, 128),
    "1t-fp32-256": (1, "fp32", False, False, 256),
    "1t-bf16-cl-256": (1, "bf16", True, False, 256),
    "2t-fp32-256": (2, "fp32", False, False, 256),
    "2t-bf16-256": (2, "bf16", False, False, 256),
    "2t-bf16-cl-256": (2, "bf16", True, False, 256),
}


def measure(codec_name: str, model_options: dict[str, object], lmbda: float, batch: int,
            threads: int, precision: str, channels_last: bool, compile_: bool, crop: int,
            steps: int, warmup: int) -> tuple[float, str]:
    """Training crops/s of one configuration, and the precision actually used."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    codec = plugins.codecs().get(codec_name)
    model_config = {**codec.model_config, **model_options}
    task = codec.training_task(codec.build_model(**model_config), lmbda)
    device = torch.device("cpu")
    used = resolve_precision(precision, device)
    config = TrainConfig(data=(), out=".", crop=crop, batch_size=batch, lr=1e-4, lmbda=lmbda,
                         precision=used, channels_last=channels_last, compile=compile_)
    if channels_last:
        for module in task.modules().values():
            module.to(memory_format=torch.channels_last)
    if compile_:
        task.compile()
    run = _Run(task, config, device, used)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    batches = [torch.rand(batch, 3, crop, crop).contiguous(memory_format=memory_format)
               for _ in range(2)]
    for i in range(warmup):
        run.train_step(batches[i % 2])
    started = time.perf_counter()
    for i in range(steps):
        run.train_step(batches[i % 2])
    return steps * batch / (time.perf_counter() - started), used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codec", default="ot")
    parser.add_argument("-m", "--model-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--lmbda", type=float, default=None, help="default: the codec's")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (compilation) first")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated names")
    args = parser.parse_args()
    options = parse_model_options(tuple(args.model_option))
    codec = plugins.codecs().get(args.codec)
    lmbda = args.lmbda if args.lmbda is not None else codec.default_lmbda
    reason = bf16_unsupported_reason(torch.device("cpu"))
    print(f"torch {torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}, "
          f"mkldnn {torch.backends.mkldnn.is_available()}, bf16: {reason or 'supported'}")
    print(f"codec {args.codec}, model options {options}, batch {args.batch_size}")
    print("| config | threads | precision | channels-last | compile | crop | crops/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.configs.split(","):
        threads, precision, channels_last, compile_, crop = CONFIGS[name]
        try:
            rate, used = measure(args.codec, options, lmbda, args.batch_size, threads, precision,
                                 channels_last, compile_, crop, args.steps, args.warmup)
            figure = f"{rate:.2f}"
        except Exception as exc:  # a configuration torch cannot run here is reported, not fatal
            used, figure = precision, f"failed ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})"
        print(f"| {name} | {threads} | {used} | {channels_last} | {compile_} | {crop} | {figure} |",
              flush=True)


if __name__ == "__main__":
    main()
