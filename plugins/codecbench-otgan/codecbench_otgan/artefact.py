"""The fitted OT map as a file: targets, heights, settings, the latent shape and the diagnostics.

Written by ``codecbench fit-ot`` as ``ot_map.pt`` (``torch.save`` of tensors and plain values,
loaded with ``weights_only=True``) and read by the ``ot_gan`` training task.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from codecbench_otgan.ot import OTConfig, OTError, OTMap, StepDiagnostics

MAP_FORMAT = "codecbench.otgan.map/1"


def map_payload(ot_map: OTMap, latent_shape: tuple[int, ...], history: list[StepDiagnostics],
                converged: bool, **info: Any) -> dict[str, Any]:
    """The dict an OT map file holds."""
    return {"format": MAP_FORMAT, "targets": ot_map.targets.detach().cpu().float(),
            "h": ot_map.h.detach().cpu().double(), "config": asdict(ot_map.config),
            "latent_shape": list(latent_shape), "history": [asdict(d) for d in history],
            "converged": converged, **info}


def load_map(path: Path, device: torch.device | str = "cpu") -> tuple[OTMap, tuple[int, ...], dict[str, Any]]:
    """The map in ``path``, the shape of one latent code (``C x h x w``) and the whole payload."""
    path = Path(path)
    if not path.is_file():
        raise OTError(f"OT map file {path} not found; make one with `codecbench fit-ot`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise OTError(f"Cannot load OT map {path}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != MAP_FORMAT:
        raise OTError(f"{path} is not an OT map written by `codecbench fit-ot`")
    config = OTConfig.from_dict(payload["config"])
    dtype = torch.float64 if config.dtype == "float64" else torch.float32
    ot_map = OTMap(payload["targets"].to(device, dtype), payload["h"].to(device, dtype), config)
    return ot_map, tuple(int(d) for d in payload["latent_shape"]), payload
