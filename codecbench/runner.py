"""The benchmark runner: every (codec, point, image) unit of a run, each stored as it finishes.

Each unit's row is committed on its own, so a rerun resumes: it skips rows that are complete, adds
missing metric values from the stored bitstream without re-encoding, and retries failed rows. That
decision is made here, once, for every executor: the runner turns the units that need work into
tasks and an executor from :mod:`codecbench.executors` computes them (in this process with
``jobs == 1`` and no timeout, in worker processes with ``local``, on a Ray cluster with ``ray``)
with the one unit function of :mod:`codecbench.unit`, while this process alone reads and writes the
store. Stored streams are decoded only in guarded worker processes (timeout, memory limit), never in
this one. A unit's torch runs on ``threads`` threads (default 1; see :mod:`codecbench.threads`).
"""

from __future__ import annotations

import logging
import platform
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm import tqdm

from codecbench import threads as torch_threads
from codecbench.codec import Codec, Point, format_point
from codecbench.dataset import Dataset, ImageRef
from codecbench.executors import Executor, GuardedDecodeError, decode_guarded, make_executor
from codecbench.executors.memory import image_pixels, plan_budget
from codecbench.executors.work import CodecSpec, MetricSpec, UnitTask, plugin_refs
from codecbench.machine import cpu_name
from codecbench.metrics import Metric
from codecbench.results import ResultStore, RowKey, StoredRow, config_json
from codecbench.unit import UnitResult, cached_image, describe_error

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
        "cpu": cpu_name(),
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
    this process; ``jobs=None``: one worker per CPU (at most 8, and only as many as the memory
    available fits: :mod:`codecbench.executors.memory`), or the Ray cluster's CPUs. A unit whose
    worker dies or runs past ``timeout`` seconds is retried ``retries`` times and then stored as
    failed; one whose worker runs out of memory is stored as failed at once. Units are claimed in
    the store while they run: units that another run on the same store holds are left to it, and
    their rows awaited, never computed twice (:mod:`codecbench.results`). ``threads`` is torch's
    thread count for each unit, here and in workers (``0``: torch's default; ``None``: the count
    requested in this process with :func:`codecbench.threads.request`, else 1). ``summary`` is the
    running :class:`RunSummary` (what was saved so far, when a run is interrupted).
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

    def run(self, units: Sequence[WorkUnit], command: str = "") -> RunSummary:
        """Execute ``units`` (skipping those already stored) and then the dataset-level metrics."""
        self.store.record_run(self.run_id, command, environment(command))
        summary = self.summary = RunSummary(self.run_id)
        image_columns = _wanted_columns(self.metrics, "image")
        bar = tqdm(total=len(units), desc="benchmark", unit="img", disable=not self.progress,
                   file=sys.stderr)
        with torch_threads.using(self.threads):  # this process runs units with -j 1
            try:
                pending = list(units)
                executor = self._executor(units) if pending else None
                while pending:  # passes: units another run holds wait for the next one
                    self._deferred = []
                    self._execute(executor, pending, image_columns, summary, bar)
                    self.store.release_claims()
                    pending = self._wait_for_others(len(pending))
            finally:
                bar.close()
                self.store.release_claims()
            self._run_set_metrics(units, summary)
        return summary

    def _executor(self, units: Sequence[WorkUnit]) -> Executor:
        """The executor of this run; a local pool sized by the memory its largest unit needs."""
        jobs, limit = self.jobs, None
        if self.executor == "local" and not (jobs == 1 and self.timeout is None):
            from codecbench.executors import default_jobs

            paths = {unit.image.path for unit in units}
            budget = plan_budget((image_pixels(p) for p in paths),
                                 {unit.codec.family for unit in units}, self.metrics)
            wanted = jobs or default_jobs()
            jobs = budget.jobs(wanted) if self.jobs is None else wanted
            if jobs < wanted:
                log.warning("%d worker(s) instead of %d: %s", jobs, wanted, budget.describe())
            elif budget.jobs(wanted) < wanted:
                log.warning("--jobs %d may not fit in memory (%s); a worker that passes its share "
                            "is stopped and its unit stored as out of memory", wanted,
                            budget.describe())
            limit = budget.worker_limit(jobs)
        return make_executor(self.executor, jobs=jobs, timeout=self.timeout, retries=self.retries,
                             ray_address=self.ray_address, threads=self.threads,
                             memory_limit=limit)

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

    def _execute(self, executor: Executor, units: Sequence[WorkUnit], columns: set[str],
                 summary: RunSummary, bar: tqdm) -> None:
        """Decide what each unit needs (nothing, missing metrics from its stored stream, or a new
        row), have ``executor`` compute it and store each result as it finishes."""
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
        """(original, reconstruction) pairs of ``rows``, each stream decoded by
        :func:`~codecbench.executors.decode_guarded` with the run's timeout."""
        def generate() -> Iterable[tuple[np.ndarray, np.ndarray]]:
            for unit, row in rows:
                image = cached_image(unit.image.path)
                try:
                    reconstruction = decode_guarded(unit.codec, row.stream or b"", image.shape,
                                                    timeout=self.timeout, threads=self.threads)
                except GuardedDecodeError as exc:
                    raise GuardedDecodeError(f"{unit.image.name}: {exc}") from None
                yield image, reconstruction

        return generate
