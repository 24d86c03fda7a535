"""Fixtures for the classical codec tests: one Kodak image when the shared folder is present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codecbench.image import read_image

KODAK = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "kodak"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's cache or results database."""
    monkeypatch.setenv("CODECBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CODECBENCH_DB", str(tmp_path / "results.sqlite"))


@pytest.fixture(scope="session")
def kodak_image() -> np.ndarray:
    """``kodim23.png`` from ``../shared`` (skips the test when the shared folder is absent)."""
    path = KODAK / "kodim23.png"
    if not path.is_file():
        pytest.skip(f"shared Kodak set not found at {KODAK}")
    return read_image(path)
