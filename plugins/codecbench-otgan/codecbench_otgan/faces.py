"""``faces-test``: the held-out faces of the paper's mode-collapse experiment.

MTFL's AFLW test split (2,995 faces), which the face models never see in training (they train on
CelebA and MTFL's lfw_5590). It is read from ``<data-dir>/faces/mtfl/AFLW`` (``--data-dir`` or
``$CODECBENCH_DATA``); there is no download: the MTFL archive is not served from a stable URL.
"""

from __future__ import annotations

from pathlib import Path

from codecbench import Dataset, DatasetError, FolderDataset, ImageRef, default_data_dir

RELATIVE = Path("faces") / "mtfl" / "AFLW"


class FacesTestDataset(Dataset):
    name = "faces-test"
    description = "Held-out faces: MTFL's AFLW test split, for the OT+GAN face models"
    domain = "faces"  # the kind of images (Codec.domain); `codecbench compare --all` reads it

    def location_hint(self) -> str:
        return f"<data-dir>/{RELATIVE.as_posix()}"

    def images(self, data_dir: Path | None = None, download: bool = True) -> list[ImageRef]:
        roots = [r for r in (data_dir, default_data_dir()) if r is not None]
        for root in roots:
            if (root / RELATIVE).is_dir():
                return FolderDataset(root / RELATIVE).images()
        searched = ", ".join(str(r / RELATIVE) for r in roots) or "nothing (no data folder given)"
        raise DatasetError(f"faces-test not found (searched {searched}); pass --data-dir DIR with "
                           f"the MTFL AFLW faces in DIR/{RELATIVE.as_posix()}")
