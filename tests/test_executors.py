"""Parallel and distributed runs: same rows as a serial run, crashes and hangs cost one unit only."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import faulty_codecs
import pytest
from click.testing import CliRunner
from PIL import Image
from toy_codecs import Quantizer

from codecbench import plugins
from codecbench.cli import cli
from codecbench.codec import Codec
from codecbench.dataset import FolderDataset
from codecbench.executors.local import describe_exit
from codecbench.metrics.psnr import PSNRMetric
from codecbench.results import ResultStore
from codecbench.runner import RunSummary, Runner, plan_units
from codecbench.testing import synthetic_image

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """Three images; the faulty codec's plans pick them by height (64, 48 and 33 rows)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i, (h, w) in enumerate([(64, 96), (48, 48), (33, 57)]):
        Image.fromarray(synthetic_image(h, w, seed=i)).save(folder / f"img{i}.png")
    return folder


@pytest.fixture
def faulty(registered_plugin, tmp_path: Path) -> Codec:
    """The faulty codec, registered in-process (workers import its module), without faults."""
    registered_plugin(faulty_codecs, "faulty")
    flags = tmp_path / "flags"
    flags.mkdir()
    return plugins.codecs().get("faulty-quantizer").with_options(flags=str(flags))


def run(db: Path, codecs: list[Codec], folder: Path, **settings) -> RunSummary:
    dataset = FolderDataset(folder)
    points = {c.name: (10, 50, 90) if c.name == "jpeg" else c.points for c in codecs}
    units = plan_units(codecs, dataset, dataset.images(), points)
    with ResultStore(db) as store:
        return Runner(store, [PSNRMetric()], progress=False, **settings).run(units)


def stored(db: Path) -> dict[tuple, tuple]:
    """Every row by key: status, size, bpp, the bitstream itself and the metric values."""
    with sqlite3.connect(db) as conn:
        metrics: dict[int, dict[str, float]] = {}
        for result_id, name, value in conn.execute("SELECT result_id, metric, value FROM metric_values"):
            metrics.setdefault(result_id, {})[name] = value
        return {
            (dataset, image, codec, point, config): (status, nbytes, bpp, stream, metrics.get(rid))
            for rid, dataset, image, codec, point, config, status, nbytes, bpp, stream in conn.execute(
                "SELECT id, dataset, image, codec, point, config, status, nbytes, bpp, stream "
                "FROM results")
        }


def test_two_workers_store_exactly_the_rows_of_a_serial_run(
    tmp_path: Path, images: Path, faulty: Codec
) -> None:
    # One codec of each kind that travels: a registry entry (jpeg, when installed), a plugin
    # registered in-process (faulty, by module) and an unregistered instance (quantizer, pickled).
    codecs = [faulty, Quantizer().with_options(mode="b")]
    if "jpeg" in plugins.codecs().items:
        codecs.append(plugins.codecs().get("jpeg"))
    serial = run(tmp_path / "serial.sqlite", codecs, images, jobs=1)
    parallel = run(tmp_path / "parallel.sqlite", codecs, images, jobs=2)
    assert serial.failed == parallel.failed == 0
    assert parallel.computed == serial.computed == 3 * (1 + 3 + 3 * (len(codecs) - 2))
    rows = stored(tmp_path / "serial.sqlite")
    assert stored(tmp_path / "parallel.sqlite") == rows
    assert all(stream and metrics["psnr"] > 10 for _, _, _, stream, metrics in rows.values())


def test_a_crashing_worker_loses_only_its_unit_and_a_rerun_finishes_it(
    tmp_path: Path, images: Path, faulty: Codec
) -> None:
    db = tmp_path / "r.sqlite"
    # 48 rows: SIGKILL on the first two attempts (the first invocation's two); 33 rows: a
    # segfault on the first attempt only (retried within the first invocation).
    command = ["run", "-c", "faulty-quantizer", "-d", f"folder:{images}", "-m", "psnr", "-q",
               "--db", str(db), "--jobs", "2", "--retries", "1",
               "-o", "plan=48=kill:2,33=segv:1", "-o", f"flags={faulty.config['flags']}"]
    first = CliRunner().invoke(cli, command)
    assert first.exit_code == 1, first.output
    assert "2 computed, 0 already stored, 0 completed with new metrics, 1 failed" in first.stderr
    assert "2 unit restart(s) after a worker crash or timeout" in first.stderr
    rows = {key[1]: row for key, row in stored(db).items()}
    assert rows["img0.png"][0] == rows["img2.png"][0] == "ok"
    with sqlite3.connect(db) as conn:
        (error,) = conn.execute("SELECT error FROM results WHERE image='img1.png'").fetchone()
    assert rows["img1.png"][0] == "failed"
    assert error == "worker process died (killed by SIGKILL), 2 attempts"

    second = CliRunner().invoke(cli, command)
    assert second.exit_code == 0, second.output
    assert "1 computed, 2 already stored, 0 completed with new metrics, 0 failed" in second.stderr
    after = {key[1]: row for key, row in stored(db).items()}
    assert after["img1.png"][0] == "ok"
    assert after["img0.png"] == rows["img0.png"] and after["img2.png"] == rows["img2.png"]


def test_a_unit_past_its_timeout_is_killed_and_stored_failed(
    tmp_path: Path, images: Path, faulty: Codec
) -> None:
    # The clock starts once a worker has started and imported the plugins (seconds on a busy machine).
    summary = run(tmp_path / "r.sqlite", [faulty.with_options(plan="48=hang")], images, jobs=2,
                  timeout=4, retries=0)
    assert summary.computed == 2 and summary.retried == 0
    assert [(f.image, f.error) for f in summary.failures] == [
        ("img1.png", "timed out after 4 s (worker killed), 1 attempts")
    ]


def test_exit_codes_are_described_by_signal_name() -> None:
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(-11) == "killed by SIGSEGV"
    assert describe_exit(3) == "exit status 3"


@pytest.fixture
def local_ray() -> Iterator[None]:
    """A local Ray instance with two CPUs whose workers can import the tests' toy codec modules."""
    ray = pytest.importorskip("ray")
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR",
                 runtime_env={"env_vars": {"PYTHONPATH": str(TESTS)}})
    except Exception as exc:  # no shared memory, no free ports, ...
        pytest.skip(f"cannot start a local Ray instance: {exc}")
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_stores_the_rows_of_a_local_run_kills_a_unit_past_its_timeout_and_counts_restarts(
    tmp_path: Path, images: Path, local_ray: None, faulty: Codec
) -> None:
    # One test, so that a parallel test session starts one Ray instance, not one per worker.
    codecs: list[Codec] = [Quantizer()]
    if "jpeg" in plugins.codecs().items:
        codecs.append(plugins.codecs().get("jpeg"))
    local = run(tmp_path / "local.sqlite", codecs, images, jobs=1)
    distributed = run(tmp_path / "ray.sqlite", codecs, images, executor="ray", jobs=None)
    assert distributed.failed == 0 and distributed.computed == local.computed
    assert stored(tmp_path / "ray.sqlite") == stored(tmp_path / "local.sqlite")

    summary = run(tmp_path / "hang.sqlite", [faulty.with_options(plan="48=hang")], images,
                  executor="ray", jobs=None, timeout=4, retries=0)  # workers are warm by now
    assert summary.computed == 2
    assert [(f.image, f.error) for f in summary.failures] == [
        ("img1.png", "timed out after 4 s (Ray worker killed), 1 attempts")
    ]

    # Workers killed by SIGKILL: 33 rows once (restarted, then stored), 48 rows twice (failed);
    # both restarts are counted in the run's totals, as a local pool's are.
    crashed = run(tmp_path / "crash.sqlite", [faulty.with_options(plan="48=kill:2,33=kill:1")], images,
                  executor="ray", jobs=None, retries=1)
    assert crashed.computed == 2 and crashed.failed == 1 and crashed.retried == 2
    [(image, error)] = [(f.image, f.error) for f in crashed.failures]
    assert image == "img1.png" and error.startswith("Ray worker lost (WorkerCrashedError: ") \
        and error.endswith("), 2 attempts")


def test_workers_run_torch_on_the_requested_threads(
    registered_plugin, tmp_path: Path, images: Path
) -> None:
    # -j 1 with a timeout runs in one worker process; the codec's first byte is its thread count.
    import thread_codecs

    registered_plugin(thread_codecs, "thread-counter")
    db = tmp_path / "r.sqlite"
    result = CliRunner().invoke(cli, ["run", "-c", "thread-counter", "-d", f"folder:{images}", "-m",
                                      "psnr", "-q", "--db", str(db), "-j", "1", "--timeout", "300",
                                      "--threads", "3"])
    assert result.exit_code == 0, result.output
    assert {stream[0] for *_, stream, _ in stored(db).values()} == {3}
