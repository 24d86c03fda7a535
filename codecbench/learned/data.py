"""Training data: random crops from a folder of images, as a pure function of (seed, step).

Every batch is drawn from a generator seeded with ``(seed, step)``, so the data pipeline has no
state to save: a resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from codecbench.dataset import IMAGE_SUFFIXES
from codecbench.errors import DatasetError
from codecbench.image import read_image
from codecbench.learned.padding import image_to_tensor


def list_images(folders: Path | Sequence[Path]) -> list[Path]:
    """Image files directly in ``folders`` (one folder or several), sorted per folder.

    Raises ``DatasetError`` when a folder is missing or holds no images.
    """
    paths = []
    for folder in [folders] if isinstance(folders, (str, Path)) else folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise DatasetError(f"Training folder {folder} does not exist or is not a folder")
        found = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not found:
            raise DatasetError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        paths.extend(found)
    return paths


def split_holdout(paths: list[Path], count: int) -> tuple[list[Path], list[Path]]:
    """``(train, held_out)``: ``count`` images chosen by a hash of their names (stable across runs)."""
    if count <= 0:
        return list(paths), []
    if count >= len(paths):
        raise DatasetError(f"Cannot hold out {count} of {len(paths)} images for validation; "
                           "pass --val DIR or a smaller --val-count")
    ranked = sorted(paths, key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
    held = set(ranked[:count])
    return [p for p in paths if p not in held], [p for p in paths if p in held]


class RandomCrops:
    """Random ``crop x crop`` patches of the images in ``paths`` (decoded once, kept in memory)."""

    def __init__(self, paths: list[Path], crop: int, seed: int = 0) -> None:
        if not paths:
            raise DatasetError("No training images")
        self.paths, self.crop, self.seed = list(paths), crop, seed
        self._cache: dict[int, np.ndarray] = {}

    def image(self, index: int) -> np.ndarray:
        if index not in self._cache:
            image = read_image(self.paths[index])
            h, w = image.shape[:2]
            if h < self.crop or w < self.crop:  # too small: repeat the edge pixels up to one crop
                image = np.pad(image, ((0, max(0, self.crop - h)), (0, max(0, self.crop - w)), (0, 0)),
                               mode="edge")
            self._cache[index] = image
        return self._cache[index]

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        """The ``batch_size x 3 x crop x crop`` float batch of training step ``step``."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        indices = torch.randint(len(self.paths), (batch_size,), generator=generator).tolist()
        patches = []
        for index in indices:
            image = self.image(index)
            h, w = image.shape[:2]
            top = int(torch.randint(h - self.crop + 1, (1,), generator=generator))
            left = int(torch.randint(w - self.crop + 1, (1,), generator=generator))
            patches.append(image[top : top + self.crop, left : left + self.crop])
        # contiguous(): a permuted batch stays channels-last, which crashed conv backward on CPU.
        return torch.from_numpy(np.stack(patches)).permute(0, 3, 1, 2).float().div(255.0).contiguous()


def center_crops(paths: list[Path], crop: int) -> list[torch.Tensor]:
    """A centred ``crop x crop`` patch of each image (smaller images whole), for validation."""
    out = []
    for path in paths:
        image = read_image(path)
        h, w = image.shape[:2]
        top, left = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        out.append(image_to_tensor(image[top : top + crop, left : left + crop]))
    return out
