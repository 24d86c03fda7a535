"""Memory: how many workers fit, a limit per worker, and out-of-memory kills named as such.

One 8000x8000 image with PSNR and MS-SSIM needs several GiB in one worker, and a pool of 8 such
workers is killed by the kernel's out-of-memory killer, which may pick any process of the machine.
So a pool is sized by an estimate of what one unit needs (:func:`unit_bytes`: the worker's own
footprint, plus bytes per pixel for the codec and for each metric, as the metric declares in its
``bytes_per_pixel``: PSNR, computed in bands of rows, needs none) against the memory available now,
and each worker gets an equal share of it as a hard limit: a :class:`MemoryWatchdog` kills a worker
whose resident memory passes its share, and the unit is reported as out of memory, never retried
(it would only run out again). A worker killed by the kernel's OOM killer anyway (the machine's
memory taken by something else) is recognised by the kernel's ``oom_kill`` counter and reported the
same way.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from codecbench.metric import Metric

GIB = 1 << 30
WORKER_BYTES = 1 * GIB
"""A worker's footprint before its first unit: the interpreter, numpy, torch and a model."""
CODEC_BYTES_PER_PIXEL = {"learned": 1000, "traditional": 50}
"""A codec's working memory per pixel of the image (learned: float feature maps at full size)."""
IMAGE_BYTES_PER_PIXEL = 9
"""The original, its copy handed to ``encode`` and the reconstruction (3 bytes each)."""
POLL_S = 0.1


def available_bytes() -> int:
    """Memory this process may still use: the system's available memory, or less where a cgroup
    (a container) limits it."""
    available = psutil.virtual_memory().available
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            used = int((cgroup / "memory.current").read_text())
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(0, available)


def unit_bytes(pixels: int, family: str, metrics: Iterable[Metric]) -> int:
    """Estimated peak memory of a worker computing one unit: an image of ``pixels`` pixels, a
    codec of ``family`` and the per-image ones among ``metrics`` (each needing its declared
    ``bytes_per_pixel``)."""
    per_pixel = (IMAGE_BYTES_PER_PIXEL + CODEC_BYTES_PER_PIXEL.get(family, 1000)
                 + sum(m.bytes_per_pixel for m in metrics if m.kind == "image"))
    return WORKER_BYTES + pixels * per_pixel


@dataclass(frozen=True)
class MemoryBudget:
    """``available`` bytes for a pool whose units each need about ``per_unit`` bytes."""

    available: int
    per_unit: int

    def jobs(self, wanted: int) -> int:
        """``wanted`` workers, or fewer (at least one) so that their units fit together."""
        return max(1, min(wanted, self.available // max(1, self.per_unit)))

    def worker_limit(self, jobs: int) -> int:
        """Each of ``jobs`` workers' share of the available memory: the most it may hold."""
        return max(1, self.available // max(1, jobs))

    def describe(self) -> str:
        return (f"about {self.per_unit / GIB:.1f} GiB per unit, {self.available / GIB:.1f} GiB "
                f"available")


def image_pixels(path: str | Path) -> int:
    """An image file's pixel count from its header (nothing decoded); 0 when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.width * img.height
    except Exception:  # the unit reports an unreadable image
        return 0


def plan_budget(pixels: Iterable[int], families: Iterable[str],
                metrics: Iterable[Metric]) -> MemoryBudget:
    """The budget of a run over images of ``pixels`` pixels with codecs of ``families`` and
    ``metrics``: sized for its largest unit, against the memory available now."""
    per_unit = unit_bytes(max(pixels, default=0), "learned" if "learned" in set(families)
                          else "traditional", metrics)
    return MemoryBudget(available_bytes(), per_unit)


def kernel_oom_kills() -> int | None:
    """The kernel's count of processes its out-of-memory killer killed (``None``: not Linux)."""
    try:
        for line in Path("/proc/vmstat").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def format_bytes(n: float) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB / 10 else f"{n / (1 << 20):.0f} MiB"


class MemoryWatchdog:
    """A thread that kills (SIGKILL) any worker whose resident memory passes ``limit`` bytes.

    ``workers`` returns the pids to watch. :meth:`out_of_memory` then says, for a worker that died,
    whether it ran out of memory: killed here, or by the kernel's OOM killer (its counter moved
    while the worker was killed by SIGKILL).
    """

    def __init__(self, limit: int, workers: Callable[[], Sequence[int]]):
        self.limit = limit
        self.workers = workers
        self.killed: dict[int, int] = {}  # pid -> resident bytes when killed
        self._oom_kills = kernel_oom_kills()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="codecbench-memory", daemon=True)

    def __enter__(self) -> "MemoryWatchdog":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            for pid in self.workers():
                if pid in self.killed:
                    continue
                try:
                    rss = psutil.Process(pid).memory_info().rss
                except psutil.Error:
                    continue
                if rss > self.limit:
                    self.killed[pid] = rss
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass

    def out_of_memory(self, pid: int | None, exitcode: int | None) -> str | None:
        """Why the worker ``pid`` that died with ``exitcode`` ran out of memory, ``None`` when it
        did not (a crash)."""
        if pid in self.killed:
            return (f"out of memory (the worker held {format_bytes(self.killed[pid])}, more than "
                    f"its limit of {format_bytes(self.limit)}: its share of the memory available; "
                    "use fewer --jobs or smaller images)")
        if exitcode == -signal.SIGKILL:
            count = kernel_oom_kills()
            if count is not None and self._oom_kills is not None and count > self._oom_kills:
                self._oom_kills = count
                return "out of memory (killed by the kernel's out-of-memory killer)"
        return None


