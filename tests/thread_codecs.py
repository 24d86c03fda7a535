"""A plugin module whose codec records torch's thread count in its bitstream (importable by workers).

``ThreadCounter`` is the toy ``Quantizer`` whose ``load`` imports torch, as a learned codec's does,
and whose first byte is ``torch.get_num_threads()`` at encode time, so a test reads the thread
count a unit ran with from the stored stream, whichever process encoded it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from toy_codecs import Quantizer

from codecbench import Codec, hookimpl


class ThreadCounter(Quantizer):
    name = "thread-counter"
    points = (8,)

    def load(self) -> None:
        import torch  # noqa: F401  (a learned codec's load imports torch)

    def encode(self, image: np.ndarray, point: float) -> bytes:
        import torch

        return bytes([min(255, torch.get_num_threads())]) + super().encode(image, point)

    def decode(self, data: bytes) -> np.ndarray:
        return super().decode(data[1:])


@hookimpl
def register_codecs(register: Callable[[Codec], None]) -> None:
    register(ThreadCounter())
