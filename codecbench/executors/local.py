"""The ``local`` executor: a pool of worker processes on this machine.

Built on pebble's ``ProcessPool`` rather than ``concurrent.futures``: pebble fails only the task
whose worker died (segfault, ``kill -9``, the OOM killer) and replaces the worker, and it kills a
worker whose task runs past its timeout; a standard pool breaks as a whole on the first crash and
cannot stop a running task. Workers are started with ``spawn`` (a fresh interpreter that inherits
the caller's environment and ``sys.path`` at the time of the run, never a forked copy of its
threads or loaded models). Each worker may hold at most its share of the memory available
(:mod:`codecbench.executors.memory`); one that runs out is killed and its task reported as out of
memory, without a retry.

:class:`WorkerPool` is that machinery for any picklable task; :class:`LocalExecutor` runs units
through it, and :func:`codecbench.executors.decode_guarded` decodes stored streams through it.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any

from pebble import ProcessExpired, ProcessPool

from codecbench.errors import CodecbenchError
from codecbench.executors.memory import MemoryWatchdog, available_bytes
from codecbench.executors.work import Outcome, UnitTask, execute_task, start_worker
from codecbench.unit import UnitResult

log = logging.getLogger(__name__)

IN_FLIGHT_PER_WORKER = 2


def describe_exit(exitcode: int | None) -> str:
    """``-11`` as ``"killed by SIGSEGV"``, ``3`` as ``"exit status 3"``."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


@dataclass
class Finished:
    """A task the pool is done with: its return ``value``, or the ``error`` that ended it (a
    worker lost more than ``retries`` times, out of memory, or the task's exception), and how many
    times it was started."""

    label: str
    arg: Any
    attempts: int
    value: Any = None
    error: str | None = None


class WorkerPool:
    """``jobs`` spawned worker processes computing ``fn(arg)`` tasks, used as a context manager.

    Every worker runs :func:`~codecbench.executors.work.start_worker` first (torch on ``threads``
    threads, plugins imported), so a task's ``timeout`` never counts that start-up. A task whose
    worker dies or runs past ``timeout`` seconds is started again up to ``retries`` more times; one
    whose worker held more than ``memory_limit`` bytes (default: the memory available now, shared
    among the workers) is not. The pool starts its workers at the first :meth:`submit`.
    """

    def __init__(self, jobs: int = 1, *, timeout: float | None = None, retries: int = 2,
                 threads: int = 1, memory_limit: int | None = None):
        self.jobs = max(1, jobs)
        self.timeout = timeout
        self.retries = retries
        self.threads = threads
        self.memory_limit = memory_limit
        self._pool: ProcessPool | None = None
        self._watchdog: MemoryWatchdog | None = None
        self._pending: dict[Future, tuple[Callable[[Any], Any], Any, str, int, float | None]] = {}

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        """Tasks submitted and not yet finished."""
        return len(self._pending)

    def _start(self) -> ProcessPool:
        if self._pool is None:
            self._pool = ProcessPool(max_workers=self.jobs, initializer=start_worker,
                                     initargs=(self.threads,),
                                     context=multiprocessing.get_context("spawn"))
            limit = self.memory_limit or max(1, available_bytes() // self.jobs)
            self._watchdog = MemoryWatchdog(limit, self._worker_pids).__enter__()
        return self._pool

    def _worker_pids(self) -> list[int]:
        # pebble keeps its worker processes by pid and has no public accessor for them
        manager = getattr(getattr(self._pool, "_pool_manager", None), "worker_manager", None)
        try:
            return list(getattr(manager, "workers", {}))
        except RuntimeError:  # changed size while copied: a worker was being replaced
            return []

    def submit(self, fn: Callable[[Any], Any], arg: Any, label: str, attempt: int = 1, *,
               timeout: float | None = None) -> None:
        """Start ``fn(arg)`` in a worker; ``label`` names the task in log messages; ``timeout``
        replaces the pool's for this task."""
        timeout = timeout or self.timeout
        try:
            future = self._start().schedule(fn, (arg,), timeout=timeout)
        except RuntimeError as exc:  # pebble's pool stops when workers cannot even start
            raise CodecbenchError(
                f"Worker processes failed to start ({exc}); see the errors above. A script "
                "that runs codecbench with jobs > 1 must guard its entry point with "
                "`if __name__ == '__main__':` (workers are spawned and import it)"
            ) from exc
        self._pending[future] = (fn, arg, label, attempt, timeout)

    def finished(self) -> Iterator[Finished]:
        """Wait until a task finishes and yield it (and any other finished meanwhile); tasks that
        lost their worker are started again instead, while they have retries left."""
        done, _ = wait(list(self._pending), return_when=FIRST_COMPLETED)
        for future in done:
            fn, arg, label, attempt, timeout = self._pending.pop(future)
            try:
                value = future.result()
            except ProcessExpired as exc:
                lost = self._watchdog and self._watchdog.out_of_memory(exc.pid, exc.exitcode)
                retry = lost is None
                lost = lost or f"worker process died ({describe_exit(exc.exitcode)})"
            except TimeoutError:
                lost, retry = f"timed out after {timeout:g} s (worker killed)", True
            except Exception as exc:  # the task's own exception, or one that cannot be pickled
                yield Finished(label, arg, attempt, error=f"{type(exc).__name__}: {exc}")
                continue
            else:
                yield Finished(label, arg, attempt, value=value)
                continue
            if retry and attempt <= self.retries:
                log.warning("%s: %s; retrying", label, lost)
                self.submit(fn, arg, label, attempt + 1, timeout=timeout)
                continue
            yield Finished(label, arg, attempt, error=f"{lost}, {attempt} attempts" if retry else lost)

    def close(self) -> None:
        """Stop the workers (those still computing are killed)."""
        if self._pool is not None:
            self._pool.stop()
            self._pool.join()
            self._pool = None
        if self._watchdog is not None:
            self._watchdog.__exit__()
            self._watchdog = None
        self._pending.clear()


def task_label(task: UnitTask) -> str:
    """``codec @ point on image`` for log messages."""
    return f"{task.codec.name} @ {task.point} on {task.image}"


def outcome(done: Finished) -> Outcome:
    """A :class:`WorkerPool`'s finished unit task as the executor's :class:`Outcome`."""
    result = done.value if done.error is None else UnitResult("failed", error=done.error)
    return Outcome(done.arg, result, done.attempts)


class LocalExecutor:
    """Runs tasks in ``jobs`` worker processes, at most ``2 * jobs`` in flight, each worker's torch
    on ``threads`` threads (``0``: torch's default) and holding at most ``memory_limit`` bytes
    (default: its share of the memory available). Workers ignore Ctrl-C (pebble's doing); the
    caller stops them.

    A task whose worker dies or that runs longer than ``timeout`` seconds (its worker is killed)
    is started again, up to ``retries`` more times, and then reported as failed; one whose worker
    ran out of memory is reported at once. The clock starts when a worker takes the task, after the
    worker has started and imported the plugins; loading a codec's model happens in its first unit
    and counts.
    """

    def __init__(self, jobs: int | None = None, timeout: float | None = None, retries: int = 2,
                 threads: int = 1, memory_limit: int | None = None):
        from codecbench.executors import default_jobs

        self.jobs = max(1, jobs or default_jobs())
        self.timeout = timeout
        self.retries = retries
        self.threads = threads
        self.memory_limit = memory_limit

    def run(self, tasks: Iterable[UnitTask]) -> Iterator[Outcome]:
        todo = iter(tasks)
        with WorkerPool(self.jobs, timeout=self.timeout, retries=self.retries,
                        threads=self.threads, memory_limit=self.memory_limit) as pool:
            while True:
                while len(pool) < IN_FLIGHT_PER_WORKER * self.jobs:
                    task = next(todo, None)
                    if task is None:
                        break
                    pool.submit(execute_task, task, task_label(task))
                if not len(pool):
                    return
                for done in pool.finished():
                    yield outcome(done)
