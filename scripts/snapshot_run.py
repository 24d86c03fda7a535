"""Snapshot a running `codecbench train` run for the repository, so a fresh machine can continue it.

Writes, from RUN_DIR's latest exported checkpoint (``model.pt``):
  DEST/NAME.pt          the model in float16 (what ``--init`` takes)
  DEST/NAME-curve.csv   the run's learning curve (validation bpp, PSNR, LPIPS by step and hours)
  DEST/NAME.toml        command, budget, machine, steps, crops/s, curve file, sha256, and what the
                        run was initialised from
and with ``--state``, RUN_DIR's full training state (``last.pt``: weights, optimizers, schedulers,
critic, step, random state; float32, about three times the model's size):
  DEST/NAME-state.pt    what ``scripts/restore_run.py DEST/NAME.toml`` puts back in a run folder, so
                        the recorded command resumes the run exactly where it stopped

Usage: .venv/bin/python scripts/snapshot_run.py RUN_DIR DEST NAME [--note TEXT] [--state]
Continue on another machine: with a state, ``scripts/restore_run.py DEST/NAME.toml`` then the
recorded command; without one, the recorded command with ``--out`` a new folder and ``--init
DEST/NAME.pt`` (a new run: optimizers and critic restart, and the steps count from 0 again).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import shutil
from pathlib import Path

import torch


def toml_value(value: object) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("name")
    parser.add_argument("--note", default="", help="free text recorded in the manifest (e.g. where the curves stand)")
    parser.add_argument("--state", action="store_true",
                        help="also keep the full training state, so the run resumes exactly (scripts/restore_run.py)")
    args = parser.parse_args()
    state_source = args.run_dir / "last.pt"
    if args.state and not state_source.is_file():
        parser.error(f"--state: {state_source} does not exist (no checkpoint written yet?)")

    payload = torch.load(args.run_dir / "model.pt", map_location="cpu", weights_only=False)
    state_bytes = state_source.read_bytes() if args.state else b""
    if args.state:  # checked before anything is written: a checkpoint may land between the two reads
        state_step = int(torch.load(io.BytesIO(state_bytes), map_location="cpu", weights_only=False)["step"])
        if state_step != int(payload.get("step", 0)):
            parser.error(f"{args.run_dir}: last.pt is at step {state_step}, model.pt at step "
                         f"{payload.get('step')}: stop the run (or wait for its next checkpoint) and retry")
    payload["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    args.dest.mkdir(parents=True, exist_ok=True)
    model = args.dest / f"{args.name}.pt"
    torch.save(payload, model)
    curve = args.dest / f"{args.name}-curve.csv"
    if (args.run_dir / "curve.csv").is_file():
        shutil.copyfile(args.run_dir / "curve.csv", curve)
    state = args.dest / f"{args.name}-state.pt"
    if args.state:
        state.write_bytes(state_bytes)
    throughput = payload.get("throughput", {})
    init = payload.get("train_config", {}).get("init")
    fields = {
        "file": model.name,
        "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "codec": payload["codec"],
        "stage": payload.get("stage", 0),
        "training_command": payload.get("training_command", ""),
        "initialised_from": init or "",
        "steps": int(payload.get("step", 0)),
        "training_hours": round(float(payload.get("wall_s", 0.0)) / 3600, 3),
        "crops_per_s": float(throughput.get("crops_per_s", 0.0)),
        "machine": f"{throughput.get('cpu') or platform.processor()}, {throughput.get('threads', '?')} torch "
                   f"thread(s), {throughput.get('precision', 'fp32')}, 2-core shared VM, no GPU",
        "perceptual_loss": payload.get("perceptual_loss", ""),
        "curve_file": curve.name if curve.is_file() else "",
        "state_file": state.name if args.state else "",
        "state_sha256": hashlib.sha256(state_bytes).hexdigest() if args.state else "",
        "model_config": json.dumps(payload.get("model_config", {}), sort_keys=True),
        "note": args.note,
    }
    lines = [f"# Snapshot of a training run in progress (scripts/snapshot_run.py {args.run_dir} {args.dest} {args.name})",
             "[[snapshot]]"] + [f"{key} = {toml_value(value)}" for key, value in fields.items()]
    (args.dest / f"{args.name}.toml").write_text("\n".join(lines) + "\n")
    print(f"{model} ({model.stat().st_size / 1e6:.1f} MB, step {fields['steps']}, "
          f"{fields['training_hours']} h, {fields['crops_per_s']} crops/s)")
    if args.state:
        print(f"{state} ({state.stat().st_size / 1e6:.1f} MB): resume with "
              f"scripts/restore_run.py {args.dest / args.name}.toml")


if __name__ == "__main__":
    main()
