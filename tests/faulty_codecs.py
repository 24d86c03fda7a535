"""A plugin module whose codec crashes its process on purpose (importable by workers as a module).

``FaultyQuantizer`` is the toy ``Quantizer`` with two options. ``plan`` names faults by image
height: ``"48=kill,33=segv:1"`` kills the process with SIGKILL on every 48-row image and segfaults
on the first attempt only at a 33-row image; ``hang`` sleeps for ten minutes. ``:N`` limits a fault
to the first N attempts, counted in files under the ``flags`` folder, so the count survives the
crashed process and travels to any worker (options are part of the task).
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

import numpy as np
from toy_codecs import Quantizer

from codecbench import hookimpl


def _fault(kind: str) -> None:
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "segv":
        ctypes.string_at(0)  # reads address 0: a real segmentation fault
    elif kind == "hang":
        time.sleep(600)
    else:
        raise ValueError(f"unknown fault {kind!r}")


class FaultyQuantizer(Quantizer):
    """``Quantizer`` that crashes or hangs on the images its ``plan`` option names."""

    name = "faulty-quantizer"
    points = (4,)
    options = {"mode": "a", "plan": "", "flags": ""}

    def encode(self, image: np.ndarray, point: float) -> bytes:
        height = image.shape[0]
        for entry in filter(None, self.config["plan"].split(",")):
            target, _, fault = entry.partition("=")
            kind, _, limit = fault.partition(":")
            if int(target) != height:
                continue
            if limit:
                flags = Path(self.config["flags"])
                started = len(list(flags.glob(f"{height}-{kind}-*")))
                if started >= int(limit):
                    continue
                (flags / f"{height}-{kind}-{started}").touch()
            _fault(kind)
        return super().encode(image, point)


@hookimpl
def register_codecs(register) -> None:
    register(FaultyQuantizer())
