"""The semi-discrete OT solver on small cases with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from codecbench_otgan.ot import (OTConfig, OTError, OTMap, SemiDiscreteOTSolver, UniformCubeSampler, cell_counts,
                                 verify_map)


def test_two_targets_on_a_line_split_the_segment_at_its_middle() -> None:
    # Targets 0 and 1 in 1-D: cell 0 is {x : h0 > x + h1}, so equal measures need h0 - h1 = 1/2.
    targets = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    config = OTConfig(samples=40_000, batch_size=10_000, rel_tol=0.01, max_steps=2000, source="sobol",
                      dtype="float64", lr=2e-2)
    solver = SemiDiscreteOTSolver(targets, config)
    ot_map = solver.run()
    assert float(ot_map.h[0] - ot_map.h[1]) == pytest.approx(0.5, abs=0.01)
    check = verify_map(ot_map, solver.nu, 100_000, seed=5)
    assert check.samples == 100_000 and check.max_rel_error < 0.05 and check.empty_share == 0


def test_verification_sees_an_unfitted_map() -> None:
    # h = 0: x * 1 > x * 0 for every x > 0, so the whole segment is cell 1 and cell 0 is empty.
    ot_map = OTMap(torch.tensor([[0.0], [1.0]]), torch.zeros(2))
    check = verify_map(ot_map, torch.tensor([0.5, 0.5]), 10_000, seed=0)
    assert check.max_rel_error == pytest.approx(1.0) and check.empty_share == 0.5


def test_cell_measures_converge_to_the_targets() -> None:
    torch.manual_seed(0)
    targets = torch.rand(12, 3)
    config = OTConfig(samples=30_000, batch_size=10_000, rel_tol=0.08, max_steps=3000, seed=1)
    solver = SemiDiscreteOTSolver(targets, config)
    ot_map = solver.run()
    assert solver.converged
    assert solver.history[0].max_rel_error > solver.history[-1].max_rel_error
    # Checked on fresh samples the solver never saw: every cell holds about 1/12 of the cube.
    x = UniformCubeSampler(3, "normal-cdf", seed=99, device=torch.device("cpu"), dtype=torch.float32).draw(200_000)
    measures = cell_counts(x, ot_map.targets, ot_map.h, sample_chunk=20_000, target_chunk=5).double() / len(x)
    assert (measures * 12 - 1).abs().max() < 0.15


def test_resume_continues_exactly() -> None:
    targets = torch.rand(6, 2, generator=torch.Generator().manual_seed(3))
    config = OTConfig(samples=2000, batch_size=500, rel_tol=1e-9, max_steps=20, patience=3, stall_lr_factor=0.5)
    straight = SemiDiscreteOTSolver(targets, config)
    straight.run()
    first = SemiDiscreteOTSolver(targets, config)
    first.run(max_steps=8)
    resumed = SemiDiscreteOTSolver(targets, config)
    resumed.load_state_dict(first.state_dict())
    resumed.run()
    assert torch.equal(straight.h, resumed.h)
    assert straight.samples == resumed.samples
    assert straight.optimizer.param_groups[0]["lr"] == resumed.optimizer.param_groups[0]["lr"]
    assert [d.energy for d in straight.history] == [d.energy for d in resumed.history]


def test_stalls_double_the_samples_and_scale_the_learning_rate() -> None:
    targets = torch.rand(6, 2, generator=torch.Generator().manual_seed(3))
    config = OTConfig(samples=1000, max_samples=4000, batch_size=500, rel_tol=1e-9, max_steps=40, patience=1,
                      stall_lr_factor=0.5, lr=0.1)
    solver = SemiDiscreteOTSolver(targets, config)
    solver.run()
    stalls = round(math.log2(0.1 / solver.optimizer.param_groups[0]["lr"]))
    assert stalls >= 3 and solver.samples == 4000  # doubling stops at max_samples, the decay does not
    with pytest.raises(OTError, match="stall_lr_factor"):
        OTConfig(stall_lr_factor=0)


def test_bad_targets_and_settings_are_refused() -> None:
    with pytest.raises(OTError, match="N x d"):
        SemiDiscreteOTSolver(torch.zeros(5))
    with pytest.raises(OTError, match="NaN"):
        SemiDiscreteOTSolver(torch.tensor([[0.0], [float("nan")]]))
    with pytest.raises(OTError, match="source"):
        OTConfig(source="gaussian")
    with pytest.raises(OTError, match="tolerance"):
        OTConfig(rel_tol=None)
