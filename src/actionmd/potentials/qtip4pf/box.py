"""Periodic boxes of equilibrium q-TIP4P/f water molecules, for tests and initial conditions (A, u).

Rigid molecules at the q-TIP4P/f equilibrium geometry (r_OH = 0.9419 A, H-O-H 107.4 deg),
their O atoms on a simple or body-centred cubic lattice, each with an independent uniformly
random orientation; the cubic edge (A) follows from the mass density (g/cm^3) with
18.01528 g/mol per molecule. Atoms ordered O H H, ASE's default masses (O 15.999 u, H 1.008 u).
"""

from __future__ import annotations

import math

import numpy as np
from ase import Atoms

from actionmd.core.augmentation import random_rotation_matrices
from actionmd.potentials.qtip4pf.parameters import QTIP4PFParameters

#: Molar mass of H2O in g/mol and Avogadro's number in 1/mol (for :func:`water_box`).
WATER_MOLAR_MASS = 18.01528
AVOGADRO = 6.02214076e23


def water_molecule(parameters: QTIP4PFParameters | None = None) -> np.ndarray:
    """Equilibrium q-TIP4P/f geometry (3, 3) in A, order O H H: O at the origin, the H atoms in the xy
    plane at r_eq = 0.9419 A, symmetric about +x, with H-O-H angle theta_eq = 107.4 deg."""
    p = parameters or QTIP4PFParameters()
    half = 0.5 * p.theta_eq
    return np.array(
        [
            [0.0, 0.0, 0.0],
            [p.r_eq * math.cos(half), p.r_eq * math.sin(half), 0.0],
            [p.r_eq * math.cos(half), -p.r_eq * math.sin(half), 0.0],
        ]
    )


def cubic_box_length(n_molecules: int, density_g_cm3: float = 0.997) -> float:
    """Edge (A) of the cube holding ``n_molecules`` H2O (18.01528 g/mol) at the given mass density (g/cm^3)."""
    volume_cm3 = n_molecules * WATER_MOLAR_MASS / AVOGADRO / density_g_cm3
    return (volume_cm3 * 1e24) ** (1.0 / 3.0)


def water_box(n_molecules_per_side: int, density_g_cm3: float = 0.997, seed: int = 0, lattice: str = "sc") -> Atoms:
    """Periodic cubic box of equilibrium water molecules on a cubic lattice, O H H order (A, u).

    The O atoms sit on a simple cubic (``lattice="sc"``, ``n**3`` molecules, offset by half a
    spacing from the origin) or body-centred cubic lattice (``"bcc"``, ``2 n**3`` molecules,
    e.g. 128 for n = 4 with O-O neighbours 3.4 A apart at 0.997 g/cm^3), and each molecule gets
    an independent uniformly random orientation about its O. The edge is set by the mass
    density (18.01528 g/mol per molecule). Masses are ASE's defaults (O 15.999 u, H 1.008 u).
    """
    n = int(n_molecules_per_side)
    if n < 1 or lattice not in ("sc", "bcc"):
        raise ValueError(
            f"need n_molecules_per_side >= 1 and lattice 'sc' or 'bcc', got {n_molecules_per_side}, {lattice!r}"
        )
    cube = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), axis=-1).reshape(-1, 3) + 0.5
    fractional = cube if lattice == "sc" else np.concatenate([cube - 0.25, cube + 0.25])
    n_mol = len(fractional)
    length = cubic_box_length(n_mol, density_g_cm3)
    rng = np.random.default_rng(seed)
    rotated = np.einsum("mab,kb->mka", random_rotation_matrices(n_mol, rng), water_molecule())
    positions = (fractional[:, None, :] * (length / n) + rotated).reshape(-1, 3)
    return Atoms("OH2" * n_mol, positions=positions, cell=[length] * 3, pbc=True)
