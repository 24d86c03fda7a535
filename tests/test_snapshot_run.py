"""scripts/snapshot_run.py and scripts/restore_run.py: a run snapshotted with its state resumes exactly."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import torch

from codecbench.learned import train
from codecbench.learned.checkpoints import read_checkpoint

from learned_toy import toy_config, toy_task

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def script(name: str, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_a_run_restored_from_its_snapshot_state_ends_as_the_uninterrupted_run(image_folder, tmp_path):
    whole = train(toy_task, toy_config(image_folder, tmp_path / "whole"), codec="toy-learned")
    split = tmp_path / "split"
    command = f"codecbench train toy-learned --steps 4 --out {split}"
    train(toy_task, toy_config(image_folder, split, steps=2), codec="toy-learned",
          export_info={"training_command": command})
    snapshot = script("snapshot_run.py", split, tmp_path / "campaign", "toy-s1", "--state")
    assert snapshot.returncode == 0, snapshot.stderr
    manifest = tmp_path / "campaign" / "toy-s1.toml"
    fields = tomllib.loads(manifest.read_text())["snapshot"][0]
    assert fields["state_file"] == "toy-s1-state.pt" and fields["steps"] == 2

    restored = tmp_path / "elsewhere" / "run"  # as on a fresh machine: another folder
    restore = script("restore_run.py", manifest, "--out", restored)
    assert restore.returncode == 0, restore.stderr
    assert restore.stdout.strip() == f"codecbench train toy-learned --steps 4 --out {restored}"
    assert (restored / "curve.csv").read_text() == (split / "curve.csv").read_text()
    resumed = train(toy_task, toy_config(image_folder, restored), codec="toy-learned")
    assert resumed.step == whole.step == 4
    a, b = read_checkpoint(whole.state_path), read_checkpoint(resumed.state_path)
    for name, tensor in a["modules"]["model"].items():
        assert torch.equal(tensor, b["modules"]["model"][name]), name
    assert torch.equal(a["rng_cpu"], b["rng_cpu"])

    again = script("restore_run.py", manifest, "--out", restored)  # never overwrites a run
    assert again.returncode == 2 and "exists" in again.stderr
    default = script("restore_run.py", manifest)  # the recorded --out: the original run, still there
    assert default.returncode == 2 and str(split / "last.pt") in default.stderr


def test_a_damaged_state_or_a_snapshot_without_one_is_refused_and_spent_limits_are_named(
        image_folder, tmp_path):
    run = tmp_path / "run"
    train(toy_task, toy_config(image_folder, run, steps=2), codec="toy-learned",
          export_info={"training_command": f"codecbench train toy-learned --steps 2 --max-minutes 0.5 --out {run}"})
    assert script("snapshot_run.py", run, tmp_path / "c", "plain").returncode == 0
    plain = script("restore_run.py", tmp_path / "c" / "plain.toml", "--out", tmp_path / "x")
    assert plain.returncode == 2 and "--init" in plain.stderr and "Traceback" not in plain.stderr

    assert script("snapshot_run.py", run, tmp_path / "c", "full", "--state").returncode == 0
    spent = script("restore_run.py", tmp_path / "c" / "full.toml", "--out", tmp_path / "z")
    assert spent.returncode == 0 and "nothing is left to train" in spent.stderr
    assert "spent its --max-minutes 0.5" in spent.stderr
    state = tmp_path / "c" / "full-state.pt"
    state.write_bytes(state.read_bytes()[:-10])
    damaged = script("restore_run.py", tmp_path / "c" / "full.toml", "--out", tmp_path / "y")
    assert damaged.returncode == 2 and "sha256" in damaged.stderr
    assert not (tmp_path / "y").exists()


def test_a_state_from_another_step_than_the_model_is_refused_before_anything_is_written(
        image_folder, tmp_path):
    run = tmp_path / "run"
    train(toy_task, toy_config(image_folder, run, steps=2), codec="toy-learned")
    payload = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    payload["step"] = 4  # as when a checkpoint lands between the reads of model.pt and last.pt
    torch.save(payload, run / "model.pt")
    result = script("snapshot_run.py", run, tmp_path / "c", "mixed", "--state")
    assert result.returncode == 2 and "last.pt is at step 2, model.pt at step 4" in result.stderr
    assert not (tmp_path / "c").exists()
    missing = script("snapshot_run.py", tmp_path / "images", tmp_path / "c", "none", "--state")
    assert missing.returncode == 2 and "last.pt does not exist" in missing.stderr
