"""The machine a run or a training ran on, as recorded with results and checkpoint manifests.

Learned bitstreams are not always portable between CPUs (another instruction set can round the
floats that choose a CDF differently), so which CPU encoded a stored row is worth knowing.
"""

from __future__ import annotations

import platform


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo``'s model name where there is one)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
