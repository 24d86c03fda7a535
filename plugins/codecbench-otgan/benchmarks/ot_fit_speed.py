"""OT fitting throughput and time to converge, next to the machine's matrix-multiply peak.

Prints, for a few (targets N, dimension d) sizes: Monte Carlo throughput of one solver step in
samples x targets x dims per second (the multiply-adds of ``U = X Y^T + h``), the equivalent
GFLOP/s, and the steps and seconds the solver took to bring every cell within ``--rel-tol`` of its
target measure (or the error it reached within ``--max-steps``). The peak line is a plain
``torch.mm`` of the same shape class on the same device and thread count.

    python plugins/codecbench-otgan/benchmarks/ot_fit_speed.py --sizes 256x16,1024x64 --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch

from codecbench_otgan.ot import OTConfig, SemiDiscreteOTSolver


def matmul_gflops(n: int, device: torch.device, repeats: int = 5) -> float:
    a, b = torch.rand(n, n, device=device), torch.rand(n, n, device=device)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256x16,1024x64,4096x64", help="NxD,... targets x dims")
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--rel-tol", type=float, default=0.5)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, {torch.get_num_threads()} threads; matmul peak (1024^2 fp32): "
          f"{matmul_gflops(1024, device):.1f} GFLOP/s")
    print(f"{'N':>6} {'d':>4} {'MC (smp*tgt*dim)/s':>20} {'GFLOP/s':>8} {'steps':>6} {'seconds':>8} "
          f"{'max rel err':>11} converged")
    for size in args.sizes.split(","):
        count, dim = (int(v) for v in size.lower().split("x"))
        targets = torch.rand(count, dim, generator=torch.Generator().manual_seed(0))
        config = OTConfig(samples=args.samples, max_samples=args.samples * 16, rel_tol=args.rel_tol,
                          max_steps=args.max_steps, lr=args.lr)
        solver = SemiDiscreteOTSolver(targets, config, device)
        started = time.perf_counter()
        solver.run()
        seconds = time.perf_counter() - started
        work = sum(d.samples for d in solver.history) * count * dim
        rate = work / sum(d.seconds for d in solver.history)
        last = solver.history[-1]
        print(f"{count:>6} {dim:>4} {rate:>20.3g} {2 * rate / 1e9:>8.2f} {solver.step_count:>6} "
              f"{seconds:>8.1f} {last.max_rel_error:>11.3g} {solver.converged}")


if __name__ == "__main__":
    main()
