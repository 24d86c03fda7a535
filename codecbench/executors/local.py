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
import pickle
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from pebble import ProcessExpired, ProcessPool

from codecbench.errors import CodecbenchError
from codecbench.executors.memory import MemoryWatchdog, available_bytes
from codecbench.executors.work import Outcome, UnitTask, execute_task, start_worker
from codecbench.unit import UnitResult

log = logging.getLogger(__name__)

IN_FLIGHT_PER_WORKER = 2
MAX_BROKEN_POOLS = 3
POLL_S = 1.0  # how often a pool that may have failed while no task could notice is checked


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

    ``arg`` is pickled by :meth:`submit` and unpickled inside the task (:func:`call_pickled`),
    so one that cannot be pickled here or rebuilt in a worker fails its own task only. When the
    pool itself fails (pebble's pool stops when a worker dies outside any task, e.g. an idle worker
    killed), its tasks count as lost workers and a fresh pool takes them and later tasks; after
    :data:`MAX_BROKEN_POOLS` pools in a row fail before any task finishes, workers cannot start,
    and :class:`~codecbench.errors.CodecbenchError` says so.
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
        self._pending: dict[Future, _Task] = {}
        self._broken = 0  # pools that failed in a row, no task finishing in between

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        """Tasks submitted and not yet finished."""
        return len(self._pending)

    def _start(self) -> ProcessPool:
        if self._pool is None:
            if self._broken >= MAX_BROKEN_POOLS:
                raise CodecbenchError(
                    f"Worker processes failed to start ({self._broken} pools in a row stopped "
                    "before finishing a task); see the errors above. A script that runs "
                    "codecbench with jobs > 1 must guard its entry point with "
                    "`if __name__ == '__main__':` (workers are spawned and import it)")
            self._pool = ProcessPool(max_workers=self.jobs, initializer=start_worker,
                                     initargs=(self.threads,),
                                     context=multiprocessing.get_context("spawn"))
        if self._watchdog is None:
            limit = self.memory_limit or max(1, available_bytes() // self.jobs)
            self._watchdog = MemoryWatchdog(limit, self._worker_pids).__enter__()
        return self._pool

    def _discard(self, pool: ProcessPool) -> None:
        """Stop ``pool``, which failed (once, however many of its tasks report it); its tasks
        that will now never finish are failed as lost to it."""
        if pool is not self._pool:
            return
        self._pool = None
        self._broken += 1
        log.warning("the worker pool failed; starting a fresh one")
        pool.stop()
        pool.join()
        for future, task in self._pending.items():
            if task.pool is pool and not future.done():
                future.set_exception(BrokenProcessPool("the worker pool was stopped"))

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
        pool = self._start()
        future: Future
        try:
            payload = pickle.dumps(arg)
        except Exception as exc:  # reported as this task's error
            future = Future()
            future.set_exception(exc)
        else:
            try:
                future = pool.schedule(call_pickled, (fn, payload), timeout=timeout)
            except RuntimeError:  # pebble's pool stopped: it failed since the last task
                self._discard(pool)
                pool = self._start()
                future = pool.schedule(call_pickled, (fn, payload), timeout=timeout)
        self._pending[future] = _Task(fn, arg, label, attempt, timeout, pool)

    def finished(self) -> Iterator[Finished]:
        """Wait until a task finishes and yield it (and any other finished meanwhile); tasks that
        lost their worker (or their pool) are started again instead, while they have retries
        left."""
        done: set[Future] = set()
        while not done and self._pending:
            done, _ = wait(list(self._pending), timeout=POLL_S, return_when=FIRST_COMPLETED)
            if not done and self._pool is not None and not self._pool.active:
                self._discard(self._pool)  # failed while no task of it could notice
        for future in done:
            task = self._pending.pop(future)
            try:
                value = future.result()
            except ProcessExpired as exc:
                lost = self._watchdog and self._watchdog.out_of_memory(exc.pid, exc.exitcode)
                retry = lost is None
                lost = lost or f"worker process died ({describe_exit(exc.exitcode)})"
            except TimeoutError:
                lost, retry = f"timed out after {task.timeout:g} s (worker killed)", True
            except BrokenProcessPool as exc:  # the pool itself failed, not this task
                self._discard(task.pool)
                lost, retry = f"the worker pool failed ({exc})", True
            except Exception as exc:  # the task's own exception, or one that cannot be pickled
                self._broken = 0
                yield Finished(task.label, task.arg, task.attempt,
                               error=f"{type(exc).__name__}: {exc}")
                continue
            else:
                self._broken = 0
                yield Finished(task.label, task.arg, task.attempt, value=value)
                continue
            if retry and task.attempt <= self.retries:
                log.warning("%s: %s; retrying", task.label, lost)
                self.submit(task.fn, task.arg, task.label, task.attempt + 1, timeout=task.timeout)
                continue
            error = f"{lost}, {task.attempt} attempts" if retry else lost
            yield Finished(task.label, task.arg, task.attempt, error=error)

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


@dataclass
class _Task:
    """A submitted task, as :meth:`WorkerPool.finished` needs it (``pool``: the pool running it)."""

    fn: Callable[[Any], Any]
    arg: Any
    label: str
    attempt: int
    timeout: float | None
    pool: ProcessPool | None


def call_pickled(fn: Callable[[Any], Any], payload: bytes) -> Any:
    """``fn(pickle.loads(payload))``, in a worker: an argument that cannot be rebuilt here (its
    class is not importable in the worker) fails this task with an error saying so."""
    try:
        arg = pickle.loads(payload)
    except Exception as exc:
        raise CodecbenchError(
            f"the task cannot be rebuilt in the worker process ({type(exc).__name__}: {exc}): "
            "what it carries must be importable there (classes at the top level of a module, not "
            "in a function or a notebook)") from None
    return fn(arg)


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
