"""BPG (HEVC intra, Fabrice Bellard's libbpg) through the reference ``bpgenc``/``bpgdec`` binaries.

The command lines are those of CompressAI's bench (``compressai/utils/bench/codecs.py``):
``bpgenc -o OUT -q QP -f 444 -e x265 -c ycbcr -b 8 IN.png`` and ``bpgdec -o OUT.png IN.bpg``.
The binaries come from the ``bpgenc``/``bpgdec`` codec options, else the ``CODECBENCH_BPGENC``/
``CODECBENCH_BPGDEC`` environment variables, else ``PATH``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from codecbench import BitstreamError, Codec, CodecError, CodecUnavailableError, hookimpl
from codecbench_classical.options import choice_option

MAX_QP = 51
BPG_MAGIC = b"BPG\xfb"
ENV_VARS = {"bpgenc": "CODECBENCH_BPGENC", "bpgdec": "CODECBENCH_BPGDEC"}
INSTALL_HINT = (
    "build libbpg from https://bellard.org/bpg/ (needs cmake, yasm, libpng-dev, libjpeg-dev: "
    "'make USE_BPGVIEW= USE_EMCC= bpgenc bpgdec', then put bpgenc and bpgdec on PATH; "
    "on macOS 'brew install libbpg'), or pass -o bpgenc=PATH -o bpgdec=PATH, "
    "or set CODECBENCH_BPGENC / CODECBENCH_BPGDEC"
)


def qp_of(point: int) -> int:
    """The HEVC quantizer for ``point``: ``QP = 51 - point``, so a higher point means a higher rate."""
    return MAX_QP - point


@functools.cache
def bpgenc_version(bpgenc: str) -> str:
    """The version that ``bpgenc -h`` prints ("BPG Image Encoder version 0.9.8"), or "unknown"."""
    try:
        run = subprocess.run([bpgenc, "-h"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    found = re.search(r"version\s+(\S+)", run.stdout + run.stderr)
    return found.group(1) if found else "unknown"


class BPG(Codec):
    name = "bpg"
    description = (
        "BPG (libbpg bpgenc/bpgdec binaries), HEVC intra, YCbCr 4:4:4 by default (-o chroma=420), "
        "x265 encoder by default (-o encoder=jctvc), 8 bits; point = 51 - QP"
    )
    # QP 51 (the coarsest quantizer) up to QP 20; point = 51 - QP keeps points ordered by rate.
    points = (0, 4, 8, 12, 16, 19, 22, 25, 28, 31)
    point_range = (0, MAX_QP)
    options = {"chroma": "444", "encoder": "x265", "bpgenc": "", "bpgdec": ""}

    def configured_binary(self, tool: str) -> tuple[str, str]:
        """The path or name given for ``tool`` and where it was given ("" and "PATH" when neither)."""
        if self.config[tool]:
            return str(self.config[tool]), f"option {tool}"
        if os.environ.get(ENV_VARS[tool]):
            return os.environ[ENV_VARS[tool]], ENV_VARS[tool]
        return "", "PATH"

    def binary(self, tool: str) -> str | None:
        """Path of ``tool`` ("bpgenc" or "bpgdec"): codec option, then environment, then PATH."""
        given, _ = self.configured_binary(tool)
        return shutil.which(given or tool)

    def unavailable_reason(self) -> str | None:
        problems = []
        for tool in ENV_VARS:
            if self.binary(tool) is None:
                given, origin = self.configured_binary(tool)
                problems.append(f"{tool} {given!r} (from {origin}) is not an executable" if given
                                else f"{tool} not found on PATH")
        if not problems:
            return None
        return f"{'; '.join(problems)}. To install: {INSTALL_HINT}"

    def version(self) -> str:
        bpgenc = self.binary("bpgenc")
        return f"libbpg-{bpgenc_version(bpgenc)}" if bpgenc else "unavailable"

    def required_binary(self, tool: str) -> str:
        path = self.binary(tool)
        if path is None:
            raise CodecUnavailableError(f"Codec 'bpg' is unavailable: {self.unavailable_reason()}")
        return path

    def encode_command(self, source: Path, target: Path, point: int) -> list[str]:
        """The ``bpgenc`` command line that codes ``source`` (PNG) into ``target`` at ``point``."""
        return [
            self.required_binary("bpgenc"), "-o", str(target), "-q", str(qp_of(point)),
            "-f", choice_option(self, "chroma", ("420", "444")),
            "-e", choice_option(self, "encoder", ("x265", "jctvc")),
            "-c", "ycbcr", "-b", "8", str(source),
        ]

    def decode_command(self, source: Path, target: Path) -> list[str]:
        """The ``bpgdec`` command line that decodes ``source`` (BPG) into ``target`` (PNG)."""
        return [self.required_binary("bpgdec"), "-o", str(target), str(source)]

    def encode(self, image: np.ndarray, point: float) -> bytes:
        point = self.validate_point(point)
        with tempfile.TemporaryDirectory(prefix="codecbench-bpg-") as folder:
            source, target = Path(folder) / "input.png", Path(folder) / "output.bpg"
            Image.fromarray(image, "RGB").save(source)
            run = subprocess.run(self.encode_command(source, target, point), capture_output=True, text=True)
            if run.returncode != 0 or not target.is_file():
                raise CodecError(f"bpgenc failed (exit {run.returncode}): {(run.stderr or run.stdout).strip()}")
            return target.read_bytes()

    def decode(self, data: bytes) -> np.ndarray:
        if not data.startswith(BPG_MAGIC):
            raise BitstreamError("not a BPG bitstream (it does not start with the BPG magic number)")
        with tempfile.TemporaryDirectory(prefix="codecbench-bpg-") as folder:
            source, target = Path(folder) / "input.bpg", Path(folder) / "output.png"
            source.write_bytes(data)
            run = subprocess.run(self.decode_command(source, target), capture_output=True, text=True)
            if run.returncode != 0 or not target.is_file():
                raise BitstreamError(
                    f"bpgdec could not decode the BPG bitstream (exit {run.returncode}): "
                    f"{(run.stderr or run.stdout).strip()}"
                )
            with Image.open(target) as decoded:
                return np.asarray(decoded.convert("RGB"), dtype=np.uint8)


@hookimpl
def register_codecs(register: Callable[[Codec], None]) -> None:
    register(BPG())
