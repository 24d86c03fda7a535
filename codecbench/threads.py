"""Torch's intra-op thread count in the processes that run units (``--threads``).

Left alone, torch uses every core of the machine in each process; on a shared CPU, or beside other
workers, that is many times slower than one thread (one Cheng2020 image: 593 s against 71 s). So a
run uses 1 thread per unit by default, in-process (``-j 1``) as in each worker of the pool, and
``--threads N`` changes it (``0``: torch's own default).

Nothing here imports torch: :func:`apply` sets the count only once torch has been imported (it is
called when a unit's codec has loaded, and when the learned-codec toolkit is imported).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

AUTO = 0
"""``--threads 0`` / ``--threads auto``: torch's default thread count."""

DEFAULT = 1
"""The thread count of a unit when nothing was requested: the pool's one thread per worker."""

_requested: int | None = None
_torch_default: int | None = None


def requested() -> int | None:
    """The thread count requested in this process (``None``: none; ``0``: torch's default)."""
    return _requested


def request(count: int | None) -> None:
    """Use ``count`` torch threads in this process from now on (``0``: torch's default; ``None``:
    leave torch alone from now on). Applied at once if torch is imported, else once it is."""
    global _requested
    if count is not None and count < 0:
        raise ValueError(f"Invalid thread count {count}; expected 0 (torch's default) or more")
    _requested = count
    apply()


def apply() -> None:
    """Set torch's intra-op thread count to the requested one, if torch is imported (never
    imports it)."""
    global _torch_default
    torch = sys.modules.get("torch")
    if _requested is None or torch is None or not hasattr(torch, "set_num_threads"):
        return  # nothing requested, torch not imported, or torch still importing
    if _torch_default is None:
        _torch_default = torch.get_num_threads()
    target = _requested or _torch_default
    if torch.get_num_threads() != target:
        torch.set_num_threads(target)


@contextmanager
def using(count: int | None) -> Iterator[None]:
    """:func:`request` ``count`` inside the block; then the previous request (or, with none,
    torch's default count, when the block changed it)."""
    previous = _requested
    request(count)
    try:
        yield
    finally:
        if previous is None and _requested is not None and _torch_default is not None:
            request(AUTO)  # back to the count torch had before the block
        request(previous)
