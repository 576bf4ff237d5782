"""Cost of a symplectic step with K fixed-point iterations, as a ratio to a direct step.

Few-body (default): both integrators run on the same models in the same
process: the direct MLP and the generating-function MLP of the paper's size
([12, 128, 128, 12] and [12, 128, 128, 1], three bodies in 2D), in float64 as
in the rollouts. Trained models can be given instead of random ones.

    python benchmarks/step_cost.py [--direct M.pt --symplectic S.pt] [--device cuda] [--out FILE.csv]

Exported FlashMD models (``--atomistic results/<system>``, after the workflow has
trained that system's models): the direct step, one fixed-point iteration
(symmetrised and raw), the part of an iteration spent outside the model, a
K = 8 step and a converged step at the config's solver settings, from the
rollouts' initial state, for each CPU thread count and device asked for
(CUDA rows only where a GPU is present; the script says so otherwise), and
optionally for the box repeated n x n x n (``--replicate 1 2``).

    python benchmarks/step_cost.py --atomistic results/water --threads 1 2 --devices cpu cuda

The baseline of every ratio is the direct step measured in the same run and
configuration, so the ratios do not depend on the machine.
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
from actionmd.core.device import pick_device  # noqa: E402
from actionmd.core.fixed_point import SolverSettings  # noqa: E402
from actionmd.core.integrators import DirectIntegrator, SymplecticIntegrator  # noqa: E402
from actionmd.fewbody.mlp import DirectMLP, GeneratingFunctionMLP  # noqa: E402
from actionmd.fewbody.model_file import load_model  # noqa: E402


def _median_time(fn, repeats: int, device: torch.device, warmup: int = 3) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def time_steps(integrator, q, p, repeats: int, device: torch.device) -> float:
    """Median seconds per step over ``repeats`` steps after a warm-up of five."""
    return _median_time(lambda: integrator.step(q, p), repeats, device, warmup=5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atomistic", metavar="RESULTS_DIR", help="results/<system> with models/ and datasets/")
    ap.add_argument("--system", help="config system of --atomistic (default: the folder's name)")
    ap.add_argument("--preset", default="demo", help="config preset of the solver settings (--atomistic)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU threads (--atomistic)")
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"], help="devices (--atomistic)")
    ap.add_argument("--replicate", type=int, nargs="+", default=[1], help="box repeats n (n^3 copies, --atomistic)")
    ap.add_argument("--steps", type=int, default=3, help="converged steps before timing (--atomistic)")
    ap.add_argument("--direct", help="trained direct model (.pt); random weights if omitted")
    ap.add_argument("--symplectic", help="trained generating-function model (.pt)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--iterations", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--out", help="CSV (default results/benchmarks/step_cost[_<system>].csv)")
    args = ap.parse_args()
    if args.atomistic:
        args.out = args.out or f"results/benchmarks/step_cost_{args.system or Path(args.atomistic).name}.csv"
        atomistic_main(args)
        return
    args.out = args.out or "results/benchmarks/step_cost.csv"
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


# --------------------------------------------------------------------------------------
# exported FlashMD models (argon, water, ...): --atomistic results/<system>
# --------------------------------------------------------------------------------------


def _replicated(traj, n: int):
    """Positions, momenta, types, masses and cell of the box repeated n x n x n (n = 1: as is)."""
    import numpy as np

    cell = np.asarray(traj.cell, dtype=float)
    shifts = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)], dtype=float) @ cell
    q = (traj.positions[0][None] + shifts[:, None]).reshape(-1, 3)
    p = np.tile(traj.momenta[0], (n**3, 1))
    return q, p, np.tile(traj.numbers, n**3), np.tile(traj.masses, n**3), cell * n


def atomistic_rows(
    results: Path,
    system: str,
    preset: str,
    device: torch.device,
    threads: int,
    replicate: int,
    repeats: int,
    steps: int,
) -> list[dict]:
    """Cost of each piece of a long step of one system's exported models, one configuration.

    The state is the rollouts' held-out initial frame (optionally replicated), advanced by a few
    converged steps so that the solver sees an ordinary step. Rows: the direct step (one model
    call, the baseline); one fixed-point iteration (symmetrised: one batched call at +p and -p;
    raw: one call); the part of an iteration outside the model (systems and neighbour lists);
    a K = 8 step; and a converged step at the config's solver settings (mean iterations).
    """
    from actionmd import config as config_mod
    from actionmd.atomistic.model import DirectMap, ExportedModel, SymmetrisedIncrement
    from actionmd.atomistic.rollout import half_step_over_mass
    from actionmd.io.trajectory import read_trajectory

    torch.set_num_threads(threads)
    full = config_mod.load()
    full["preset"] = preset
    cfg = config_mod.resolve(full, system)
    traj = read_trajectory(results / "datasets" / "initial.extxyz", require_continuous=False)
    q0, p0, types, masses, cell = _replicated(traj, replicate)
    args = (torch.as_tensor(types), torch.as_tensor(cell), torch.as_tensor(masses), device)
    d_model = ExportedModel(results / "models" / "direct.pt", *args)
    s_model = ExportedModel(results / "models" / "symplectic.pt", *args)
    direct, increment = DirectMap(d_model), SymmetrisedIncrement(s_model)
    raw = SymmetrisedIncrement(s_model, symmetrise=False)
    converged = SolverSettings.from_config(cfg["solver"], None)
    q, p = torch.as_tensor(q0), torch.as_tensor(p0)
    scale = half_step_over_mass(masses, s_model.timestep)  # Dt / 2m, the free-flight preconditioner's
    solver = SymplecticIntegrator(increment, direct, converged, scale)
    with torch.no_grad():
        for _ in range(steps):  # off the stored frame, onto the map's own trajectory
            q, p = solver.step(q, p)
        qbar, pbar = direct(q, p)
        qbar, pbar = 0.5 * (q + qbar), 0.5 * (p + pbar)

        def overhead():
            wrapped = qbar - torch.floor(qbar / s_model.lengths) * s_model.lengths
            systems = [s_model._system(a, b) for a, b in ((wrapped, pbar), (wrapped, -pbar))]
            for calculator in s_model._neighbor_lists:
                calculator.add_neighbor_list(systems)

        iteration_label = (
            "one iteration, symmetrised (+p and -p batched)"
            if increment.symmetrise
            else "one iteration (S even by construction: one call)"
        )
        k8 = SymplecticIntegrator(increment, direct, SolverSettings(iterations=8, mixing=cfg["solver"]["mixing"]))
        base = _median_time(lambda: direct(q, p), repeats, device)
        timed = {
            "direct step": (base, 0),
            iteration_label: (_median_time(lambda: increment(qbar, pbar), repeats, device), 1),
            "one model call at one sign of p": (_median_time(lambda: raw(qbar, pbar), repeats, device), 1),
            "of an iteration: systems + neighbour lists": (_median_time(overhead, repeats, device), 0),
            "K = 8 step": (_median_time(lambda: k8.step(q, p), max(repeats // 8, 3), device), 8),
        }
        counts, t_conv = [], []
        state = (q, p)
        for _ in range(max(repeats // 10, 5)):
            t0 = time.perf_counter()
            state = solver.step(*state)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_conv.append(time.perf_counter() - t0)
            counts.append(solver.last.iterations)
        t_conv.sort()
        timed["converged step"] = (t_conv[len(t_conv) // 2], sum(counts) / len(counts))
    label = f"{system}, {len(types)} atoms"
    return [
        {
            "system": label,
            "device": str(device),
            "threads": threads,
            "what": what,
            "iterations": it,
            "seconds": t,
            "ratio_to_direct_step": t / base,
        }
        for what, (t, it) in timed.items()
    ]


def atomistic_main(args) -> None:
    from actionmd.core.device import pick_device

    results = Path(args.atomistic)
    system = args.system or results.name
    devices = [d for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    if len(devices) < len(args.devices):
        print("no CUDA device here: CPU only", flush=True)
    rows = []
    for dev in devices:
        for threads in args.threads if dev == "cpu" else [args.threads[0]]:
            for n in args.replicate:
                rows += atomistic_rows(
                    results, system, args.preset, pick_device(dev), threads, n, args.repeats, args.steps
                )
                print(pd.DataFrame(rows[-6:]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    table["machine"] = f"{platform.processor() or platform.machine()}, torch {torch.__version__}" + (
        f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.6g")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
