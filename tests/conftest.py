"""Shared fixtures: an isolated environment per test and the shared Kodak set when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codecbench.testing import synthetic_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
KODAK = SHARED / "datasets" / "kodak"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's cache, database or data folder."""
    monkeypatch.setenv("CODECBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CODECBENCH_DB", str(tmp_path / "results.sqlite"))
    monkeypatch.delenv("CODECBENCH_DATA", raising=False)
    monkeypatch.delenv("CODECBENCH_WEIGHTS", raising=False)


@pytest.fixture
def shared_datasets() -> Path:
    """``../shared/datasets`` (skips the test when the shared folder is absent)."""
    if not KODAK.is_dir():
        pytest.skip(f"shared Kodak set not found at {KODAK}")
    return SHARED / "datasets"


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """A folder of three small synthetic PNG images of different sizes (one odd)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i, (h, w) in enumerate([(64, 96), (48, 48), (33, 57)]):
        Image.fromarray(synthetic_image(h, w, seed=i)).save(folder / f"img{i}.png")
    return folder


def save(array: np.ndarray, path: Path, mode: str | None = None) -> Path:
    """Write an array as an image file (helper for tests)."""
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path
