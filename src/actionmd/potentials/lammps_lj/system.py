"""What the reference MD of Lennard-Jones argon runs: the system and the MD protocol.

The system is an fcc lattice of argon atoms interacting through a plain cut
Lennard-Jones pair potential, V(r) = 4 epsilon ((sigma/r)^12 - (sigma/r)^6)
for r < cutoff (no energy shift, no tail correction), with the Nose-Hoover NPT
conditions of its equilibration. The protocol is the time step and the lengths
of the NPT and NVE phases.

Units are ASE's: epsilon in eV, lengths in A, the mass in u (g/mol),
temperatures in K, the pressure in bar, times and damping times in fs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LJArgon:
    """Lennard-Jones argon on an fcc lattice and its NPT equilibration conditions.

    epsilon (eV) and sigma (A) of the pair potential, cut at ``cutoff`` (A);
    ``mass`` in u (g/mol); ``lattice_constant`` (A) and ``cells`` of the
    starting fcc lattice (4 atoms per cubic cell); NPT target ``temperature``
    (K) and ``pressure`` (bar) with Nose-Hoover damping times in fs.
    """

    epsilon: float = 0.0104
    sigma: float = 3.4
    cutoff: float = 10.0
    mass: float = 39.948
    lattice_constant: float = 4.05
    cells: tuple[int, int, int] = (4, 4, 4)
    temperature: float = 80.0
    pressure: float = 1.0
    thermostat_damping: float = 100.0
    barostat_damping: float = 1000.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "cells", tuple(int(c) for c in self.cells))
        if len(self.cells) != 3 or min(self.cells) < 1:
            raise ValueError(f"cells must be three positive integers, got {self.cells}")
        for name in ("epsilon", "sigma", "cutoff", "mass", "lattice_constant", "thermostat_damping"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not (self.temperature > 0 and self.barostat_damping > 0):
            raise ValueError("temperature and barostat_damping must be positive")

    @property
    def n_atoms(self) -> int:
        """Number of atoms of the starting lattice (4 per fcc cell)."""
        return 4 * math.prod(self.cells)

    def lj_parameters(self) -> dict[str, float]:
        """The pair potential's parameters as stored with every frame (eV, A, u)."""
        return {"epsilon": self.epsilon, "sigma": self.sigma, "cutoff": self.cutoff, "mass": self.mass}


@dataclass(frozen=True)
class MDProtocol:
    """Time step ``dt`` (fs), NPT equilibration and NVE production lengths (steps), NVE save interval (steps).

    ``npt_steps`` may be 0 (start NVE from the thermalised lattice); the NVE
    run saves ``nve_steps // save_every + 1`` frames, step 0 and the last included.
    """

    dt: float = 1.0
    npt_steps: int = 20000
    nve_steps: int = 100000
    save_every: int = 10

    def __post_init__(self) -> None:
        if not self.dt > 0:
            raise ValueError(f"dt must be positive, got {self.dt}")
        for name in ("npt_steps", "nve_steps", "save_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if self.npt_steps < 0 or self.nve_steps < 1 or self.save_every < 1:
            raise ValueError(f"need npt_steps >= 0, nve_steps >= 1, save_every >= 1; got {self}")
        if self.nve_steps % self.save_every:
            raise ValueError(f"save_every={self.save_every} must divide nve_steps={self.nve_steps}")

    @property
    def n_frames(self) -> int:
        """Frames of the NVE trajectory, step 0 and the last step included."""
        return self.nve_steps // self.save_every + 1
