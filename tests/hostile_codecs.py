"""A toy codec whose decoder misbehaves on demand, as a forged stored stream makes a real one do.

``HostileDecoder`` is the toy ``Quantizer``; once the file named by its ``armed`` option exists,
its ``decode`` does what its ``fault`` option says: ``hang`` (sleeps ten minutes), ``segv`` (a real
segmentation fault), ``memory`` (takes 2 GiB and holds it) or ``raise``. Arming the file between
two runs turns the streams the first run stored into hostile ones for the second.
"""

from __future__ import annotations

import ctypes
import time
from pathlib import Path

import numpy as np
from toy_codecs import Quantizer

GIB = 1 << 30


class HostileDecoder(Quantizer):
    name = "hostile"
    points = (4,)
    options = {"mode": "a", "fault": "hang", "armed": ""}

    def decode(self, data: bytes) -> np.ndarray:
        if self.config["armed"] and Path(self.config["armed"]).exists():
            fault = self.config["fault"]
            if fault == "hang":
                time.sleep(600)
            elif fault == "segv":
                ctypes.string_at(0)
            elif fault == "memory":
                hog = np.ones(2 * GIB, np.uint8)  # touched: resident, not only reserved
                time.sleep(600)
                del hog
            elif fault == "raise":
                raise ValueError("forged stream")
        return super().decode(data)
