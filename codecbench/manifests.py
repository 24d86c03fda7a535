"""Built-in plugin: registers one dataset per manifest in the top-level ``datasets/`` folder."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Callable

from codecbench.dataset import Dataset, ManifestDataset
from codecbench.hookspecs import hookimpl


def manifest_dir() -> Path:
    """The folder of dataset manifests.

    A wheel carries them as ``codecbench/manifests_data`` (see pyproject's force-include); an
    editable install from a checkout reads the top-level ``datasets/`` folder directly.
    """
    packaged = Path(str(resources.files("codecbench"))) / "manifests_data"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "datasets"


def load_manifests(folder: Path | None = None) -> list[ManifestDataset]:
    """Every ``*.toml`` manifest of ``folder`` (default :func:`manifest_dir`), sorted by name."""
    folder = folder or manifest_dir()
    return [ManifestDataset.from_toml(p) for p in sorted(folder.glob("*.toml"))]


@hookimpl
def register_datasets(register: Callable[[Dataset], None]) -> None:
    for dataset in load_manifests():
        register(dataset)
