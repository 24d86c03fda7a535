"""AE-OT's extended OT map: new latent codes between neighbouring cells, never across modes.

The plain OT map sends a source point to the one target of its cell, so it only reproduces
training codes. The extended map (An et al., ICLR 2020) takes, for a source point ``x``, the
``top_k`` cells by score ``<x, y_i> + h_i``: ``i1`` (the argmax, the cell ``x`` lies in) and its
runners-up ``i2..ik``, which are cells neighbouring ``x``. Each target ``y_i`` is the gradient of a
supporting plane of the Brenier potential with normal ``n_i = (y_i, -1) / |(y_i, -1)|``; if the
angle between ``n_i1`` and ``n_ij`` exceeds ``angle_threshold`` the potential has a sharp ridge
between the two cells: they sit on either side of the singular set (different modes), so the pair
is skipped. Each kept pair gives the code ``weight * y_i1 + (1 - weight) * y_ij`` (piecewise linear
in the cells' targets); repeated pairs are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from codecbench_otgan.ot import OTError, OTMap, UniformCubeSampler


@dataclass(frozen=True)
class GeneratedCodes:
    """Codes made by :meth:`ExtendedOTMap.generate`, the cell pairs behind them, and the share of
    candidate pairs the singular-set test kept."""

    codes: torch.Tensor
    pairs: torch.Tensor
    kept_share: float


class ExtendedOTMap:
    """Generation with a fitted :class:`~codecbench_otgan.ot.OTMap` (defaults: AE-OT's reference)."""

    def __init__(self, ot_map: OTMap, top_k: int = 20, angle_threshold: float = 0.7,
                 weight: float = 0.75) -> None:
        if top_k < 2:
            raise OTError(f"top_k must be at least 2 (the cell and one neighbour), got {top_k}")
        if not 0.0 <= weight <= 1.0:
            raise OTError(f"weight must lie in [0, 1], got {weight}")
        if not angle_threshold > 0:
            raise OTError(f"angle_threshold must be positive (radians), got {angle_threshold}")
        self.ot_map, self.angle_threshold, self.weight = ot_map, angle_threshold, weight
        self.top_k = min(top_k, ot_map.targets.shape[0])
        targets = ot_map.targets
        planes = torch.cat([targets, -torch.ones_like(targets[:, :1])], dim=1)
        self.normals = planes / planes.norm(dim=1, keepdim=True)

    def top_cells(self, x: torch.Tensor) -> torch.Tensor:
        """``len(x) x top_k`` cell indices by decreasing score (column 0: the cell containing x)."""
        targets, h = self.ot_map.targets, self.ot_map.h
        x = x.to(targets.device, targets.dtype)
        chunk = self.ot_map.config.target_chunk
        best_values = best_index = None
        for start in range(0, targets.shape[0], chunk):
            scores = torch.addmm(h[start:start + chunk], x, targets[start:start + chunk].T)
            values, index = scores.topk(min(self.top_k, scores.shape[1]), dim=1)
            index += start
            if best_values is not None:
                values, order = torch.cat([best_values, values], 1).topk(self.top_k, dim=1)
                index = torch.cat([best_index, index], 1).gather(1, order)
            best_values, best_index = values, index
        return best_index

    def pair_angles(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Angles (radians) between the supporting planes of the cells ``first[i]``, ``second[i]``."""
        cosine = (self.normals[first] * self.normals[second]).sum(dim=1)
        return torch.arccos(cosine.clamp(-1.0, 1.0))

    def generate(self, x: torch.Tensor) -> GeneratedCodes:
        """New codes from source points ``x`` (rows in the unit cube)."""
        cells = self.top_cells(x)
        first = cells[:, :1].expand(-1, cells.shape[1] - 1).reshape(-1)
        second = cells[:, 1:].reshape(-1)
        keep = self.pair_angles(first, second) < self.angle_threshold
        pairs = torch.unique(torch.stack([first[keep], second[keep]], dim=1), dim=0)
        targets = self.ot_map.targets
        codes = self.weight * targets[pairs[:, 0]] + (1 - self.weight) * targets[pairs[:, 1]]
        return GeneratedCodes(codes, pairs, float(keep.double().mean()) if keep.numel() else 0.0)

    def sample_pool(self, samples: int, seed: int = 0, source: str = "normal-cdf") -> GeneratedCodes:
        """Codes generated from ``samples`` fresh source points (normal CDF of N(0, I) by default)."""
        targets = self.ot_map.targets
        sampler = UniformCubeSampler(targets.shape[1], source, seed, targets.device, targets.dtype)
        generated = self.generate(sampler.draw(samples))
        if generated.codes.shape[0] == 0:
            raise OTError(
                f"The extended OT map kept no pair of neighbouring cells out of {samples} samples "
                f"(angle threshold {self.angle_threshold} rad): raise the threshold for these latents")
        return generated
