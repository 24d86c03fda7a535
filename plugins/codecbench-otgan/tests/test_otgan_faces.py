"""The faces-test dataset: the AFLW split under the data folder, or a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from codecbench.errors import DatasetError
from codecbench_otgan.faces import FacesTestDataset

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets"


def test_missing_folder_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODECBENCH_DATA", raising=False)
    with pytest.raises(DatasetError, match="--data-dir"):
        FacesTestDataset().images(tmp_path)


@pytest.mark.skipif(not (SHARED / "faces" / "mtfl" / "AFLW").is_dir(), reason="shared faces absent")
def test_lists_the_aflw_faces() -> None:
    images = FacesTestDataset().images(SHARED)
    assert len(images) > 100 and all(ref.path.suffix == ".jpg" for ref in images)
