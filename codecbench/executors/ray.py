"""The ``ray`` executor: the same tasks on a Ray cluster (``ray.init(address=...)``).

Ray schedules the tasks; this module keeps a bounded number in flight, streams finished results
back with ``ray.wait``, cancels (``ray.cancel(force=True)`` kills the worker) tasks that run past
the timeout, and starts again, up to ``retries`` times, a task whose worker was killed or lost (a
crash, a node gone). It does the restarts itself (Ray's own ``max_retries`` is 0) so that every
restart is counted in the run's totals, as the local pool's are; a task Ray killed for running
out of memory is reported at once, as the local pool does. Workers read images by path, so on a
multi-node cluster the images must be at the same path on every node (a shared file system), and
they import plugins by module name, so codecbench and the plugins must be installed (importable)
on every node. The caller's ``CODECBENCH_*`` variables (``run --device`` included) reach the
workers through the job's runtime environment, unless Ray was already initialised in this
process (a notebook, a test), whose connection is used as it is. With ``--device cuda`` each task
asks Ray for an equal share of the cluster's GPUs (Ray binds it to one GPU).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from codecbench.errors import CodecbenchError
from codecbench.executors.work import Outcome, UnitTask, execute_task
from codecbench.unit import UnitResult

log = logging.getLogger(__name__)

POLL_S = 0.5


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise CodecbenchError(
            "--executor ray needs Ray: pip install 'codecbench[ray]' (or `pip install ray`)"
        ) from exc
    return ray


def gpu_share(resources: dict[str, float], slots: int) -> float:
    """The GPUs each task asks for: none unless ``CODECBENCH_DEVICE`` is ``cuda``; then an equal
    share of the cluster's GPUs among ``slots`` tasks (at most one GPU, in Ray's 4-decimal steps)."""
    if os.environ.get("CODECBENCH_DEVICE") != "cuda":
        return 0
    gpus = resources.get("GPU", 0)
    if not gpus:
        raise CodecbenchError("--device cuda: the Ray cluster has no GPUs (see `ray status`)")
    return max(0.0001, math.floor(min(1.0, gpus / slots) * 10_000) / 10_000)


class RayExecutor:
    """Runs tasks as Ray tasks (one CPU each, or ``threads`` CPUs for tasks whose torch runs on
    ``threads`` threads), at most ``2 * jobs`` in flight (``jobs`` in flight when a timeout is set,
    so that a task's clock starts roughly when it starts running).

    ``address`` is passed to ``ray.init`` (``None``: ``RAY_ADDRESS`` or a new local instance);
    when Ray is already initialised in this process, that connection is used as it is. ``jobs``
    defaults to the cluster's CPU count.
    """

    def __init__(self, address: str | None = None, jobs: int | None = None,
                 timeout: float | None = None, retries: int = 2, threads: int = 1):
        self.address = address
        self.jobs = jobs
        self.timeout = timeout
        self.retries = retries
        self.threads = threads

    def _connect(self) -> bool:
        ray = _ray()
        if ray.is_initialized():
            return False
        env = {k: v for k, v in os.environ.items() if k.startswith("CODECBENCH_")}
        try:
            ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING,
                     runtime_env={"env_vars": env} if env else None)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ...
            where = self.address or "a new local Ray instance"
            raise CodecbenchError(f"Cannot start or reach Ray ({where}): {exc}") from exc
        return True

    def run(self, tasks: Iterable[UnitTask]) -> Iterator[Outcome]:
        ray = _ray()
        owns = self._connect()
        try:
            resources = ray.cluster_resources()
            slots = self.jobs or max(1, int(resources.get("CPU", 1)))
            limit = slots if self.timeout else 2 * slots
            remote = ray.remote(num_cpus=max(1, self.threads), num_gpus=gpu_share(resources, slots),
                                max_retries=0)(execute_task)
            pending: dict[Any, tuple[UnitTask, int, float]] = {}
            todo = iter(tasks)

            def submit(task: UnitTask, attempt: int) -> None:
                pending[remote.remote(task)] = (task, attempt, time.monotonic())

            while True:
                while len(pending) < limit:
                    task = next(todo, None)
                    if task is None:
                        break
                    submit(task, 1)
                if not pending:
                    return
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    task, attempt, _ = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # execute_task never raises: the worker was lost
                        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                        lost = f"Ray worker lost ({type(exc).__name__}: {reason})"
                        if isinstance(exc, ray.exceptions.OutOfMemoryError):
                            result = UnitResult("failed", error=lost)
                        elif attempt <= self.retries:
                            log.warning("%s @ %s on %s: %s; retrying", task.codec.name, task.point,
                                        task.image, lost)
                            submit(task, attempt + 1)
                            continue
                        else:
                            result = UnitResult("failed", error=f"{lost}, {attempt} attempts")
                    yield Outcome(task, result, attempt)
                yield from self._expire(ray, pending, submit)
        finally:
            if owns:
                ray.shutdown()

    def _expire(self, ray: Any, pending: dict, submit: Any) -> Iterator[Outcome]:
        if not self.timeout:
            return
        now = time.monotonic()
        for ref, (task, attempt, started) in list(pending.items()):
            if now - started <= self.timeout:
                continue
            ray.cancel(ref, force=True)
            del pending[ref]
            lost = f"timed out after {self.timeout:g} s (Ray worker killed)"
            if attempt <= self.retries:
                log.warning("%s @ %s on %s: %s; retrying", task.codec.name, task.point, task.image, lost)
                submit(task, attempt + 1)
            else:
                yield Outcome(task, UnitResult("failed", error=f"{lost}, {attempt} attempts"), attempt)
