"""Which offline universal ML potential drives GeTe and aluminium: speed and lattice constants.

For each reference-potential spec of ``config.yaml`` named on the command line (default: the
universal ones, CHGNet and SevenNet), on this machine:

* the time of one energy + forces + stress evaluation of 64-atom rocksalt GeTe and 108-atom fcc
  aluminium (median of ``--repeats`` calls, after a warm-up; torch threads ``--threads``);
* the zero-temperature, zero-pressure lattice constant of rocksalt GeTe and of fcc aluminium (A):
  the root of a cubic through the pressure -tr(stress)/3 at seven lattice constants within 3 %
  of the experimental one, and the bulk modulus B = -V dP/dV there (GPa).

Usage: ``python benchmarks/universal_potentials.py [chgnet sevennet] [--threads 1] [--repeats 5]``.
Prints a Markdown table. Experiment: Al a = 4.05 A at 298 K (4.03 A at 0 K), B = 76 GPa;
rocksalt (high-temperature cubic) GeTe a = 6.0 A above 700 K.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from ase.build import bulk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from actionmd.potentials.reference import Evaluator, calculator  # noqa: E402


def evaluation_time(calc, atoms, repeats: int) -> float:
    evaluate = Evaluator(calc, atoms.numbers)
    rng = np.random.default_rng(0)
    times = []
    for i in range(repeats + 1):
        positions = atoms.positions + rng.normal(scale=0.05, size=atoms.positions.shape)
        start = time.perf_counter()
        evaluate(positions, atoms.cell.array)
        if i:  # the first call is a warm-up
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def lattice_constant(calc, symbols: str, structure: str, a0: float) -> tuple[float, float]:
    """(a in A, B in GPa) where the pressure of the conventional cubic cell vanishes, a in a0 * [0.97, 1.03]."""
    grid = a0 * np.linspace(0.97, 1.03, 7)
    pressures = []
    for a in grid:
        atoms = bulk(symbols, structure, a=a, cubic=True)
        stress = Evaluator(calc, atoms.numbers)(atoms.positions, atoms.cell.array)[2]
        pressures.append(-np.trace(stress) / 3 * EV_PER_A3_IN_GPA)
    fit = np.polynomial.Polynomial.fit(grid, pressures, 3)
    roots = [r.real for r in fit.roots() if abs(r.imag) < 1e-9 and grid[0] <= r.real <= grid[-1]]
    if not roots:
        return float("nan"), float("nan")
    a = roots[0]
    # B = -V dP/dV = -(a/3) dP/da
    return float(a), float(-a / 3 * fit.deriv()(a))


EV_PER_A3_IN_GPA = 160.21766


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("potentials", nargs="*", default=["chgnet", "sevennet"])
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "config.yaml"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    specs = yaml.safe_load(Path(args.config).read_text())["potentials"]
    gete = bulk("GeTe", "rocksalt", a=6.0, cubic=True).repeat(2)
    al32 = bulk("Al", "fcc", a=4.05, cubic=True).repeat(2)
    al108 = bulk("Al", "fcc", a=4.05, cubic=True).repeat(3)
    print(f"threads {args.threads}, median of {args.repeats} calls (s per energy + forces + stress)")
    print("| potential | GeTe 64 (s) | Al 32 (s) | Al 108 (s) | a GeTe (A) | B GeTe (GPa) | a Al (A) | B Al (GPa) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.potentials:
        spec = {**specs[name], "name": name, "device": "cpu"}
        calc = calculator(spec, threads=args.threads)
        times = [evaluation_time(calc, atoms, args.repeats) for atoms in (gete, al32, al108)]
        a_gete, b_gete = lattice_constant(calc, "GeTe", "rocksalt", 6.0)
        a_al, b_al = lattice_constant(calc, "Al", "fcc", 4.05)
        cells = " | ".join(f"{t:.3f}" for t in times)
        print(f"| {name} | {cells} | {a_gete:.3f} | {b_gete:.0f} | {a_al:.3f} | {b_al:.0f} |")


if __name__ == "__main__":
    main()
