"""BPG (HEVC intra, Fabrice Bellard's libbpg) through the reference ``bpgenc``/``bpgdec`` binaries.

The command lines are those of CompressAI's bench (``compressai/utils/bench/codecs.py``):
``bpgenc -o OUT -q QP -f 444 -e x265 -c ycbcr -b 8 IN.png`` and ``bpgdec -o OUT.png IN.bpg``.
The binaries come from the ``bpgenc``/``bpgdec`` codec options, else the ``CODECBENCH_BPGENC``/
``CODECBENCH_BPGDEC`` environment variables, else the folder of the running Python (a virtualenv's
``bin``, where ``scripts/build_bpg.sh`` installs them), else ``PATH``. Which HEVC encoders the
installed ``bpgenc`` offers (x265, JCTVC or both, depending on its build) is read once from its help.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from codecbench import BitstreamError, Codec, CodecError, CodecUnavailableError, hookimpl
from codecbench_classical.options import choice_option

MAX_QP = 51
# libbpg 0.9.8's bpgenc segfaults with its x265 encoder on images narrower than this (measured:
# widths 8-24 crash at every height and chroma format, 25 and up encode); JCTVC has no such limit.
X265_MIN_WIDTH = 25
BPG_MAGIC = b"BPG\xfb"
ENV_VARS = {"bpgenc": "CODECBENCH_BPGENC", "bpgdec": "CODECBENCH_BPGDEC"}
INSTALL_HINT = (
    "run 'bash scripts/build_bpg.sh [libbpg-0.9.8.tar.gz]' in a codecbench checkout (builds bpgenc and "
    "bpgdec from libbpg 0.9.8, https://bellard.org/bpg/, into the virtualenv), or build libbpg yourself "
    "and put bpgenc and bpgdec on PATH (macOS: 'brew install libbpg'), or pass -o bpgenc=PATH "
    "-o bpgdec=PATH, or set CODECBENCH_BPGENC / CODECBENCH_BPGDEC"
)


def qp_of(point: int) -> int:
    """The HEVC quantizer for ``point``: ``QP = 51 - point``, so a higher point means a higher rate."""
    return MAX_QP - point


def installed_dir() -> Path:
    """The folder of the running Python: a virtualenv's ``bin``, where the build script installs."""
    return Path(sys.executable).parent


@functools.cache
def bpgenc_help(bpgenc: str) -> str:
    """What ``bpgenc -h`` prints (it exits with status 1), or "" when it cannot run."""
    try:
        run = subprocess.run([bpgenc, "-h"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return run.stdout + run.stderr


def bpgenc_version(bpgenc: str) -> str:
    """The version that ``bpgenc -h`` prints ("BPG Image Encoder version 0.9.8"), or "unknown"."""
    found = re.search(r"version\s+(\S+)", bpgenc_help(bpgenc))
    return found.group(1) if found else "unknown"


def bpgenc_encoders(bpgenc: str) -> tuple[str, ...] | None:
    """The HEVC encoders this ``bpgenc`` was built with ("x265", "jctvc"), from its help line
    ``-e encoder  select the HEVC encoder (x265 jctvc, default = x265)``; None when not listed."""
    found = re.search(r"select the HEVC encoder \(([^,)]*)", bpgenc_help(bpgenc))
    return tuple(found.group(1).split()) if found else None


class BPG(Codec):
    name = "bpg"
    description = (
        "BPG (libbpg bpgenc/bpgdec binaries), HEVC intra, YCbCr 4:4:4 by default (-o chroma=420), "
        "x265 encoder by default (-o encoder=jctvc), 8 bits; point = 51 - QP"
    )
    # QP 51 (the coarsest quantizer, the lowest rate) up to QP 22; point = 51 - QP keeps points
    # ordered by rate. Dense at low rates, and every QP of CompressAI's published BPG Kodak curve
    # (47, 42, 37, 32, 27, 22) is included so the sweep can be checked against it.
    points = (0, 2, 4, 6, 9, 11, 14, 16, 19, 24, 29)
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
        """Path of ``tool`` ("bpgenc" or "bpgdec"): codec option, then environment, then the
        running Python's folder, then PATH."""
        given, _ = self.configured_binary(tool)
        if given:
            return shutil.which(given)
        return shutil.which(tool, path=str(installed_dir())) or shutil.which(tool)

    def unavailable_reason(self) -> str | None:
        problems = []
        for tool in ENV_VARS:
            if self.binary(tool) is None:
                given, origin = self.configured_binary(tool)
                problems.append(f"{tool} {given!r} (from {origin}) is not an executable" if given
                                else f"{tool} not found in {installed_dir()} or on PATH")
        if problems:
            return f"{'; '.join(problems)}. To install: {INSTALL_HINT}"
        bpgenc = self.binary("bpgenc")
        encoder = choice_option(self, "encoder", ("x265", "jctvc"))
        offered = bpgenc_encoders(bpgenc)
        if offered is not None and encoder not in offered:
            return (f"{bpgenc} was built without the {encoder} encoder (it offers "
                    f"{', '.join(offered) or 'none'}): pass -o encoder={offered[0] if offered else 'x265'}, "
                    f"or rebuild both with 'bash scripts/build_bpg.sh'")
        return None

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
            command = self.encode_command(source, target, point)
            if self.config["encoder"] == "x265" and image.shape[1] < X265_MIN_WIDTH:
                raise CodecError(f"bpgenc's x265 encoder crashes on images narrower than {X265_MIN_WIDTH} px "
                                 f"(this one is {image.shape[1]} px wide): use -o encoder=jctvc")
            run = subprocess.run(command, capture_output=True, text=True)
            if run.returncode < 0:
                raise CodecError(f"bpgenc crashed (signal {-run.returncode}) on a "
                                 f"{image.shape[1]}x{image.shape[0]} image")
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
