"""Iterations of the converged solve per setting, and how converged each answer is.

On states of a system's converged rollout (``results/<system>/rollouts/symplectic_converged.npz``,
every ``--every``-th saved frame) and its exported models, every setting (mixing, Anderson
depth, its mixing, preconditioner, tolerance) solves the same steps from the same direct
guess. Each answer is compared with a tight solution of the same step (free-flight
preconditioned Anderson 8 to a residual of 2e-6, a few times above the float32 models'
noise floor) and checked for time reversibility: step, flip the momenta, step, flip: the
distance to the start. Units: A and (eV*u)^(1/2), max-abs over atoms and components.

    python benchmarks/converged_solver.py --results results/water [--every 19] [--out FILE.csv]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from actionmd.atomistic.model import DirectMap, ExportedModel, SymmetrisedIncrement  # noqa: E402
from actionmd.atomistic.rollout import half_step_over_mass  # noqa: E402
from actionmd.core.fixed_point import SolverSettings, solve_midpoint  # noqa: E402
from actionmd.io.trajectory import read_trajectory  # noqa: E402

# (label, mixing, anderson, converged_mixing, preconditioner, tolerance)
SETTINGS = [
    ("Anderson 5, mixing 0.3 (before)", 0.3, 5, None, "none", 1e-5),
    ("Anderson 5, mixing 0.5", 0.3, 5, 0.5, "none", 1e-5),
    ("Anderson 5, mixing 0.7", 0.3, 5, 0.7, "none", 1e-5),
    ("Anderson 5, mixing 1.0", 0.3, 5, 1.0, "none", 1e-5),
    ("free flight, linear mixing 1.0", 1.0, 0, None, "free_flight", 1e-5),
    ("free flight, Anderson 5, mixing 0.3", 0.3, 5, None, "free_flight", 1e-5),
    ("free flight, Anderson 5, mixing 0.5", 0.3, 5, 0.5, "free_flight", 1e-5),
    ("free flight, Anderson 5, mixing 0.7 (chosen)", 0.3, 5, 0.7, "free_flight", 1e-5),
    ("free flight, Anderson 5, mixing 1.0", 0.3, 5, 1.0, "free_flight", 1e-5),
    ("free flight, Anderson 3, mixing 0.7", 0.3, 3, 0.7, "free_flight", 1e-5),
    ("free flight, Anderson 8, mixing 0.7", 0.3, 8, 0.7, "free_flight", 1e-5),
    ("free flight, Anderson 5, mixing 0.7, tolerance 5e-6", 0.3, 5, 0.7, "free_flight", 5e-6),
]
TIGHT = SolverSettings(
    iterations=None, mixing=0.5, tolerance=2e-6, max_iterations=40, anderson=8, preconditioner="free_flight"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results/water")
    ap.add_argument("--every", type=int, default=19, help="every n-th saved frame of the converged rollout")
    ap.add_argument("--out", default=None, help="CSV (default results/benchmarks/converged_solver_<system>.csv)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(args.results)
    roll = np.load(root / "rollouts/symplectic_converged.npz", allow_pickle=True)
    traj = read_trajectory(root / "datasets/initial.extxyz", require_continuous=False)
    model_args = (torch.as_tensor(traj.numbers), torch.as_tensor(traj.cell), torch.as_tensor(traj.masses))
    direct = DirectMap(ExportedModel(root / "models/direct.pt", *model_args))
    s_model = ExportedModel(root / "models/symplectic.pt", *model_args)
    increment = SymmetrisedIncrement(s_model)
    scale = half_step_over_mass(traj.masses, s_model.timestep)
    frames = [f for f in range(10, len(roll["positions"]), args.every) if np.isfinite(roll["positions"][f]).all()]
    records = []
    with torch.no_grad():
        for f in frames:
            q, p = torch.as_tensor(roll["positions"][f]), torch.as_tensor(roll["momenta"][f])
            qg, pg = direct(q, p)
            tight = solve_midpoint(q, p, increment, qg, pg, TIGHT, scale)
            for label, mixing, depth, amix, pre, tol in SETTINGS:
                settings = SolverSettings(
                    iterations=None,
                    mixing=mixing,
                    tolerance=tol,
                    max_iterations=200,
                    anderson=depth,
                    preconditioner=pre,
                    converged_mixing=amix,
                )
                one = solve_midpoint(q, p, increment, qg, pg, settings, scale)
                qg2, pg2 = direct(one.q, -one.p)
                back = solve_midpoint(one.q, -one.p, increment, qg2, pg2, settings, scale)
                records.append(
                    {
                        "setting": label,
                        "frame": f,
                        "iterations": one.iterations,
                        "iterations_back": back.iterations,
                        "error_vs_tight": max(
                            float((one.q - tight.q).abs().max()), float((one.p - tight.p).abs().max())
                        ),
                        "reversibility": max(float((back.q - q).abs().max()), float((back.p + p).abs().max())),
                    }
                )
            print(f"frame {f} done", flush=True)
    table = pd.DataFrame(records)
    summary = table.groupby("setting", sort=False).agg(
        iterations_mean=("iterations", "mean"),
        iterations_max=("iterations", "max"),
        error_vs_tight_max=("error_vs_tight", "max"),
        reversibility_median=("reversibility", "median"),
        reversibility_max=("reversibility", "max"),
    )
    out = Path(args.out or f"results/benchmarks/converged_solver_{root.name}.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out, float_format="%.3g")
    print(f"{len(frames)} steps of {root.name}, iterations counted forward; residual tolerance 1e-5 unless said")
    print(summary.to_string(float_format=lambda x: f"{x:.3g}"))


if __name__ == "__main__":
    main()
