"""Cost of a symplectic step with K fixed-point iterations, as a ratio to a direct step.

Both integrators run on the same models in the same process: the direct MLP
and the generating-function MLP of the paper's size ([12, 128, 128, 12] and
[12, 128, 128, 1], three bodies in 2D), in float64 as in the rollouts. The
baseline is the direct step measured in this run, so the ratios do not depend
on the machine. Trained models can be given instead of random ones.

    python benchmarks/step_cost.py [--direct M.pt --symplectic S.pt] [--device cuda] [--out FILE.csv]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from actionmd.fixed_point import SolverSettings  # noqa: E402
from actionmd.integrators import DirectIntegrator, SymplecticIntegrator  # noqa: E402
from actionmd.mlp import DirectMLP, GeneratingFunctionMLP  # noqa: E402
from actionmd.training import load_model, pick_device  # noqa: E402


def time_steps(integrator, q, p, repeats: int, device: torch.device) -> float:
    """Median seconds per step over ``repeats`` steps after a warm-up."""
    for _ in range(5):
        integrator.step(q, p)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        integrator.step(q, p)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--direct", help="trained direct model (.pt); random weights if omitted")
    ap.add_argument("--symplectic", help="trained generating-function model (.pt)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--iterations", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--out", default="results/benchmarks/step_cost.csv")
    args = ap.parse_args()
    device = pick_device(args.device)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if args.direct and args.symplectic:
        direct, _ = load_model(args.direct)
        gf, _ = load_model(args.symplectic)
    else:
        direct = DirectMLP(3, 2, (128, 128), dq_scale=0.02, dp_scale=0.02).double()
        gf = GeneratingFunctionMLP(3, 2, (128, 128), action_scale=0.01).double()
    direct, gf = direct.to(device).eval(), gf.to(device).eval()
    n_bodies, dim = direct.n_bodies, direct.dim
    q = torch.randn(1, n_bodies, dim, dtype=torch.float64, device=device)
    p = torch.randn(1, n_bodies, dim, dtype=torch.float64, device=device)

    base = time_steps(DirectIntegrator(direct), q, p, args.repeats, device)
    rows = [{"method": "direct", "iterations": 0, "seconds_per_step": base, "ratio_to_direct": 1.0}]
    for k in args.iterations:
        integ = SymplecticIntegrator(gf.increment, direct, SolverSettings(iterations=k, mixing=0.3))
        t = time_steps(integ, q, p, args.repeats, device)
        rows.append({"method": f"symplectic_k{k}", "iterations": k, "seconds_per_step": t, "ratio_to_direct": t / base})
    table = pd.DataFrame(rows)
    table["device"] = str(device)
    table["machine"] = f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.6g")
    print(table.to_string(index=False))
    per_iteration = (table.seconds_per_step.iloc[-1] - table.seconds_per_step.iloc[1]) / (
        args.iterations[-1] - args.iterations[0]
    )
    print(f"\none fixed-point iteration costs {per_iteration / base:.2f} direct steps")


if __name__ == "__main__":
    main()
