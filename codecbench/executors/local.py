"""The ``local`` executor: a pool of worker processes on this machine.

Built on pebble's ``ProcessPool`` rather than ``concurrent.futures``: pebble fails only the task
whose worker died (segfault, ``kill -9``, the OOM killer) and replaces the worker, and it kills a
worker whose task runs past its timeout; a standard pool breaks as a whole on the first crash and
cannot stop a running task. Workers are started with ``spawn`` (a fresh interpreter that inherits
the caller's environment and ``sys.path`` at the time of the run, never a forked copy of its
threads or loaded models).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait

from pebble import ProcessExpired, ProcessPool

from codecbench.errors import CodecbenchError
from codecbench.executors.work import Outcome, UnitTask, execute_task, start_worker
from codecbench.runner import UnitResult, describe_error

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


class LocalExecutor:
    """Runs tasks in ``jobs`` worker processes, at most ``2 * jobs`` in flight, each worker's torch
    on ``threads`` threads (``0``: torch's default). Workers ignore Ctrl-C (pebble's doing); the
    caller stops them.

    A task whose worker dies or that runs longer than ``timeout`` seconds (its worker is killed)
    is started again, up to ``retries`` more times, and then reported as failed. The clock starts
    when a worker takes the task, after the worker has started and imported the plugins; loading
    a codec's model happens in its first unit and counts.
    """

    def __init__(self, jobs: int | None = None, timeout: float | None = None, retries: int = 2,
                 threads: int = 1):
        from codecbench.executors import default_jobs

        self.jobs = max(1, jobs or default_jobs())
        self.timeout = timeout
        self.retries = retries
        self.threads = threads

    def run(self, tasks: Iterable[UnitTask]) -> Iterator[Outcome]:
        pool = ProcessPool(max_workers=self.jobs, initializer=start_worker, initargs=(self.threads,),
                           context=multiprocessing.get_context("spawn"))
        pending: dict[Future, tuple[UnitTask, int]] = {}
        todo = iter(tasks)

        def submit(task: UnitTask, attempt: int) -> None:
            try:
                future = pool.schedule(execute_task, (task,), timeout=self.timeout)
            except RuntimeError as exc:  # pebble's pool stops when workers cannot even start
                raise CodecbenchError(
                    f"Worker processes failed to start ({exc}); see the errors above. A script "
                    "that runs codecbench with jobs > 1 must guard its entry point with "
                    "`if __name__ == '__main__':` (workers are spawned and import it)"
                ) from exc
            pending[future] = (task, attempt)

        try:
            while True:
                while len(pending) < IN_FLIGHT_PER_WORKER * self.jobs:
                    task = next(todo, None)
                    if task is None:
                        break
                    submit(task, 1)
                if not pending:
                    return
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in done:
                    task, attempt = pending.pop(future)
                    lost = None
                    try:
                        result = future.result()
                    except ProcessExpired as exc:
                        lost = f"worker process died ({describe_exit(exc.exitcode)})"
                    except TimeoutError:
                        lost = f"timed out after {self.timeout:g} s (worker killed)"
                    except Exception as exc:  # e.g. a task that cannot be pickled
                        result = UnitResult("failed", error=describe_error(exc))
                    if lost is not None:
                        if attempt <= self.retries:
                            log.warning("%s @ %s on %s: %s; retrying", task.codec.name, task.point,
                                        task.image, lost)
                            submit(task, attempt + 1)
                            continue
                        result = UnitResult("failed", error=f"{lost}, {attempt} attempts")
                    yield Outcome(task, result, attempt)
        finally:
            pool.stop()
            pool.join()
