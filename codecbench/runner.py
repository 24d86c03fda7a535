"""The benchmark runner: every (codec, point, image) unit through one metric engine.

The harness, never the codec, computes ``bpp = 8 * len(data) / (H * W)``, times encode and decode
(``perf_counter`` around ``synchronize()``) and computes the metrics. Each unit's row is committed
on its own, so a rerun resumes: it skips rows that are complete, adds missing metric values from the
stored bitstream without re-encoding, and retries failed rows.

With ``jobs == 1`` (and no timeout) units run in the calling process; otherwise an executor from
:mod:`codecbench.executors` computes them in worker processes (``local``) or on a Ray cluster
(``ray``) while this process alone reads and writes the store, row by row as units finish. Either
way a unit's torch runs on ``threads`` threads (default 1; see :mod:`codecbench.threads`).
"""

from __future__ import annotations

import logging
import platform
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm import tqdm

from codecbench import threads as torch_threads
from codecbench.codec import Codec, Point, check_image_array, format_point
from codecbench.dataset import Dataset, ImageRef
from codecbench.errors import CodecError
from codecbench.image import read_image
from codecbench.metrics import Metric
from codecbench.results import ResultStore, RowKey, StoredRow, config_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkUnit:
    """One codec point on one image."""

    codec: Codec
    point: Point
    image: ImageRef
    key: RowKey


@dataclass
class Failure:
    codec: str
    point: Point
    image: str
    error: str


@dataclass
class RunSummary:
    """What a run did: units computed, skipped (already stored), completed with metrics, failed."""

    run_id: str
    computed: int = 0
    skipped: int = 0
    metrics_added: int = 0
    retried: int = 0
    failures: list[Failure] = field(default_factory=list)
    saved: int = 0  # rows written (ok or failed) or completed with metrics, so far


    @property
    def failed(self) -> int:
        return len(self.failures)


@dataclass
class UnitResult:
    """The outcome of :func:`execute_unit`, ready to be stored."""

    status: str
    error: str | None = None
    height: int | None = None
    width: int | None = None
    stream: bytes | None = None
    bpp: float | None = None
    encode_s: float | None = None
    decode_s: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def bits_per_pixel(data: bytes, height: int, width: int) -> float:
    """``8 * len(data) / (height * width)``: the only bpp codecbench reports."""
    return 8 * len(data) / (height * width)


def describe_error(exc: BaseException) -> str:
    """``Type: message (at file.py:line)`` for a stored error."""
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def image_metrics(
    metrics: Sequence[Metric], original: np.ndarray, reconstruction: np.ndarray
) -> dict[str, float]:
    """All per-image metric values for one pair; a metric that fails yields an error."""
    values: dict[str, float] = {}
    for metric in metrics:
        if metric.kind == "image":
            values.update(metric.compute(original, reconstruction))
    return values


def decode_checked(codec: Codec, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """Decode ``data`` and check the result is a ``uint8`` image of ``shape``."""
    reconstruction = codec.decode(data)
    check_image_array(reconstruction, f"{codec.name}.decode() output")
    if reconstruction.shape != shape:
        raise CodecError(
            f"{codec.name}.decode() returned shape {reconstruction.shape}, expected {shape}"
        )
    return reconstruction


def execute_unit(codec: Codec, point: Point, image: np.ndarray, metrics: Sequence[Metric]) -> UnitResult:
    """Encode, decode and measure one image at one point. Never raises: failures are results."""
    height, width = image.shape[:2]
    try:
        codec.load()
        torch_threads.apply()  # loading may have imported torch
        codec.synchronize()
        start = time.perf_counter()
        data = codec.encode(image.copy(), point)
        codec.synchronize()
        encode_s = time.perf_counter() - start
        if not isinstance(data, (bytes, bytearray)):
            raise CodecError(f"{codec.name}.encode() returned {type(data).__name__}, not bytes")
        data = bytes(data)
        start = time.perf_counter()
        reconstruction = decode_checked(codec, data, image.shape)
        codec.synchronize()
        decode_s = time.perf_counter() - start
    except Exception as exc:  # a failing codec is recorded, and the run goes on
        return UnitResult("failed", error=describe_error(exc), height=height, width=width)
    result = UnitResult(
        "ok", height=height, width=width, stream=data, bpp=bits_per_pixel(data, height, width),
        encode_s=encode_s, decode_s=decode_s,
    )
    try:
        torch_threads.apply()
        result.metrics = image_metrics(metrics, image, reconstruction)
    except Exception as exc:
        result.status, result.error = "failed", f"metric: {describe_error(exc)}"
    return result


def _wanted_columns(metrics: Sequence[Metric], kind: str) -> set[str]:
    return {c for m in metrics if m.kind == kind for c in m.columns}


def _complete(stored: StoredRow | None, columns: set[str]) -> bool:
    """Whether a stored row needs nothing more: ok, with every wanted metric."""
    return stored is not None and stored.status == "ok" and not columns - set(stored.metrics)


def plan_units(
    codecs: Sequence[Codec],
    dataset: Dataset,
    images: Sequence[ImageRef],
    points: dict[str, Sequence[Point]],
) -> list[WorkUnit]:
    """Every (codec, point, image) unit of a run, codec by codec, point by point."""
    units = []
    for codec in codecs:
        config = config_json(codec.config)
        version = codec.version()
        for point in points[codec.name]:
            for ref in images:
                key = RowKey(dataset.name, ref.name, codec.name, version, float(point), config)
                units.append(WorkUnit(codec, point, ref, key))
    return units


def environment(command: str) -> dict[str, object]:
    """Versions, plugins, git SHA and device, recorded with every run."""
    from codecbench.plugins import plugin_info

    env: dict[str, object] = {
        "codecbench": metadata.version("codecbench"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "command": command,
        "plugins": [f"{p['name']}=={p['version']}" for p in plugin_info()],
    }
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        env["torch"] = torch.__version__
        env["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    try:
        env["git_sha"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).parent,
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        env["git_sha"] = None
    return env


class Runner:
    """Runs units into a :class:`ResultStore`, resuming from what it already holds.

    ``jobs`` worker processes (``executor="local"``) or Ray tasks (``executor="ray"``, on the
    cluster at ``ray_address``) compute the units; ``jobs=1`` without a ``timeout`` computes them in
    this process. A unit whose worker dies or runs past ``timeout`` seconds is retried ``retries``
    times and then stored as failed. Units are claimed in the store while they run: units that
    another run on the same store holds are left to it, and their rows awaited, never computed
    twice (:mod:`codecbench.results`). ``threads`` is torch's thread count for each unit, here and in
    workers (``0``: torch's default; ``None``: the count requested in this process with
    :func:`codecbench.threads.request`, else 1). ``summary`` is the running :class:`RunSummary` (what
    was saved so far, when a run is interrupted).
    """

    def __init__(
        self,
        store: ResultStore,
        metrics: Sequence[Metric],
        *,
        progress: bool = True,
        on_unit: Callable[[WorkUnit, str], None] | None = None,
        jobs: int | None = 1,
        executor: str = "local",
        timeout: float | None = None,
        retries: int = 2,
        ray_address: str | None = None,
        threads: int | None = None,
    ):
        self.store = store
        self.metrics = list(metrics)
        self.progress = progress
        self.on_unit = on_unit
        self.jobs = jobs
        self.executor = executor
        self.timeout = timeout
        self.retries = retries
        self.ray_address = ray_address
        if threads is None:
            threads = torch_threads.requested()
        self.threads = torch_threads.DEFAULT if threads is None else threads
        self.run_id = uuid.uuid4().hex[:12]
        self.summary = RunSummary(self.run_id)
        self._deferred: list = []  # (unit, claim) of units another run holds, this pass
        self._said_waiting = False

    @staticmethod
    @lru_cache(maxsize=8)
    def _read(path: Path) -> np.ndarray:
        image = read_image(path)
        image.setflags(write=False)
        return image

    def run(self, units: Sequence[WorkUnit], command: str = "") -> RunSummary:
        """Execute ``units`` (skipping those already stored) and then the dataset-level metrics."""
        self.store.record_run(self.run_id, command, environment(command))
        summary = self.summary = RunSummary(self.run_id)
        image_columns = _wanted_columns(self.metrics, "image")
        bar = tqdm(total=len(units), desc="benchmark", unit="img", disable=not self.progress,
                   file=sys.stderr)
        with torch_threads.using(self.threads):  # this process decodes (set metrics) even with workers
            try:
                pending = list(units)
                while pending:  # passes: units another run holds wait for the next one
                    self._deferred = []
                    if self.executor == "local" and self.jobs == 1 and self.timeout is None:
                        for unit in pending:
                            outcome = self._run_unit(unit, image_columns, summary)
                            if outcome is not None:
                                self._finish(unit, outcome, bar)
                    else:
                        self._run_elsewhere(pending, image_columns, summary, bar)
                    self.store.release_claims()
                    pending = self._wait_for_others(len(pending))
            finally:
                bar.close()
                self.store.release_claims()
            self._run_set_metrics(units, summary)
        return summary

    def _stored(self, unit: WorkUnit) -> StoredRow | None:
        """The unit's stored row, checked against the image file's content: a row computed from
        other content (``stale``) or with a damaged stream is not ``ok``, so it is recomputed."""
        return self.store.get(unit.key, image_sha256=unit.image.sha256())

    def _claim(self, unit: WorkUnit) -> bool:
        """Claim ``unit`` in the store; one that another live run holds is deferred (False)."""
        held = self.store.claim(unit.key)
        if held is not None:
            self._deferred.append((unit, held))
        return held is None

    def _wait_for_others(self, attempted: int) -> list[WorkUnit]:
        """The units of this pass that another run holds, for the next pass; when the pass could
        take none of its units, first wait until the other run releases one."""
        deferred = [unit for unit, _ in self._deferred]
        if deferred and not self._said_waiting:
            self._said_waiting = True
            log.warning("%d unit(s) are being computed by another run on this store (%s); this "
                        "run waits for their rows instead of computing them again", len(deferred),
                        self._deferred[0][1].describe())
        if deferred and len(deferred) == attempted:
            self.store.wait_for_others([unit.key for unit in deferred])
        return deferred

    def _finish(self, unit: WorkUnit, outcome: str, bar: tqdm) -> None:
        bar.set_postfix_str(f"{unit.codec.name} @ {format_point(unit.point)}", refresh=False)
        bar.update(1)
        if self.on_unit:
            self.on_unit(unit, outcome)

    def _run_elsewhere(self, units: Sequence[WorkUnit], columns: set[str], summary: RunSummary,
                       bar: tqdm) -> None:
        """Units through an executor; results are stored here, one row as each unit finishes."""
        from codecbench.executors import make_executor
        from codecbench.executors.work import CodecSpec, MetricSpec, UnitTask, plugin_refs

        refs = plugin_refs()
        codec_specs: dict[int, CodecSpec] = {}
        metric_specs = {m.name: MetricSpec.of(m) for m in self.metrics if m.kind == "image"}
        stored_ids: dict[int, int] = {}

        def tasks() -> Iterable[UnitTask]:
            # Lazy, so that only the tasks in flight hold a stored bitstream.
            for index, unit in enumerate(units):
                if id(unit.codec) not in codec_specs:
                    codec_specs[id(unit.codec)] = CodecSpec.of(unit.codec)
                codec = codec_specs[id(unit.codec)]
                path = str(unit.image.path)
                stored = self._stored(unit)
                if not _complete(stored, columns):  # work to do: claim it, then look again
                    if not self._claim(unit):
                        continue
                    stored = self._stored(unit)
                if stored is not None and stored.status == "ok":
                    missing = columns - set(stored.metrics)
                    if not missing:
                        summary.skipped += 1
                        self._finish(unit, "skipped", bar)
                        continue
                    wanted = tuple(metric_specs[m.name] for m in self.metrics
                                   if m.kind == "image" and set(m.columns) & missing)
                    stored_ids[index] = stored.id
                    yield UnitTask(index, codec, unit.point, path, wanted, stored.stream or b"", refs,
                                   self.threads)
                    continue
                reason = unit.codec.unavailable_reason()
                if reason:
                    result = UnitResult("failed", error=f"codec unavailable: {reason}")
                    self._finish(unit, self._store(unit, result, summary), bar)
                    continue
                yield UnitTask(index, codec, unit.point, path, tuple(metric_specs.values()), None, refs,
                               self.threads)

        executor = make_executor(self.executor, jobs=self.jobs, timeout=self.timeout,
                                 retries=self.retries, ray_address=self.ray_address,
                                 threads=self.threads)
        for done in executor.run(tasks()):
            unit = units[done.task.index]
            summary.retried += done.attempts - 1
            if done.task.stream is None:
                outcome = self._store(unit, done.result, summary)
            elif done.result.status == "ok":
                self.store.add_metrics(stored_ids.pop(done.task.index), done.result.metrics)
                summary.metrics_added += 1
                summary.saved += 1
                outcome = "metrics"
            else:
                summary.failures.append(Failure(unit.codec.name, unit.point, unit.image.name,
                                                done.result.error or ""))
                self.store.release(unit.key)
                outcome = "failed"
            self._finish(unit, outcome, bar)

    def _run_unit(self, unit: WorkUnit, columns: set[str], summary: RunSummary) -> str | None:
        """Run one unit in this process; ``None`` when another run holds it (deferred)."""
        if _complete(self._stored(unit), columns):
            summary.skipped += 1
            return "skipped"
        if not self._claim(unit):
            return None
        try:
            return self._compute_unit(unit, columns, summary)
        finally:
            self.store.release(unit.key)

    def _compute_unit(self, unit: WorkUnit, columns: set[str], summary: RunSummary) -> str:
        stored = self._stored(unit)
        if stored is not None and stored.status == "ok":
            missing = columns - set(stored.metrics)
            if not missing:
                summary.skipped += 1
                return "skipped"
            return self._add_missing_metrics(unit, stored, missing, summary)
        try:
            image = self._read(unit.image.path)
        except Exception as exc:
            result = UnitResult("failed", error=describe_error(exc))
        else:
            reason = unit.codec.unavailable_reason()
            if reason:
                result = UnitResult("failed", error=f"codec unavailable: {reason}")
            else:
                result = execute_unit(unit.codec, unit.point, image, self.metrics)
        return self._store(unit, result, summary)

    def _store(self, unit: WorkUnit, result: UnitResult, summary: RunSummary) -> str:
        """Write one unit's row and count it in ``summary``; return its status."""
        self.store.put(
            unit.key, run_id=self.run_id, status=result.status, error=result.error,
            height=result.height, width=result.width, stream=result.stream, bpp=result.bpp,
            encode_s=result.encode_s, decode_s=result.decode_s, metrics=result.metrics,
            image_sha256=unit.image.sha256(),
        )
        summary.saved += 1
        if result.status == "ok":
            summary.computed += 1
        else:
            summary.failures.append(Failure(unit.codec.name, unit.point, unit.image.name, result.error or ""))
        return result.status

    def _add_missing_metrics(
        self, unit: WorkUnit, stored: "StoredRow", missing: set[str], summary: RunSummary  # noqa: F821
    ) -> str:
        wanted = [m for m in self.metrics if m.kind == "image" and set(m.columns) & missing]
        try:
            image = self._read(unit.image.path)
            unit.codec.load()
            torch_threads.apply()
            reconstruction = decode_checked(unit.codec, stored.stream or b"", image.shape)
            self.store.add_metrics(stored.id, image_metrics(wanted, image, reconstruction))
        except Exception as exc:
            summary.failures.append(Failure(unit.codec.name, unit.point, unit.image.name, f"metric: {describe_error(exc)}"))
            return "failed"
        summary.metrics_added += 1
        summary.saved += 1
        return "metrics"

    def _run_set_metrics(self, units: Sequence[WorkUnit], summary: RunSummary) -> None:
        set_metrics = [m for m in self.metrics if m.kind == "set"]
        if not set_metrics:
            return
        groups: dict[tuple[str, float], list[WorkUnit]] = {}
        for unit in units:
            groups.setdefault((unit.codec.name, unit.point), []).append(unit)
        for (codec_name, point), group in groups.items():
            key = group[0].key
            have = self.store.get_set_metrics(key)
            todo = [m for m in set_metrics if not set(m.columns) <= set(have)]
            rows = [(u, self._stored(u)) for u in group]
            if not todo or any(r is None or r.status != "ok" for _, r in rows):
                continue
            pairs = self._pairs(rows)
            with self.store.claimed(replace(key, image="")):  # one run computes a point's set metrics
                have = self.store.get_set_metrics(key)
                for metric in [m for m in todo if not set(m.columns) <= set(have)]:
                    try:
                        values = metric.compute_set(pairs())
                    except Exception as exc:
                        summary.failures.append(Failure(codec_name, point, "(dataset)", f"{metric.name}: {describe_error(exc)}"))
                        continue
                    self.store.put_set_metrics(key, values, n_images=len(rows))

    def _pairs(self, rows: list) -> Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]:
        def generate() -> Iterable[tuple[np.ndarray, np.ndarray]]:
            for unit, row in rows:
                image = self._read(unit.image.path)
                unit.codec.load()
                torch_threads.apply()
                yield image, decode_checked(unit.codec, row.stream, image.shape)

        return generate
