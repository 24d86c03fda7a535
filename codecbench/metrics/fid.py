"""FID and KID between reconstructions and originals, on 256x256 patches as HiFiC computes them.

A dataset-level metric (``kind = "set"``). Full-resolution images are cut into 256x256 patches on
a non-overlapping grid plus a second grid shifted by 128 px in both directions (Mentzer et al.
2020, HiFiC), and Inception pool features (2048-d) of the reconstructions' patches are compared
with those of the originals' patches. Few images give few patches (Kodak: 24 images of 768x512
give 192 patches; images smaller than 256 px count whole, one patch each), and FID on so few
samples is noisy and biased upwards, as HiFiC notes: compare codecs on the same dataset only.

Feature extractor, in order: torch-fidelity's own Inception weights when found (weights directory
``fid/`` or the torch hub cache), else a local TorchScript Inception
``<weights-dir>/fid/inception-2015-12-05-torchscript.pt``, else a hash-checked download of
torch-fidelity's weights, tried by :meth:`FIDMetric.load` (``codecbench run``) only: availability
(what ``codecbench list`` shows) only looks for the files. Statistics are computed with
torch-fidelity's own FID and KID functions from the features; ``torch_fidelity.calculate_metrics``
is not used because it wants image datasets and a registered extractor class, while the patches
and the TorchScript extractor live here.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from codecbench.errors import MetricError
from codecbench.hookspecs import hookimpl
from codecbench.metrics import Column, Metric, check_pair, progress_shown, weights_dir
from codecbench.metrics.weights import WeightsFile, find_weights, local_weights

FID = "fid"
KID = "kid"
PATCH = 256
BATCH = 16
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
TORCH_FIDELITY_WEIGHTS = WeightsFile(
    "weights-inception-2015-12-05-6726825d.pth", "fid", "6726825d",
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth",
)
TORCHSCRIPT_WEIGHTS = WeightsFile(
    "inception-2015-12-05-torchscript.pt", "fid",
    "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
)


def patches(image: np.ndarray, size: int = PATCH) -> list[np.ndarray]:
    """``size`` x ``size`` crops on a non-overlapping grid, then on the grid shifted by ``size/2``.

    An image smaller than ``size`` on either side (e.g. an 80x80 face) is one patch, whole, as
    in the usual FID on small images: the extractor resizes every patch to 299x299.
    """
    height, width = image.shape[:2]
    if height < size or width < size:
        return [image]
    crops = []
    for offset in (0, size // 2):
        for y in range(offset, height - size + 1, size):
            for x in range(offset, width - size + 1, size):
                crops.append(image[y:y + size, x:x + size])
    return crops


def patch_count(height: int, width: int, size: int = PATCH) -> int:
    """How many patches :func:`patches` cuts from a ``height`` x ``width`` image."""
    if height < size or width < size:
        return 1
    return sum(len(range(o, height - size + 1, size)) * len(range(o, width - size + 1, size))
               for o in (0, size // 2))


class InceptionFeatures:
    """2048-d Inception pool features of ``uint8`` patches, from one weights file."""

    def __init__(self, path: Path):
        import torch

        self.path = path
        with warnings.catch_warnings():  # torch.jit.load deprecation notice
            warnings.simplefilter("ignore", FutureWarning)
            if path.name == TORCHSCRIPT_WEIGHTS.filename:
                self.net = torch.jit.load(str(path), map_location="cpu").eval()
                self.torchscript = True
            else:
                from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

                self.net = FeatureExtractorInceptionV3(
                    "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)
                )
                self.torchscript = False

    def __call__(self, batch: np.ndarray) -> "torch.Tensor":  # noqa: F821
        """Features of an ``N x H x W x 3`` ``uint8`` batch as an ``N x 2048`` float tensor."""
        import torch
        from torch_fidelity.interpolate_compat_tensorflow import (
            interpolate_bilinear_2d_like_tensorflow1x,
        )

        x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2)
        with torch.no_grad():
            if not self.torchscript:
                return self.net(x)[0].double()
            # The same preprocessing as torch-fidelity's extractor: TF1-compatible bilinear resize
            # to 299 and (x - 128) / 128, the input range [-1, 0.9921875] the TorchScript expects.
            x = interpolate_bilinear_2d_like_tensorflow1x(
                x.float(), size=(299, 299), align_corners=False
            )
            return self.net((x - 128) / 128).double()


def _batches(crops: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Stacks of up to ``size`` consecutive crops of one shape (a new shape starts a new stack)."""
    batch: list[np.ndarray] = []
    for crop in crops:
        if batch and (len(batch) == size or crop.shape != batch[0].shape):
            yield np.stack(batch)
            batch = []
        batch.append(crop)
    if batch:
        yield np.stack(batch)


Pair = tuple[np.ndarray, np.ndarray]


def _chunks(pairs: Iterable[Pair], size: int) -> Iterator[list[Pair]]:
    """Lists of ``size`` consecutive pairs (the last one shorter)."""
    chunk: list[Pair] = []
    for pair in pairs:
        chunk.append(pair)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class FIDMetric(Metric):
    name = FID
    description = (
        "FID and KID (torch-fidelity statistics, Inception pool3) on 256x256 patches, "
        "reconstructions vs originals, HiFiC style; lower is better"
    )
    kind = "set"
    # Plotted, not BD-rated: a set-level value per point is too noisy for a fitted curve.
    columns = {FID: Column("FID", higher_is_better=False, bd=False),
               KID: Column("KID", higher_is_better=False, bd=False)}

    def __init__(self) -> None:
        self._extractors: dict[str, tuple[InceptionFeatures | None, str | None]] = {}
        self._reference: dict[tuple[Path, str], "torch.Tensor"] = {}  # noqa: F821

    def version(self) -> str:
        return f"torch-fidelity-{metadata.version('torch-fidelity')}/patch{PATCH}"

    def extractor(self) -> InceptionFeatures:
        """The Inception feature extractor, or ``MetricError`` naming the weights to provide."""
        key = str(weights_dir())
        if key not in self._extractors:
            path, reason = find_weights([TORCH_FIDELITY_WEIGHTS, TORCHSCRIPT_WEIGHTS])
            self._extractors[key] = (InceptionFeatures(path), None) if path else (None, reason)
        extractor, reason = self._extractors[key]
        if extractor is None:
            raise MetricError(f"FID/KID unavailable: {reason}")
        return extractor

    def note(self, sizes: Sequence[tuple[int, int]]) -> str:
        """How many patches the images of ``sizes`` give, and what that means for the values."""
        if not sizes:
            return ""
        n = sum(patch_count(height, width) for height, width in sizes)
        if all(height < PATCH or width < PATCH for height, width in sizes):
            how = (f"one sample per whole image (each smaller than {PATCH}x{PATCH}, resized to "
                   f"299x299 by the network): {n} samples")
        else:
            how = (f"on {PATCH}x{PATCH} patches (a grid plus one shifted by {PATCH // 2} px, as HiFiC "
                   f"does; an image smaller than that counts whole): {n} patches from {len(sizes)} images")
        return (f"FID/KID compare Inception features of the reconstructions with those of the "
                f"originals, {how}. FID and KID on few samples are noisy and biased upwards; "
                "compare codecs on the same dataset only.")

    def unavailable_reason(self) -> str | None:
        path, reason = local_weights([TORCH_FIDELITY_WEIGHTS, TORCHSCRIPT_WEIGHTS])
        return None if path else f"FID/KID unavailable: {reason}"

    def load(self) -> None:
        self.extractor()

    def features(self, crops: list[np.ndarray]) -> "torch.Tensor":  # noqa: F821
        """Inception features of a list of ``uint8`` patches."""
        import torch

        extractor = self.extractor()
        if not crops:
            return torch.zeros((0, 2048), dtype=torch.float64)
        return torch.cat([extractor(batch) for batch in _batches(crops, BATCH)])

    def _reference_features(self, originals: list[np.ndarray]) -> list["torch.Tensor"]:  # noqa: F821
        """Features of each original's patches; computed once per original (the same for every
        codec and point), the uncached ones in shared batches."""
        path = self.extractor().path
        keys = [(path, hashlib.sha1(o.tobytes()).hexdigest() + str(o.shape)) for o in originals]
        missing = {key: original for key, original in zip(keys, originals) if key not in self._reference}
        crops = [patches(original) for original in missing.values()]
        features = self.features([crop for group in crops for crop in group])
        for key, part in zip(missing, features.split([len(group) for group in crops])):
            self._reference[key] = part
        return [self._reference[key] for key in keys]

    def compute_set(self, pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
        import torch
        from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
        from torch_fidelity.metric_kid import kid_features_to_metric

        real, fake = [], []
        # Images are taken BATCH at a time so that small ones (one patch each) share batches.
        progress = tqdm(pairs, desc="fid", unit="img", leave=False, file=sys.stderr,
                        disable=not progress_shown())
        for chunk in _chunks(progress, BATCH):
            for original, reconstruction in chunk:
                check_pair(original, reconstruction)
            real.extend(self._reference_features([original for original, _ in chunk]))
            fake.append(self.features([crop for _, reconstruction in chunk for crop in patches(reconstruction)]))
        real_features, fake_features = torch.cat(real), torch.cat(fake)
        n = len(real_features)
        if n < 2:
            raise MetricError(
                f"FID/KID need at least 2 patches ({PATCH}x{PATCH} crops, or whole images smaller "
                f"than that), got {n}: use more images"
            )
        fid = fid_statistics_to_metric(
            fid_features_to_statistics(real_features), fid_features_to_statistics(fake_features),
            verbose=False,
        )["frechet_inception_distance"]
        kid = kid_features_to_metric(
            real_features, fake_features, kid_subsets=KID_SUBSETS,
            kid_subset_size=min(KID_SUBSET_SIZE, n), verbose=False,
        )["kernel_inception_distance_mean"]
        return {FID: float(fid), KID: float(kid)}


@hookimpl
def register_metrics(register: Callable[[Metric], None]) -> None:
    register(FIDMetric())
