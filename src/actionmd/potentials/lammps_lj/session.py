"""One LAMMPS instance holding Lennard-Jones argon, read and written in ASE units.

:class:`LJSession` builds the system (an fcc lattice, or given positions in an
orthorhombic periodic box, or a LAMMPS binary restart), sets the pair
potential (``pair_style lj/cut``), thermalises, runs Nose-Hoover NPT or
velocity Verlet (``fix nve``) and reads the state back.

LAMMPS runs in ``metal`` units (A, eV, ps, g/mol). The session's interface is
in ASE units: positions in A, momenta in (eV u)^(1/2) exactly as
``ase.Atoms.get_momenta()`` (p = m v_ase with v_ase = v_lammps[A/ps] / (1000
ase.units.fs)), energies in eV, times, time steps and damping times in fs.
Temperatures use LAMMPS' count of degrees of freedom, 3N - 3 (the
centre-of-mass momentum is removed): T = 2 K / ((3N - 3) k_B) with ASE's k_B.

Positions read back are unwrapped (x + image flags * box edge, relative to the
box's lower corner), so an atom's coordinate changes continuously along a run
even when it crosses the periodic boundary; positions written in are folded
into the box [0, L) with the matching image flags.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np
from ase import units

from actionmd.dynamics.energy import temperature_of
from actionmd.potentials.lammps import new_lammps
from actionmd.potentials.lammps_lj.system import LJArgon

# LAMMPS metal velocity (A/ps) -> ASE velocity (A per ASE time unit)
_VELOCITY_TO_ASE = 1.0 / (1000.0 * units.fs)


def _num(x: float) -> str:
    """A float as LAMMPS reads it back exactly."""
    return repr(float(x))


def cell_lengths(cell: np.ndarray) -> np.ndarray:
    """Edge lengths (3,) in A of an orthorhombic cell given as (3,) lengths or a (3, 3) matrix."""
    cell = np.asarray(cell, dtype=np.float64)
    if cell.shape == (3, 3):
        off = cell - np.diag(np.diag(cell))
        if np.abs(off).max() > 1e-10 * np.abs(cell).max():
            raise ValueError("only orthorhombic cells are supported; got off-diagonal cell entries")
        cell = np.diag(cell).copy()
    if cell.shape != (3,) or not np.all(cell > 0):
        raise ValueError(f"cell must be 3 positive edge lengths or a diagonal (3, 3) matrix, got {cell}")
    return cell


def _wrap(positions: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions folded into [0, L) and the integer image flags with positions = wrapped + image * L."""
    image = np.floor(positions / lengths)
    wrapped = positions - image * lengths
    over = wrapped >= lengths  # rounding can land exactly on L
    wrapped[over] -= np.broadcast_to(lengths, wrapped.shape)[over]
    image[over] += 1
    return np.clip(wrapped, 0.0, None), image.astype(np.int32)


class LJSession:
    """One LAMMPS instance holding LJ argon in metal units; reads and writes its state in ASE units."""

    def __init__(self, system: LJArgon) -> None:
        self.system = system
        self.lmp = new_lammps()
        self.lmp.commands_string("units metal\natom_style atomic\natom_modify map array\nboundary p p p")
        self.n, self.dt = 0, 0.0

    def close(self) -> None:
        self.lmp.close()

    def __enter__(self) -> LJSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building the system -------------------------------------------------
    def _potential(self, dt: float) -> None:
        """Pair potential, mass, neighbour list and time step (dt in fs)."""
        s = self.system
        self.lmp.commands_string(
            f"""
            mass 1 {_num(s.mass)}
            pair_style lj/cut {_num(s.cutoff)}
            pair_coeff 1 1 {_num(s.epsilon)} {_num(s.sigma)}
            """
        )
        self._settings(dt)

    def _settings(self, dt: float) -> None:
        """Settings a restart file does not keep: neighbour list and time step (fs -> ps)."""
        self.lmp.commands_string(
            f"neighbor 2.0 bin\nneigh_modify every 1 delay 0 check yes\ntimestep {_num(dt / 1000)}"
        )
        self.n, self.dt = int(self.lmp.get_natoms()), float(dt)

    def build_lattice(self, dt: float) -> None:
        """The fcc lattice of ``system.cells`` cubic cells of edge ``system.lattice_constant``."""
        nx, ny, nz = self.system.cells
        self.lmp.commands_string(
            f"""
            lattice fcc {_num(self.system.lattice_constant)}
            region box block 0 {nx} 0 {ny} 0 {nz}
            create_box 1 box
            create_atoms 1 box
            """
        )
        self._potential(dt)

    def build_state(self, positions: np.ndarray, cell: np.ndarray, dt: float) -> None:
        """Atoms at (possibly unwrapped) ``positions`` (N, 3) A in the box [0, L) of edge lengths ``cell``."""
        lengths = cell_lengths(cell)
        positions = np.asarray(positions, dtype=np.float64)
        if positions.ndim != 2 or positions.shape[1] != 3 or len(positions) == 0:
            raise ValueError(f"positions must have shape (N, 3), got {positions.shape}")
        lx, ly, lz = (_num(x) for x in lengths)
        self.lmp.commands_string(f"region box block 0 {lx} 0 {ly} 0 {lz}\ncreate_box 1 box")
        n = len(positions)
        wrapped, image = _wrap(positions, lengths)
        self.lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, wrapped.reshape(-1).tolist())
        if self.lmp.get_natoms() != n:
            raise ValueError(f"LAMMPS created {self.lmp.get_natoms()} of {n} atoms; are positions finite?")
        self._potential(dt)
        self._scatter("image", image)

    def read_restart(self, path: Path, dt: float) -> None:
        """The system from a LAMMPS binary restart (box, atoms, velocities, image flags, pair coefficients)."""
        self.lmp.command(f'read_restart "{path}"')
        self._settings(dt)

    def write_restart(self, path: Path) -> None:
        """A LAMMPS binary restart of the current state at ``path`` (what :meth:`read_restart` reads)."""
        self.lmp.command(f'write_restart "{path}"')

    def shift_potential(self) -> None:
        """Report the pair potential shifted to zero at the cutoff (``pair_modify shift yes``; forces unchanged)."""
        self.lmp.command("pair_modify shift yes")

    def set_momenta(self, momenta: np.ndarray) -> None:
        """Velocities from ASE momenta (N, 3) in (eV u)^(1/2)."""
        momenta = np.asarray(momenta, dtype=np.float64)
        if momenta.shape != (self.n, 3):
            raise ValueError(f"momenta must have shape ({self.n}, 3), got {momenta.shape}")
        self._scatter("v", momenta / (self.system.mass * _VELOCITY_TO_ASE))

    def set_positions(self, positions: np.ndarray, lengths: np.ndarray) -> None:
        """Move the atoms to ``positions`` (N, 3) A, folded into the box [0, L)."""
        wrapped, image = _wrap(np.asarray(positions, dtype=np.float64), lengths)
        self._scatter("x", wrapped)
        self._scatter("image", image)

    # -- dynamics --------------------------------------------------------------
    def thermalise(self, seed: int) -> None:
        """Maxwell-Boltzmann velocities at the system's temperature, zero total linear and angular momentum."""
        t = _num(self.system.temperature)
        self.lmp.command(f"velocity all create {t} {seed} mom yes rot yes dist gaussian")

    def start_npt(self) -> None:
        """Nose-Hoover NPT at the system's temperature and isotropic pressure (damping times fs -> ps)."""
        s = self.system
        t, p = _num(s.temperature), _num(s.pressure)
        tdamp, pdamp = _num(s.thermostat_damping / 1000), _num(s.barostat_damping / 1000)
        self.lmp.command(f"fix ensemble all npt temp {t} {t} {tdamp} iso {p} {p} {pdamp}")

    def start_nve(self) -> None:
        """Velocity Verlet from here on, with the step counter restarted at 0."""
        self.lmp.commands_string("unfix ensemble\nreset_timestep 0")
        self.nve()

    def nve(self) -> None:
        """Velocity Verlet (``fix nve``); the thermo output of each run's last step is only the potential energy."""
        self.lmp.commands_string("fix ensemble all nve\nthermo_style custom step pe")

    def run(self, steps: int, setup: bool = True) -> None:
        """Advance ``steps`` steps; ``setup=False`` continues the previous run without re-neighbouring."""
        self.lmp.command(f"run {steps} pre {'yes' if setup else 'no'} post no")

    def thermo(self, name: str) -> float:
        """A LAMMPS thermo quantity of the last step run (metal units)."""
        return float(self.lmp.get_thermo(name))

    # -- state -----------------------------------------------------------------
    def _gather(self, name: str, dtype: int) -> np.ndarray:
        data = self.lmp.gather_atoms(name, dtype, 3)
        return np.ctypeslib.as_array(data).reshape(self.n, 3).copy()

    def _scatter(self, name: str, values: np.ndarray) -> None:
        dtype = 0 if name == "image" else 1
        ctype = ctypes.c_int if dtype == 0 else ctypes.c_double
        flat = np.ascontiguousarray(values, dtype=np.int32 if dtype == 0 else np.float64).reshape(-1)
        self.lmp.scatter_atoms(name, dtype, 3, (ctype * flat.size).from_buffer_copy(flat))

    def box(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower corner and edge lengths (A) of the orthorhombic box."""
        lo, hi = self.lmp.extract_box()[:2]
        return np.array(lo), np.array(hi) - np.array(lo)

    def frame(self) -> dict[str, Any]:
        """The current state in ASE units: time (fs), unwrapped positions, momenta, cell, energies (last step run)."""
        lo, lengths = self.box()
        x, image, v = self._gather("x", 1), self._gather("image", 0), self._gather("v", 1)
        momenta = self.system.mass * _VELOCITY_TO_ASE * v
        kinetic = float(np.sum(momenta**2)) / (2 * self.system.mass)
        potential = self.thermo("pe")
        step = int(self.lmp.extract_global("ntimestep"))
        return {
            "time": step * self.dt,
            "step": step,
            "positions": x - lo + image * lengths,
            "momenta": momenta,
            "cell": lengths,
            "potential_energy": potential,
            "kinetic_energy": kinetic,
            "temperature": float(temperature_of(kinetic, self.n)),
        }
