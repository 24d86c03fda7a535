"""Put a snapshot's training state back in a run folder, so its recorded command resumes the run.

``scripts/snapshot_run.py RUN_DIR DEST NAME --state`` keeps a run's full training state beside its
float16 model. On a fresh machine, this script checks the state's sha256, writes it as
``OUT/last.pt`` with the learning curve as ``OUT/curve.csv`` (OUT: the ``--out`` of the recorded
command, or ``--out``), and prints the command that resumes the run: the recorded one, with OUT.
The resumed run continues at the snapshot's step with its optimizers, schedulers, critic and
random state, exactly as if it had never stopped (only the speed settings and ``--max-minutes``,
which count from the run's start, may change).

Usage: .venv/bin/python scripts/restore_run.py DEST/NAME.toml [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any


def option(command: str, name: str) -> str | None:
    """The value of ``name`` (e.g. ``--steps``) in ``command``, or None."""
    words = shlex.split(command)
    for i, word in enumerate(words):
        if word == name and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(f"{name}="):
            return word.split("=", 1)[1]
    return None


def limits_reached(snapshot: dict[str, Any]) -> list[str]:
    """What in the recorded command would stop the resumed run at once (its steps, its minutes)."""
    command = snapshot.get("training_command", "")
    reached = []
    steps, minutes = option(command, "--steps"), option(command, "--max-minutes")
    if steps is not None and int(snapshot.get("steps", 0)) >= int(steps):
        reached.append(f"the run has its --steps {steps}: nothing is left to train")
    if minutes is not None and float(snapshot.get("training_hours", 0)) * 60 >= float(minutes) - 1:
        reached.append(f"the run spent its --max-minutes {minutes} (they count from the run's start): "
                       "raise it in the command")
    return reached


def with_out(command: str, out: str) -> str:
    """``command`` with its ``--out`` value replaced by ``out`` (added if absent)."""
    words = shlex.split(command)
    for i, word in enumerate(words):
        if word == "--out" and i + 1 < len(words):
            words[i + 1] = out
            return shlex.join(words)
        if word.startswith("--out="):
            words[i] = f"--out={out}"
            return shlex.join(words)
    return shlex.join([*words, "--out", out])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="a snapshot's .toml, written by snapshot_run.py --state")
    parser.add_argument("--out", help="the run folder to restore into (default: the recorded command's --out)")
    args = parser.parse_args()

    try:
        snapshot = tomllib.loads(args.manifest.read_text())["snapshot"][0]
    except (OSError, tomllib.TOMLDecodeError, KeyError, IndexError) as error:
        parser.error(f"{args.manifest} is not a snapshot manifest ({error})")
    if not snapshot.get("state_file"):
        parser.error(f"{args.manifest} keeps no training state (snapshot made without --state): continue "
                     f"with the recorded command, a new --out and --init {args.manifest.with_suffix('.pt')}")
    folder = args.manifest.parent
    state = folder / snapshot["state_file"]
    if not state.is_file():
        parser.error(f"{state} is missing")
    if hashlib.sha256(state.read_bytes()).hexdigest() != snapshot["state_sha256"]:
        parser.error(f"{state} does not match the sha256 in {args.manifest} (damaged or replaced)")
    recorded = snapshot.get("training_command", "")
    if args.out is None and option(recorded, "--out") is None:
        parser.error("the recorded command has no --out: give the run folder with --out")
    command = recorded if args.out is None else with_out(recorded, args.out)
    out = Path(args.out or option(recorded, "--out"))
    if (out / "last.pt").exists():
        parser.error(f"{out / 'last.pt'} exists: that run resumes by itself (rerun its command), "
                     "or restore into another folder with --out")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(state, out / "last.pt")
    if snapshot.get("curve_file") and (folder / snapshot["curve_file"]).is_file():
        shutil.copyfile(folder / snapshot["curve_file"], out / "curve.csv")
    print(f"restored step {snapshot.get('steps')} of {snapshot.get('codec')} into {out}; resume with:",
          file=sys.stderr)
    for reason in limits_reached(snapshot):
        print(f"note: {reason}", file=sys.stderr)
    print(command)


if __name__ == "__main__":
    main()
