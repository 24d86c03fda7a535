"""Finding pretrained metric weights: a local folder first, then the torch hub cache, then a download.

:func:`local_weights` only looks for the files (no hashing, no network, no torch: what a metric's
``unavailable_reason()`` and so ``codecbench list`` use); :func:`find_weights` is what a metric
loading its network uses. Every file it returns is checked against its sha256 (or, for torch hub
files, the hash prefix in their names, as torch hub itself checks them). A file that fails its
check is an error, never silently replaced. Downloads go through :func:`codecbench.files.download`
(atomic, hash-checked) into the torch hub cache, where the next run finds them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from codecbench.errors import MetricError
from codecbench.files import cached_sha256, download
from codecbench.metrics import weights_dir


@dataclass(frozen=True)
class WeightsFile:
    """One acceptable weights file: where it lives locally and, optionally, where to download it.

    ``sha256`` may be a prefix (torch hub files carry only 8 hex digits of it in their names).
    ``subdir`` is its folder under the weights directory (``--weights-dir``); ``url`` files are
    also looked up by name in the torch hub cache (``$TORCH_HOME/hub/checkpoints``).
    """

    filename: str
    subdir: str
    sha256: str
    url: str | None = None


def hub_checkpoints_dir() -> Path:
    """The torch hub cache folder that torchvision and torch-fidelity download into.

    ``torch.hub.get_dir()`` once torch is imported (it may have been moved with
    ``torch.hub.set_dir``); before, the folder torch would choose, by its documented rule
    (``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``), so that
    looking for weights does not import torch."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "hub"):
        return Path(torch.hub.get_dir()) / "checkpoints"
    home = os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints"


def verified(path: Path, expected_sha256: str) -> Path:
    """``path`` if its sha256 starts with ``expected_sha256``; ``MetricError`` otherwise."""
    actual = cached_sha256(path)
    if not actual.startswith(expected_sha256):
        raise MetricError(
            f"Checksum mismatch for {path}: sha256 {actual}, expected {expected_sha256}. "
            f"Replace the file with a correct copy."
        )
    return path


def local_candidates(files: list[WeightsFile]) -> list[tuple[Path, WeightsFile]]:
    """Where each file may already be: the weights directory, then the torch hub cache."""
    found = []
    root = weights_dir()
    for file in files:
        if root is not None:
            found.append((root / file.subdir / file.filename, file))
        if file.url:
            found.append((hub_checkpoints_dir() / file.filename, file))
    return found


def _missing(files: list[WeightsFile], tried: list[str]) -> str:
    """Why none of ``files`` is at hand: where to put one, and the downloads ``tried`` (or, with
    none tried, where one would come from)."""
    root = weights_dir()
    wanted = " or ".join(f"{root or 'WEIGHTS_DIR'}/{f.subdir}/{f.filename}" for f in files)
    where = "" if root else " (WEIGHTS_DIR: --weights-dir or $CODECBENCH_WEIGHTS)"
    urls = [f.url for f in files if f.url]
    if tried:
        then = f"; {'; '.join(tried)}"
    elif urls:
        then = f"; or let `codecbench run` download {urls[0]} on first use"
    else:
        then = ""
    return f"no weights found: provide {wanted}{where}{then}"


def local_weights(files: list[WeightsFile]) -> tuple[Path | None, str | None]:
    """The first of ``files`` already on disk (weights directory or torch hub cache), or why none.

    Only looks: nothing is hashed (:func:`find_weights` verifies the file before use), nothing is
    downloaded and torch is not imported. Returns ``(path, None)`` or ``(None, reason)``.
    """
    for path, _ in local_candidates(files):
        if path.is_file():
            return path, None
    return None, _missing(files, [])


def find_weights(files: list[WeightsFile]) -> tuple[Path | None, str | None]:
    """The first verified file among ``files`` (local, cached, else downloaded), or why none.

    Returns ``(path, None)`` on success and ``(None, reason)`` when nothing can be found or
    downloaded; a file that exists but fails its checksum raises ``MetricError``.
    """
    for path, file in local_candidates(files):
        if path.is_file():
            return verified(path, file.sha256), None
    errors = []
    for file in files:
        if file.url:
            dest = hub_checkpoints_dir() / file.filename
            try:
                download(file.url, dest, file.sha256)
            except Exception as exc:  # offline, proxy, HTTP error: reported as the reason
                errors.append(f"download of {file.url} failed ({type(exc).__name__}: {exc})")
                continue
            return verified(dest, file.sha256), None
    return None, _missing(files, errors)
