"""Semi-discrete optimal transport from a uniform cube to a point cloud: AE-OT's solver.

The source mu is uniform on the unit cube ``[0, 1]^d``; the target nu puts mass ``nu_i`` (``1/N``
unless weighted) on each of ``N`` points ``y_i`` (latent codes). The Brenier potential
``u_h(x) = max_i <x, y_i> + h_i`` splits
the cube into cells ``W_i(h)``; the OT map sends ``W_i`` to ``y_i``. The convex energy
``E(h) = int u_h dmu - sum_i nu_i h_i`` has gradient ``mu(W_i(h)) - nu_i``, estimated here by Monte
Carlo (chunked matrix products and an argmax over targets) and minimised with Adam
(An et al., "AE-OT", ICLR 2020).

Hand-written because no maintained library implements this solver: POT and GeomLoss solve discrete
or entropy-regularised problems, and AE-OT's Monte Carlo Adam solver (with the extended map of
:mod:`codecbench_otgan.extended_map`) exists only as the authors' non-commercial research code,
which this module does not copy: it is written from the published method.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.quasirandom import SobolEngine

from codecbench import CodecbenchError

SOURCES = ("normal-cdf", "sobol")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class OTError(CodecbenchError):
    """Bad targets, configuration or saved state for the OT solver."""


@dataclass(frozen=True)
class OTConfig:
    """Solver settings; the defaults are AE-OT's reference values where it has one."""

    lr: float = 5e-2
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    samples: int = 20_000
    """Monte Carlo samples per step at the start (the reference: 20 batches of 1000)."""
    max_samples: int = 2**24
    """Adaptive doubling stops at this many samples per step."""
    patience: int = 30
    """Double the samples when ||g|| has not improved for this many steps."""
    stall_lr_factor: float = 1.0
    """Also multiply Adam's learning rate by this at each such stall (1: AE-OT's constant rate).
    Below 1 it damps the oscillation of ``h`` that a constant rate keeps up near the optimum."""
    batch_size: int = 1000
    """Samples drawn and assigned at once; with target_chunk it bounds memory."""
    target_chunk: int = 32_768
    """Targets per matrix product: at most batch_size x target_chunk scores live at once."""
    rel_tol: float | None = 0.1
    """Stop when every cell's measure is within this fraction of its target: max_i |g_i| N."""
    grad_tol: float | None = None
    """Also stop when ||g||_2 falls below this (the reference stops at 2e-3)."""
    max_steps: int = 20_000
    source: str = "normal-cdf"
    """``normal-cdf``: N(0, I) samples through the elementwise normal CDF (the seed paper);
    ``sobol``: a scrambled Sobol sequence on the cube (the AE-OT reference)."""
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise OTError(f"Unknown source {self.source!r}; expected one of {', '.join(SOURCES)}")
        if self.dtype not in DTYPES:
            raise OTError(f"Unknown dtype {self.dtype!r}; expected one of {', '.join(DTYPES)}")
        for name in ("samples", "max_samples", "patience", "batch_size", "target_chunk", "max_steps"):
            if getattr(self, name) < 1:
                raise OTError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_samples < self.samples:
            raise OTError(f"max_samples ({self.max_samples}) is below samples ({self.samples})")
        if not self.lr > 0:
            raise OTError(f"lr must be positive, got {self.lr}")
        if not 0 < self.stall_lr_factor <= 1:
            raise OTError(f"stall_lr_factor must be in (0, 1], got {self.stall_lr_factor}")
        if self.rel_tol is None and self.grad_tol is None:
            raise OTError("Set rel_tol or grad_tol (or both): the solver needs a stopping tolerance")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> OTConfig:
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise OTError(f"Unknown OT settings {sorted(unknown)}")
        return cls(**values)


class UniformCubeSampler:
    """Draws from the uniform measure on ``[0, 1]^d``, reproducibly and resumably."""

    def __init__(self, dim: int, source: str, seed: int, device: torch.device, dtype: torch.dtype):
        self.dim, self.source, self.seed, self.device, self.dtype = dim, source, seed, device, dtype
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self.sobol = SobolEngine(dim, scramble=True, seed=seed) if source == "sobol" else None

    def draw(self, n: int) -> torch.Tensor:
        """``n x dim`` points of the cube."""
        if self.sobol is not None:
            return self.sobol.draw(n, dtype=torch.float64).to(self.device, self.dtype)
        z = torch.randn(n, self.dim, generator=self.generator, device=self.device, dtype=self.dtype)
        return torch.special.ndtr(z)

    def state_dict(self) -> dict[str, Any]:
        if self.sobol is not None:
            return {"sobol_drawn": int(self.sobol.num_generated)}
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.sobol is not None:
            self.sobol = SobolEngine(self.dim, scramble=True, seed=self.seed)
            self.sobol.fast_forward(state["sobol_drawn"])
        else:
            self.generator.set_state(state["generator"])


def check_targets(targets: torch.Tensor) -> None:
    """Raise :class:`OTError` unless ``targets`` is a finite ``N x d`` array with ``N >= 2``."""
    if targets.ndim != 2:
        raise OTError(f"Targets must be an N x d array of latent codes, got shape {tuple(targets.shape)}")
    if targets.shape[0] < 2 or targets.shape[1] < 1:
        raise OTError(f"Need at least 2 targets of dimension >= 1, got shape {tuple(targets.shape)}")
    if not torch.isfinite(targets).all():
        raise OTError("Targets contain NaN or infinite values; clean the latent codes first")


def check_weights(weights: torch.Tensor | None, count: int) -> torch.Tensor:
    """The target measure ``nu`` (float64, summing to 1): uniform when ``weights`` is ``None``.

    Repeated latent codes must be merged into one target of larger weight: two equal targets
    share one cell, which the solver could never split between them.
    """
    if weights is None:
        return torch.full((count,), 1.0 / count, dtype=torch.float64)
    weights = weights.detach().to(torch.float64).flatten()
    if weights.shape[0] != count or not bool((weights > 0).all()) or not torch.isfinite(weights).all():
        raise OTError(f"Target weights must be {count} positive finite numbers")
    return weights / weights.sum()


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)


def assign_cells(x: torch.Tensor, targets: torch.Tensor, h: torch.Tensor,
                 target_chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``max_i <x, y_i> + h_i`` and its argmax (lowest index on ties) for each row of ``x``.

    Targets are processed ``target_chunk`` at a time, so memory is ``len(x) x target_chunk``.
    """
    best_value = best_index = None
    for start, stop in _chunks(targets.shape[0], target_chunk):
        scores = torch.addmm(h[start:stop], x, targets[start:stop].T)
        value, index = scores.max(dim=1)
        index += start
        if best_value is None:
            best_value, best_index = value, index
        else:
            better = value > best_value
            best_value = torch.where(better, value, best_value)
            best_index = torch.where(better, index, best_index)
    return best_value, best_index


def cell_counts(x: torch.Tensor, targets: torch.Tensor, h: torch.Tensor, *,
                sample_chunk: int, target_chunk: int) -> torch.Tensor:
    """How many rows of ``x`` fall in each cell ``W_i(h)`` (an ``N`` vector of int64)."""
    counts = torch.zeros(targets.shape[0], dtype=torch.int64, device=targets.device)
    for start, stop in _chunks(x.shape[0], sample_chunk):
        _, index = assign_cells(x[start:stop], targets, h, target_chunk)
        counts += torch.bincount(index, minlength=targets.shape[0])
    return counts


@dataclass
class StepDiagnostics:
    """What one Monte Carlo step measured, at the potential ``h`` it started from."""

    step: int
    samples: int
    energy: float
    grad_norm: float
    max_rel_error: float
    empty_share: float
    seconds: float


@dataclass
class OTMap:
    """A fitted semi-discrete OT map: targets ``y_i`` and the potential's heights ``h_i``."""

    targets: torch.Tensor
    h: torch.Tensor
    config: OTConfig = field(default_factory=OTConfig)

    def cells(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the cell containing each source point (rows of ``x`` in the cube)."""
        index = torch.empty(x.shape[0], dtype=torch.int64, device=self.targets.device)
        x = x.to(self.targets.device, self.targets.dtype)
        for start, stop in _chunks(x.shape[0], self.config.batch_size):
            index[start:stop] = assign_cells(x[start:stop], self.targets, self.h,
                                             self.config.target_chunk)[1]
        return index


@dataclass(frozen=True)
class Verification:
    """Cell measures of a fitted map re-estimated from fresh samples the solver never saw."""

    samples: int
    max_rel_error: float
    empty_share: float


def verify_map(ot_map: OTMap, nu: torch.Tensor, samples: int, seed: int) -> Verification:
    """Estimate ``mu(W_i(h))`` from ``samples`` new draws of the source (drawn ``batch_size`` at a
    time, so memory stays bounded) and compare them with the target measure ``nu``."""
    c = ot_map.config
    targets = ot_map.targets
    sampler = UniformCubeSampler(targets.shape[1], c.source, seed, targets.device, targets.dtype)
    counts = torch.zeros(targets.shape[0], dtype=torch.int64, device=targets.device)
    for start, stop in _chunks(samples, c.batch_size):
        _, index = assign_cells(sampler.draw(stop - start), targets, ot_map.h, c.target_chunk)
        counts += torch.bincount(index, minlength=targets.shape[0])
    measures = counts.to(torch.float64) / samples
    nu = nu.to(measures)
    return Verification(samples=samples, max_rel_error=float(((measures - nu).abs() / nu).max()),
                        empty_share=float((counts == 0).double().mean()))


class SemiDiscreteOTSolver:
    """Adam on the heights ``h`` of the Brenier potential, with adaptive Monte Carlo sampling.

    Each :meth:`step` estimates ``mu(W_i(h))`` from ``n`` fresh samples, records diagnostics for
    that ``h``, stops if the tolerance is met (keeping that ``h``), else takes an Adam step and
    re-centres ``h`` (``E`` is invariant to adding a constant). When ``||g||`` has not improved for
    ``patience`` steps, ``n`` doubles (up to ``max_samples``).
    """

    def __init__(self, targets: torch.Tensor, config: OTConfig | None = None,
                 device: torch.device | str = "cpu", weights: torch.Tensor | None = None):
        check_targets(targets)
        self.config = config or OTConfig()
        self.device = torch.device(device)
        dtype = DTYPES[self.config.dtype]
        self.targets = targets.detach().to(self.device, dtype).contiguous()
        self.h = torch.zeros(self.targets.shape[0], device=self.device, dtype=dtype, requires_grad=True)
        self.nu = check_weights(weights, self.targets.shape[0]).to(self.device)
        c = self.config
        self.optimizer = torch.optim.Adam([self.h], lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps)
        self.sampler = UniformCubeSampler(self.targets.shape[1], c.source, c.seed, self.device, dtype)
        self.step_count = 0
        self.samples = c.samples
        self.best_grad_norm = math.inf
        self.stale_steps = 0
        self.converged = False
        self.history: list[StepDiagnostics] = []

    @property
    def num_targets(self) -> int:
        return self.targets.shape[0]

    def estimate(self) -> tuple[torch.Tensor, float]:
        """Monte Carlo estimate of the cell measures ``mu(W_i(h))`` and of ``int u_h dmu``."""
        c = self.config
        h = self.h.detach()
        counts = torch.zeros(self.num_targets, dtype=torch.int64, device=self.device)
        integral = torch.zeros((), dtype=torch.float64, device=self.device)
        for start, stop in _chunks(self.samples, c.batch_size):
            value, index = assign_cells(self.sampler.draw(stop - start), self.targets, h, c.target_chunk)
            counts += torch.bincount(index, minlength=self.num_targets)
            integral += value.sum(dtype=torch.float64)
        return counts.to(torch.float64) / self.samples, float(integral) / self.samples

    def is_converged(self, diagnostics: StepDiagnostics) -> bool:
        c = self.config
        return ((c.rel_tol is not None and diagnostics.max_rel_error <= c.rel_tol)
                or (c.grad_tol is not None and diagnostics.grad_norm < c.grad_tol))

    def step(self) -> StepDiagnostics:
        """One Monte Carlo estimate and (unless converged) one Adam step."""
        started = time.perf_counter()
        measures, integral = self.estimate()
        gradient = measures - self.nu
        grad_norm = float(gradient.norm())
        diagnostics = StepDiagnostics(
            step=self.step_count,
            samples=self.samples,
            energy=integral - float((self.h.detach().double() * self.nu).sum()),
            grad_norm=grad_norm,
            max_rel_error=float((gradient.abs() / self.nu).max()),
            empty_share=float((measures == 0).double().mean()),
            seconds=0.0,
        )
        self.converged = self.is_converged(diagnostics)
        if not self.converged:
            self.h.grad = gradient.to(self.h.dtype)
            self.optimizer.step()
            with torch.no_grad():
                self.h -= self.h.mean()
            self.step_count += 1
            self._adapt_samples(grad_norm)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        diagnostics.seconds = time.perf_counter() - started
        self.history.append(diagnostics)
        return diagnostics

    def _adapt_samples(self, grad_norm: float) -> None:
        if grad_norm < self.best_grad_norm:
            self.best_grad_norm, self.stale_steps = grad_norm, 0
            return
        self.stale_steps += 1
        if self.stale_steps >= self.config.patience:
            self.samples = min(2 * self.samples, self.config.max_samples)
            self.stale_steps = 0
            for group in self.optimizer.param_groups:
                group["lr"] *= self.config.stall_lr_factor

    @property
    def done(self) -> bool:
        return self.converged or self.step_count >= self.config.max_steps

    def run(self, on_step: Callable[[StepDiagnostics], None] | None = None,
            max_steps: int | None = None) -> OTMap:
        """Step until converged or ``config.max_steps`` (or ``max_steps`` more steps) are done."""
        limit = self.config.max_steps if max_steps is None else min(
            self.config.max_steps, self.step_count + max_steps)
        while not self.converged and self.step_count < limit:
            diagnostics = self.step()
            if on_step is not None:
                on_step(diagnostics)
        return self.map()

    def map(self) -> OTMap:
        """The current map (targets and a detached copy of ``h``)."""
        return OTMap(self.targets, self.h.detach().clone(), self.config)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit for bit: ``h``, Adam moments, counters, RNG, history."""
        return {
            "config": asdict(self.config),
            "h": self.h.detach().cpu(),
            "nu": self.nu.cpu(),
            "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.state_dict(),
            "step": self.step_count,
            "samples": self.samples,
            "best_grad_norm": self.best_grad_norm,
            "stale_steps": self.stale_steps,
            "converged": self.converged,
            "history": [asdict(d) for d in self.history],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["h"].shape[0] != self.num_targets:
            raise OTError(f"Saved state has {state['h'].shape[0]} targets, these latents have "
                          f"{self.num_targets}: use the same latent codes or start afresh")
        if "nu" in state and not torch.allclose(state["nu"].to(self.nu), self.nu):
            raise OTError("Saved state was fitted to other target weights: start afresh")
        with torch.no_grad():
            self.h.copy_(state["h"].to(self.device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        self.step_count = int(state["step"])
        self.samples = int(state["samples"])
        self.best_grad_norm = float(state["best_grad_norm"])
        self.stale_steps = int(state["stale_steps"])
        self.converged = bool(state["converged"])
        self.history = [StepDiagnostics(**d) for d in state["history"]]
