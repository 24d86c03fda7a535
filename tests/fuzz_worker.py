"""What a fuzzing worker process runs: one decode, reported as a short outcome string.

Kept apart from ``test_fuzz`` so that a worker imports only this (and the codec it is sent).
"""

from __future__ import annotations

import numpy as np

from codecbench import plugins
from codecbench.codec import Codec
from codecbench.errors import CodecbenchError
from codecbench.unit import describe_error

_decoders: dict[str, Codec] = {}


def decode_case(codec: str | Codec, data: bytes) -> str:
    """Decode ``data`` with a registered codec (by name) or an unregistered one (a pickled
    instance): ``refused <error class>: <message>``, ``image <shape>``, or what went wrong (a leaked
    exception, a malformed result). Each codec is kept, so a model loads at most once per worker."""
    if isinstance(codec, str):
        codec = _decoders.setdefault(codec, plugins.codecs().get(codec))
    else:
        codec = _decoders.setdefault(f"{codec.name} {codec.config}", codec)
    try:
        image = codec.decode(data)
    except CodecbenchError as exc:
        return f"refused {type(exc).__name__}: {exc}"
    except Exception as exc:
        return f"leaked {describe_error(exc)}"
    if (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3 and image.size > 0):
        return f"image {image.shape}"
    return f"returned {type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"


def decode_measured(codec: str | Codec, data: bytes) -> tuple[str, float, int]:
    """:func:`decode_case`, with the seconds it took and by how many bytes it raised this worker's
    peak resident memory."""
    import resource
    import time

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    outcome = decode_case(codec, data)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) * 1024  # Linux: KiB
    return outcome, time.perf_counter() - start, grown
