"""Cost of the reference NVE path (run_nve, a frame every 16 steps) as a ratio to a bare LAMMPS run.

Both run in the same process from the same state: 256 argon atoms, a 4x4x4
fcc box at a = 5.26 A with Maxwell-Boltzmann velocities at 80 K (or that box
after ``--npt-steps`` of NPT at 80 K and 1 bar). The baseline is the same input
script ending in one ``run N`` with no frame extraction; ``run_nve`` splits the
run into ``run 16`` pieces and reads positions, image flags, velocities and
the potential energy after each. Times include building the LAMMPS instance;
the baseline is measured in the same run (interleaved, fastest of
``--repeats``), so the ratio does not depend on the machine. Expect less than
1 even with free frame extraction: the last step of each piece tallies the
potential energy, which makes LAMMPS' pair loop about twice as slow on that step.

    python benchmarks/reference_md.py [--steps N] [--save-every 16 64] [--repeats 5] [--npt-steps 0]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from actionmd.potentials.lammps import import_lammps  # noqa: E402
from actionmd.potentials.lammps_lj import LJArgon, LJSession, run_nve  # noqa: E402


def starting_state(system: LJArgon, dt: float, npt_steps: int, seed: int) -> dict:
    """Thermalised lattice (optionally NPT-equilibrated): positions, momenta, cell in ASE units."""
    with LJSession(system) as md:
        md.build_lattice(dt)
        md.thermalise(seed)
        if npt_steps:
            md.start_npt()
            md.run(npt_steps)
            md.start_nve()
        md.run(0)
        return md.frame()


def bare_run(state: dict, system: LJArgon, dt: float, steps: int, thermo: int = 0) -> tuple[float, float]:
    """Seconds for the same input script with one ``run steps``: (whole, the run command alone).

    ``thermo > 0`` tallies the potential energy every ``thermo`` steps (as each frame of run_nve needs)
    without reading anything: the cost of the energies alone.
    """
    t0 = time.perf_counter()
    with LJSession(system) as md:
        md.build_state(state["positions"], state["cell"], dt)
        md.set_momenta(state["momenta"])
        md.nve()
        md.lmp.command(f"thermo {thermo}")
        t1 = time.perf_counter()
        md.lmp.command(f"run {steps}")
        t2 = time.perf_counter()
    return time.perf_counter() - t0, t2 - t1


def ours(state: dict, system: LJArgon, dt: float, steps: int, save_every: int) -> float:
    """Seconds for run_nve with a frame every ``save_every`` steps."""
    t0 = time.perf_counter()
    run_nve(state["positions"], state["momenta"], state["cell"], system, dt, steps, save_every, progress=None)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=4800, help="NVE steps per timing (a multiple of each --save-every)")
    ap.add_argument("--save-every", type=int, nargs="+", default=[16, 64], help="frame intervals to time")
    ap.add_argument("--repeats", type=int, default=5, help="timings per path, interleaved; the fastest counts")
    ap.add_argument("--npt-steps", type=int, default=0, help="NPT equilibration of the starting box first")
    ap.add_argument("--lattice-constant", type=float, default=5.26)
    ap.add_argument("--dt", type=float, default=1.0, help="fs")
    ap.add_argument("--out", default="results/benchmarks/reference_md.csv")
    args = ap.parse_args()
    system = LJArgon(lattice_constant=args.lattice_constant, cells=(4, 4, 4))
    state = starting_state(system, args.dt, args.npt_steps, seed=4928459)

    bare, energies, ours_t = [], {k: [] for k in args.save_every}, {k: [] for k in args.save_every}
    for _ in range(args.repeats):  # interleaved, so a busy machine slows all alike
        bare.append(bare_run(state, system, args.dt, args.steps))
        for k in args.save_every:
            energies[k].append(bare_run(state, system, args.dt, args.steps, thermo=k)[0])
            ours_t[k].append(ours(state, system, args.dt, args.steps, k))
    rows = [
        {"path": "bare LAMMPS run N (whole script)", "seconds": min(b[0] for b in bare)},
        {"path": "bare LAMMPS run N (run command only)", "seconds": min(b[1] for b in bare)},
    ]
    for k in args.save_every:
        rows.append({"path": f"bare run N, energy tallied every {k} steps", "seconds": min(energies[k])})
        rows.append({"path": f"run_nve, frame every {k} steps", "seconds": min(ours_t[k])})
    table = pd.DataFrame(rows)
    table["steps_per_s"] = args.steps / table.seconds
    table["ratio_to_bare"] = table.steps_per_s / table.steps_per_s.iloc[0]
    lammps = import_lammps()
    table["machine"] = f"{platform.processor() or platform.machine()}, LAMMPS {lammps.__version__}, 1 process"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.6g")
    n, volume = len(state["positions"]), float(state["cell"].prod())
    print(f"{n} atoms, box {state['cell'].round(3).tolist()} A ({volume / n:.2f} A^3/atom), {args.steps} steps\n")
    print(table.drop(columns="machine").to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    for k, ratio in zip(args.save_every, table.ratio_to_bare.iloc[3::2], strict=True):
        print(f"run_nve with a frame every {k} steps runs at {ratio:.3f} of the bare LAMMPS speed (goal >= 0.9)")


if __name__ == "__main__":
    main()
