"""The in-process executor: ``--jobs 1`` without ``--timeout`` computes units in this process.

It takes the same tasks as the other executors and computes them with the same function
(:func:`~codecbench.executors.work.run_task`), so the runner has one code path for every executor.
A task that completes a stored row from its stored stream is the exception: a stored stream may be
damaged or forged, so it goes to one guarded worker process (timeout, memory limit), as
:func:`~codecbench.executors.decode_guarded` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from codecbench.executors.guarded import DECODE_TIMEOUT_S
from codecbench.executors.local import WorkerPool, outcome, task_label
from codecbench.executors.work import Outcome, Resolver, UnitTask, execute_task, run_task


class InProcessExecutor:
    """Runs tasks one by one in this process (torch on the thread count this process requested);
    tasks with a stored stream run in one worker process with torch on ``threads`` threads, killed
    past ``timeout`` seconds (default :data:`~codecbench.executors.guarded.DECODE_TIMEOUT_S`) or
    ``memory_limit`` bytes and retried ``retries`` times after a crash."""

    def __init__(self, timeout: float | None = None, retries: int = 2, threads: int = 1,
                 memory_limit: int | None = None):
        self.timeout = timeout or DECODE_TIMEOUT_S
        self.retries = retries
        self.threads = threads
        self.memory_limit = memory_limit

    def run(self, tasks: Iterable[UnitTask]) -> Iterator[Outcome]:
        resolver = Resolver()  # this run's codecs, each loaded once
        with WorkerPool(1, timeout=self.timeout, retries=self.retries, threads=self.threads,
                        memory_limit=self.memory_limit) as guarded:
            for task in tasks:
                if task.stream is None:
                    yield Outcome(task, run_task(task, resolver))
                    continue
                guarded.submit(execute_task, task, task_label(task))
                while len(guarded):
                    for done in guarded.finished():
                        yield outcome(done)
