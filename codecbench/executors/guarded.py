"""Decoding a stored stream safely: in a worker process, with a timeout and a memory limit.

A stream read back from a results store may be damaged or forged: a few hundred bytes with a valid
checksum can make a decoder crash its process, run for minutes or allocate many GiB. So nothing
decodes a stored stream in the calling process; :func:`decode_guarded` sends it to a worker
process (the same pool machinery as ``run``'s, :class:`~codecbench.executors.local.WorkerPool`),
kills it past its timeout or its memory limit, and raises :class:`GuardedDecodeError` instead of
hanging or crashing the caller. One worker serves every call of a process and keeps the codecs it
loaded, so a report that decodes many crops loads each model once.
"""

from __future__ import annotations

import atexit
import threading

import numpy as np

from codecbench import threads as torch_threads
from codecbench.codec import Codec
from codecbench.errors import CodecError
from codecbench.executors.local import WorkerPool
from codecbench.executors.work import CodecSpec, DecodeTask, decode_task, plugin_refs

DECODE_TIMEOUT_S = 300.0
"""Seconds a stored stream may take to decode when the caller sets no timeout (Cheng2020 decodes a
Kodak image in seconds; forged streams were seen decoding for many minutes)."""


class GuardedDecodeError(CodecError):
    """A stored stream that could not be decoded: the decoder's error, a crash of its process, a
    timeout or running out of memory (the message says which, and names the codec)."""


_lock = threading.Lock()
_pools: dict[int, WorkerPool] = {}  # by torch thread count


def _pool(threads: int) -> WorkerPool:
    if threads not in _pools:
        _pools[threads] = WorkerPool(1, retries=0, threads=threads)
    return _pools[threads]


@atexit.register
def _close() -> None:
    for pool in _pools.values():
        pool.close()
    _pools.clear()


def decode_guarded(codec: Codec, stream: bytes, shape: tuple[int, ...], *,
                   timeout: float | None = None, threads: int | None = None) -> np.ndarray:
    """Decode a stored ``stream`` with ``codec`` (configured with the options it was stored with)
    in a worker process, and check it is a ``uint8`` image of ``shape``.

    ``timeout``: seconds the decode may take (default :data:`DECODE_TIMEOUT_S`); ``threads``:
    torch's thread count in the worker (default: the count requested in this process, else 1, as
    in ``run``'s workers). Raises :class:`GuardedDecodeError` naming the codec and why: the
    decoder's own error, its process killed by a signal, the timeout, or out of memory (the worker
    may hold the memory available when it started). The caller names the image.
    """
    if threads is None:
        threads = torch_threads.requested()
    threads = torch_threads.DEFAULT if threads is None else threads
    task = DecodeTask(CodecSpec.of(codec), bytes(stream), tuple(shape), plugin_refs(), threads)
    with _lock:
        pool = _pool(threads)
        pool.submit(decode_task, task, f"decoding a stored {codec.name} stream",
                    timeout=timeout or DECODE_TIMEOUT_S)
        done = None
        while len(pool):
            for done in pool.finished():
                pass
    if done is None or done.error is not None:
        reason = done.error if done is not None else "no result"
        raise GuardedDecodeError(f"{codec.name} could not decode the stored stream: {reason}")
    return done.value
