"""``--weights-dir`` is a value handed to the metrics, in this process and in each worker's task,
not an environment variable that spawned workers inherit (issue 15 §5)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import weights_probe
from click.testing import CliRunner

from codecbench.cli import cli
from codecbench.metrics import using_weights_dir, weights_dir
from codecbench.results import ResultStore


@pytest.fixture
def weights(tmp_path: Path, registered_plugin) -> Path:
    """A weights folder holding the probe metric's file (7.5); the probe registered."""
    registered_plugin(weights_probe, "weights-probe")
    folder = tmp_path / "weights"
    (folder / "probe").mkdir(parents=True)
    (folder / "probe" / "scale.txt").write_text("7.5")
    return folder


def run(db: Path, folder: Path, metrics: str, *args: str) -> None:
    result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-p", "50", "-d", f"folder:{folder}",
                                      "-m", metrics, "-q", "--db", str(db), *args])
    assert result.exit_code == 0, result.output
    assert "CODECBENCH_WEIGHTS" not in os.environ


@pytest.mark.parametrize("jobs", ["2", "1"])
def test_run_with_weights_dir_gives_the_folder_to_metrics_without_the_environment(
    jobs: str, weights: Path, image_folder: Path, tmp_path: Path
) -> None:
    db = tmp_path / "r.sqlite"
    run(db, image_folder, "psnr,weights-probe", "-j", jobs, "--weights-dir", str(weights))
    frame = ResultStore(db).frame()
    assert len(frame) == 3 and set(frame["status"]) == {"ok"}, frame[["status", "error"]]
    assert set(frame["probe-scale"]) == {7.5} and set(frame["probe-env"]) == {0.0}


def test_metrics_added_to_stored_rows_in_the_guarded_worker_get_the_folder_too(
    weights: Path, image_folder: Path, tmp_path: Path
) -> None:
    db = tmp_path / "r.sqlite"
    run(db, image_folder, "psnr", "-j", "1")
    run(db, image_folder, "psnr,weights-probe", "-j", "1", "--weights-dir", str(weights))
    frame = ResultStore(db).frame()
    assert set(frame["probe-scale"]) == {7.5} and set(frame["probe-env"]) == {0.0}


def test_the_folder_given_for_a_block_comes_before_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODECBENCH_WEIGHTS", str(tmp_path / "from-env"))
    with using_weights_dir(tmp_path / "given"):
        assert weights_dir() == tmp_path / "given"
        with using_weights_dir(None):
            assert weights_dir() == tmp_path / "given"
    assert weights_dir() == tmp_path / "from-env"
