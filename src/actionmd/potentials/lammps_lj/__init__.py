"""Reference molecular dynamics of Lennard-Jones argon on LAMMPS.

An fcc lattice of argon atoms interacting through a plain cut Lennard-Jones
pair potential (``pair_style lj/cut``: no energy shift, no tail correction) is
given Maxwell-Boltzmann velocities, equilibrated with a Nose-Hoover NPT
thermostat and barostat, and then run at constant energy with velocity Verlet
(``fix nve``). The NVE frames are the reference trajectory.

LAMMPS runs in ``metal`` units (A, eV, ps, g/mol). Everything this package hands
out is in ASE units: positions in A, momenta in (eV u)^(1/2) exactly as
``ase.Atoms.get_momenta()`` (p = m v_ase with v_ase = v_lammps[A/ps] / (1000
ase.units.fs)), energies in eV, times in fs. Temperatures use LAMMPS' count of
degrees of freedom, 3N - 3 (the centre-of-mass momentum is removed):
T = 2 K / ((3N - 3) k_B) with ASE's k_B.

Positions are unwrapped (x + image flags * box edge, relative to the box's
lower corner), so an atom's coordinate changes continuously along a run even
when it crosses the periodic boundary.

Modules: :mod:`.system` (:class:`LJArgon`, :class:`MDProtocol`),
:mod:`.session` (:class:`LJSession`, one LAMMPS instance, and the unit
conversion), :mod:`.frames` (frames as extxyz, arrays and progress lines),
:mod:`.checkpoint` (:class:`ReferenceCheckpoint`, resuming an interrupted
run), :mod:`.protocols` (:func:`run_reference`, :func:`run_nve`,
:func:`potential_energies`, :func:`load_reference`).
"""

from actionmd.potentials.lammps_lj.checkpoint import ReferenceCheckpoint, run_fingerprint
from actionmd.potentials.lammps_lj.frames import SYMBOL, Progress
from actionmd.potentials.lammps_lj.protocols import load_reference, potential_energies, run_nve, run_reference
from actionmd.potentials.lammps_lj.session import LJSession, cell_lengths
from actionmd.potentials.lammps_lj.system import LJArgon, MDProtocol

__all__ = [
    "SYMBOL",
    "LJArgon",
    "LJSession",
    "MDProtocol",
    "Progress",
    "ReferenceCheckpoint",
    "cell_lengths",
    "load_reference",
    "potential_energies",
    "run_fingerprint",
    "run_nve",
    "run_reference",
]
