"""Executors: where a run's work units are computed.

Three executors take :class:`~codecbench.executors.work.UnitTask` objects and yield
:class:`~codecbench.executors.work.Outcome` objects as units finish, each computing a unit with the
same function: in this process (``--jobs 1`` without a timeout), ``local`` (a pool of worker
processes on this machine, via pebble, with per-unit timeouts, crash isolation and a memory limit
per worker) and ``ray`` (a Ray cluster). Only the caller writes to the results store, so SQLite is
written by one process. :func:`decode_guarded` decodes one stored stream in a guarded worker.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Protocol

from codecbench.executors.guarded import DECODE_TIMEOUT_S, GuardedDecodeError, decode_guarded
from codecbench.executors.work import Outcome, UnitTask

EXECUTORS = ("local", "ray")
MAX_DEFAULT_JOBS = 8


class Executor(Protocol):
    """Computes tasks and yields their outcomes as they finish (in any order)."""

    def run(self, tasks: Iterable[UnitTask]) -> Iterator[Outcome]: ...


def default_jobs() -> int:
    """The number of CPUs this process may use, at most :data:`MAX_DEFAULT_JOBS`.

    The cap keeps the memory of per-worker model copies bounded on big machines; pass ``--jobs``
    to go higher. The runner may use fewer, where the memory available does not fit more
    (:mod:`codecbench.executors.memory`).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_JOBS))


def make_executor(
    name: str,
    *,
    jobs: int | None = None,
    timeout: float | None = None,
    retries: int = 2,
    ray_address: str | None = None,
    threads: int = 1,
    memory_limit: int | None = None,
) -> Executor:
    """The executor called ``name`` (one of :data:`EXECUTORS`); its workers run torch on
    ``threads`` threads (``0``: torch's default) and each may hold ``memory_limit`` bytes
    (default: its share of the memory available). ``local`` with one job and no timeout computes
    units in this process."""
    if name == "local" and jobs == 1 and timeout is None:
        from codecbench.executors.inline import InProcessExecutor

        return InProcessExecutor(retries=retries, threads=threads, memory_limit=memory_limit)
    if name == "local":
        from codecbench.executors.local import LocalExecutor

        return LocalExecutor(jobs=jobs, timeout=timeout, retries=retries, threads=threads,
                             memory_limit=memory_limit)
    if name == "ray":
        from codecbench.executors.ray import RayExecutor

        return RayExecutor(address=ray_address, jobs=jobs, timeout=timeout, retries=retries,
                           threads=threads)
    raise ValueError(f"Unknown executor {name!r}; expected one of {', '.join(EXECUTORS)}")


__all__ = ["DECODE_TIMEOUT_S", "EXECUTORS", "Executor", "GuardedDecodeError", "Outcome", "UnitTask",
           "decode_guarded", "default_jobs", "make_executor"]
