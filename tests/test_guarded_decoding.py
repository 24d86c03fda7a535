"""Stored streams are decoded in guarded workers: a hang, a crash or a memory hog becomes a failed
item naming the image and the codec, never a hung or crashed command (issue 13 §3)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from hostile_codecs import HostileDecoder
from toy_codecs import CountingSetMetric, Quantizer

from codecbench.dataset import FolderDataset
from codecbench.executors import GuardedDecodeError, decode_guarded, inline
from codecbench.executors.local import LocalExecutor, WorkerPool
from codecbench.executors.memory import GIB, MemoryBudget, MemoryWatchdog
from codecbench.executors.work import CodecSpec, DecodeTask, MetricSpec, UnitTask, decode_task
from codecbench.metrics.psnr import PSNRMetric
from codecbench.results import ResultStore
from codecbench.runner import Runner, plan_units
from codecbench.testing import synthetic_image


def test_a_stored_stream_decodes_in_a_worker_to_the_same_image() -> None:
    image = synthetic_image(24, 40)
    codec = Quantizer()
    stream = codec.encode(image, 4)
    assert (decode_guarded(codec, stream, image.shape, timeout=60) == codec.decode(stream)).all()


@pytest.mark.parametrize("fault, reason", [
    ("hang", "timed out after 3 s (worker killed)"),
    ("segv", "worker process died (killed by SIGSEGV)"),
    ("raise", "ValueError: forged stream"),
])
def test_a_hostile_stream_raises_naming_the_codec(tmp_path: Path, fault: str, reason: str) -> None:
    armed = tmp_path / "armed"
    armed.touch()
    codec = HostileDecoder().with_options(fault=fault, armed=str(armed))
    image = synthetic_image(24, 40)
    start = time.monotonic()
    with pytest.raises(GuardedDecodeError) as caught:
        decode_guarded(codec, codec.encode(image, 4), image.shape, timeout=3)
    assert str(caught.value).startswith(f"hostile could not decode the stored stream: {reason}")
    assert time.monotonic() - start < 60
    # the worker that replaced the dead one still decodes
    armed.unlink()
    assert decode_guarded(codec, codec.encode(image, 4), image.shape, timeout=60).shape == image.shape


def test_a_worker_past_its_memory_limit_is_reported_out_of_memory_once(tmp_path: Path) -> None:
    armed = tmp_path / "armed"
    armed.touch()
    codec = HostileDecoder().with_options(fault="memory", armed=str(armed))
    image = synthetic_image(24, 40)
    task = DecodeTask(CodecSpec.of(codec), codec.encode(image, 4), image.shape)
    with WorkerPool(1, retries=2, memory_limit=int(1.5 * GIB)) as pool:
        pool.submit(decode_task, task, "hog", timeout=120)
        (done,) = list(pool.finished())
    assert done.attempts == 1  # not retried as a crash would be
    assert done.error.startswith("out of memory (the worker held ")
    assert "more than its limit of 1.50 GiB" in done.error


def test_the_pool_is_sized_by_the_memory_a_unit_needs() -> None:
    budget = MemoryBudget(available=10 * GIB, per_unit=3 * GIB)
    assert budget.jobs(8) == 3 and budget.jobs(2) == 2 and budget.worker_limit(3) == 10 * GIB // 3
    assert MemoryBudget(available=GIB, per_unit=5 * GIB).jobs(8) == 1  # one worker, however big


def test_a_unit_needs_what_its_metrics_declare_per_pixel() -> None:
    """PSNR, summed in bands, adds nothing per pixel; MS-SSIM its declared 200 bytes; a set metric
    (computed once per dataset, not in the unit) nothing."""
    from codecbench.executors.memory import CODEC_BYTES_PER_PIXEL, IMAGE_BYTES_PER_PIXEL, WORKER_BYTES, unit_bytes
    from codecbench.metrics.msssim import MSSSIMMetric

    pixels = 8000 * 8000
    base = WORKER_BYTES + pixels * (IMAGE_BYTES_PER_PIXEL + CODEC_BYTES_PER_PIXEL["traditional"])
    assert unit_bytes(pixels, "traditional", [PSNRMetric(), CountingSetMetric()]) == base
    assert unit_bytes(pixels, "traditional", [PSNRMetric(), MSSSIMMetric()]) == base + pixels * 200


def test_the_kernel_oom_killer_is_told_apart_from_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    from codecbench.executors import memory

    kills = iter([3, 3, 4])
    monkeypatch.setattr(memory, "kernel_oom_kills", lambda: next(kills))
    watchdog = MemoryWatchdog(GIB, list)
    assert watchdog.out_of_memory(123, -9) is None  # SIGKILL, counter unchanged: kill -9
    assert watchdog.out_of_memory(124, -11) is None  # a segfault is a crash
    assert watchdog.out_of_memory(125, -9) == "out of memory (killed by the kernel's out-of-memory killer)"


def _run(db: Path, codec, folder: Path, metrics, **settings):
    dataset = FolderDataset(folder)
    units = plan_units([codec], dataset, dataset.images(), {codec.name: codec.points})
    with ResultStore(db) as store:
        return Runner(store, metrics, progress=False, **settings).run(units)


def test_run_j1_adding_a_metric_decodes_stored_streams_in_a_guarded_worker(
    tmp_path: Path, image_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    armed = tmp_path / "armed"
    codec = HostileDecoder().with_options(fault="segv", armed=str(armed))
    db = tmp_path / "r.sqlite"
    assert _run(db, codec, image_folder, [PSNRMetric()]).computed == 3
    armed.touch()  # the stored streams are now hostile
    monkeypatch.setattr(inline, "DECODE_TIMEOUT_S", 30)
    from codecbench.metrics.msssim import MSSSIMMetric

    summary = _run(db, codec, image_folder, [PSNRMetric(), MSSSIMMetric()], jobs=1, retries=0)
    assert summary.metrics_added == 0
    assert sorted((f.codec, f.image, f.error) for f in summary.failures) == [
        ("hostile", f"img{i}.png", "worker process died (killed by SIGSEGV), 1 attempts")
        for i in range(3)
    ]


def test_a_set_metric_over_a_hanging_stored_stream_fails_naming_image_and_codec(
    tmp_path: Path, image_folder: Path
) -> None:
    armed = tmp_path / "armed"
    codec = HostileDecoder().with_options(fault="hang", armed=str(armed))
    db = tmp_path / "r.sqlite"
    assert _run(db, codec, image_folder, [PSNRMetric()]).computed == 3
    armed.touch()
    counting = CountingSetMetric()
    start = time.monotonic()
    summary = _run(db, codec, image_folder, [PSNRMetric(), counting], jobs=1, timeout=3)
    assert time.monotonic() - start < 120
    assert summary.skipped == 3 and counting.calls == 1
    (failure,) = summary.failures
    assert (failure.codec, failure.image) == ("hostile", "(dataset)")
    assert "img0.png: hostile could not decode the stored stream: timed out after 3 s" in failure.error


def test_a_unit_whose_worker_runs_out_of_memory_is_stored_as_out_of_memory(tmp_path: Path) -> None:
    armed = tmp_path / "armed"
    armed.touch()  # encode decodes too: the unit's own decode takes the memory
    codec = HostileDecoder().with_options(fault="memory", armed=str(armed))
    path = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(synthetic_image(24, 40)).save(path)
    task = UnitTask(0, CodecSpec.of(codec), 4, str(path), (MetricSpec.of(PSNRMetric()),))
    (outcome,) = LocalExecutor(jobs=1, retries=2, memory_limit=int(1.5 * GIB)).run([task])
    assert outcome.attempts == 1 and outcome.result.status == "failed"
    assert outcome.result.error.startswith("out of memory")


def test_a_codec_that_cannot_be_rebuilt_in_the_worker_fails_alone(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """A codec whose class lives in a module the worker cannot import (a notebook's, say) fails
    its own decode with the reason; the worker pool is not broken by it (it was, for good)."""
    import sys
    import types

    phantom = types.ModuleType("phantom_notebook")

    class NotebookQuantizer(Quantizer):
        name = "notebook-quantizer"

    NotebookQuantizer.__module__, NotebookQuantizer.__qualname__ = phantom.__name__, "NotebookQuantizer"
    phantom.NotebookQuantizer = NotebookQuantizer
    monkeypatch.setitem(sys.modules, phantom.__name__, phantom)  # importable here, not in workers
    image = synthetic_image(24, 40)
    codec = NotebookQuantizer()
    with pytest.raises(GuardedDecodeError) as caught:
        decode_guarded(codec, codec.encode(image, 4), image.shape, timeout=60)
    assert ("the task cannot be rebuilt in the worker process (ModuleNotFoundError: No module named "
            "'phantom_notebook')") in str(caught.value)
    for _ in range(2):  # and the next decodes work
        codec = Quantizer()
        assert decode_guarded(codec, codec.encode(image, 4), image.shape, timeout=60).shape == image.shape


def worker_pid(_: object) -> int:
    return os.getpid()


def test_a_pool_that_failed_is_replaced_by_a_fresh_one() -> None:
    """pebble stops a pool whose idle worker dies; the next task starts a fresh pool (it used to
    raise 'Worker processes failed to start' for every later task)."""
    with WorkerPool(1, retries=0) as pool:
        pool.submit(worker_pid, None, "pid")
        (done,) = list(pool.finished())
        os.kill(done.value, signal.SIGKILL)  # idle: no task notices
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until pebble reaps it (and stops the pool)
            try:
                os.kill(done.value, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        time.sleep(0.5)
        for n in (3, 4):
            pool.submit(abs, -n, "abs")
            (done,) = list(pool.finished())
            assert (done.value, done.error) == (n, None)
