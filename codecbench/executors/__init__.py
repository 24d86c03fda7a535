"""Executors: where a run's work units are computed.

Besides the runner's own in-process loop (``--jobs 1``), two executors compute units away from the
caller: ``local`` (a pool of worker processes on this machine, via pebble, with per-unit timeouts
and crash isolation) and ``ray`` (a Ray cluster). Both take :class:`~codecbench.executors.work.UnitTask`
objects and yield :class:`~codecbench.executors.work.Outcome` objects as units finish; only the
caller writes to the results store, so SQLite is written by one process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Protocol

from codecbench.executors.work import Outcome, UnitTask

EXECUTORS = ("local", "ray")
MAX_DEFAULT_JOBS = 8


class Executor(Protocol):
    """Computes tasks and yields their outcomes as they finish (in any order)."""

    def run(self, tasks: Iterable[UnitTask]) -> Iterator[Outcome]: ...


def default_jobs() -> int:
    """The number of CPUs this process may use, at most :data:`MAX_DEFAULT_JOBS`.

    The cap keeps the memory of per-worker model copies bounded on big machines; pass ``--jobs``
    to go higher.
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
) -> Executor:
    """The executor called ``name`` (one of :data:`EXECUTORS`); its workers run torch on
    ``threads`` threads (``0``: torch's default)."""
    if name == "local":
        from codecbench.executors.local import LocalExecutor

        return LocalExecutor(jobs=jobs, timeout=timeout, retries=retries, threads=threads)
    if name == "ray":
        from codecbench.executors.ray import RayExecutor

        return RayExecutor(address=ray_address, jobs=jobs, timeout=timeout, retries=retries,
                           threads=threads)
    raise ValueError(f"Unknown executor {name!r}; expected one of {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "Executor", "Outcome", "UnitTask", "default_jobs", "make_executor"]
