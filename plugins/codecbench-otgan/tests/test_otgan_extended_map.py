"""The extended OT map: top-k neighbours, the singular-set angle test, interpolation, dedupe."""

from __future__ import annotations

import math

import pytest
import torch

from codecbench_otgan.extended_map import ExtendedOTMap
from codecbench_otgan.ot import OTConfig, OTError, OTMap, SemiDiscreteOTSolver, UniformCubeSampler


def two_clusters() -> torch.Tensor:
    """Ten points near (0, 0) and ten near (3, 3): two well-separated modes."""
    generator = torch.Generator().manual_seed(0)
    near = 0.2 * torch.randn(10, 2, generator=generator, dtype=torch.float64)
    return torch.cat([near, near.flip(0) + 3.0])


def fitted(targets: torch.Tensor) -> OTMap:
    config = OTConfig(samples=20_000, max_samples=80_000, batch_size=5000, rel_tol=0.2, max_steps=400,
                      dtype="float64")
    return SemiDiscreteOTSolver(targets, config).run()


def cube(n: int, dim: int = 2) -> torch.Tensor:
    return UniformCubeSampler(dim, "normal-cdf", 5, torch.device("cpu"), torch.float64).draw(n)


def test_top_cells_are_the_highest_scores_in_order() -> None:
    targets = torch.rand(50, 3, dtype=torch.float64)
    ot_map = OTMap(targets, torch.rand(50, dtype=torch.float64), OTConfig(target_chunk=7))
    x = torch.rand(30, 3, dtype=torch.float64)
    expected = (x @ targets.T + ot_map.h).topk(5, dim=1).indices
    assert torch.equal(ExtendedOTMap(ot_map, top_k=5).top_cells(x), expected)
    assert torch.equal(ExtendedOTMap(ot_map, top_k=5).top_cells(x)[:, 0], ot_map.cells(x))


def test_pair_angle_is_the_angle_between_supporting_planes() -> None:
    targets = torch.tensor([[0.0], [1.0]], dtype=torch.float64)  # normals (0,-1) and (1,-1)/sqrt 2
    extended = ExtendedOTMap(OTMap(targets, torch.zeros(2, dtype=torch.float64)))
    angle = extended.pair_angles(torch.tensor([0]), torch.tensor([1]))
    assert float(angle) == pytest.approx(math.pi / 4)


def test_generated_codes_never_mix_two_separated_clusters() -> None:
    targets = two_clusters()
    extended = ExtendedOTMap(fitted(targets), top_k=20, angle_threshold=0.7)
    generated = extended.generate(cube(4000))
    codes = generated.codes
    assert len(codes) > 20
    in_first = codes.abs().max(dim=1).values < 0.8
    in_second = (codes - 3.0).abs().max(dim=1).values < 0.8
    assert bool((in_first | in_second).all()), "a generated code lies between the two modes"
    assert in_first.any() and in_second.any()
    assert 0 < generated.kept_share < 1
    # Without the singular-set test the same map does interpolate across the modes.
    mixed = ExtendedOTMap(extended.ot_map, top_k=20, angle_threshold=math.pi).generate(cube(4000)).codes
    assert bool(((mixed - 1.5).abs().max(dim=1).values < 1.0).any())


def test_codes_interpolate_the_pair_with_the_given_weight_and_are_unique() -> None:
    targets = two_clusters()[:10]
    extended = ExtendedOTMap(fitted(targets), top_k=4, weight=0.75, angle_threshold=math.pi)
    generated = extended.generate(cube(3000))
    first, second = generated.pairs[:, 0], generated.pairs[:, 1]
    assert torch.allclose(generated.codes, 0.75 * targets[first] + 0.25 * targets[second])
    assert len(torch.unique(generated.pairs, dim=0)) == len(generated.pairs)
    assert bool((first != second).all())


def test_settings_and_empty_pools_are_refused() -> None:
    ot_map = OTMap(two_clusters(), torch.zeros(20, dtype=torch.float64))
    with pytest.raises(OTError, match="top_k"):
        ExtendedOTMap(ot_map, top_k=1)
    with pytest.raises(OTError, match="weight"):
        ExtendedOTMap(ot_map, weight=1.5)
    with pytest.raises(OTError, match="raise the threshold"):
        ExtendedOTMap(ot_map, angle_threshold=1e-9).sample_pool(100)
