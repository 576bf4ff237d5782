"""q-TIP4P/f force-field parameters, units and input checks (A, eV, rad, e).

The parameters of Habershon, Markland, Manolopoulos (J. Chem. Phys. 131, 024501, 2009)
converted from the paper's kcal/mol to eV (1 kcal/mol = 0.0433641043 eV), the Coulomb
constant k_e = torchpme.prefactors.eV_A = 14.399645478425667 eV A / e^2, and the checks of
what the model accepts: whole molecules ordered O H H (atomic numbers 8, 1, 1) in an
orthorhombic cell with positive edge lengths (A).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

#: 1 kcal/mol in eV.
KCAL_MOL_TO_EV = 0.0433641043
#: Coulomb constant k_e = 1 / (4 pi eps_0) in eV A / e^2 (torch-pme's ``prefactors.eV_A``).
COULOMB_EV_A = 14.399645478425667
#: Floating-point type of every torch tensor of the model (the whole model is float64).
DTYPE = torch.float64


@dataclass(frozen=True)
class QTIP4PFParameters:
    """Force-field parameters of q-TIP4P/f in A, eV, rad, e (from the paper's kcal/mol values)."""

    d_r: float = 116.09 * KCAL_MOL_TO_EV  # eV, stretch well depth
    alpha_r: float = 2.287  # 1/A, stretch range parameter "a"
    r_eq: float = 0.9419  # A, O-H equilibrium length
    k_theta: float = 87.85 * KCAL_MOL_TO_EV  # eV/rad^2, bend force constant
    theta_eq: float = math.radians(107.4)  # rad, H-O-H equilibrium angle
    epsilon: float = 0.1852 * KCAL_MOL_TO_EV  # eV, O-O LJ well depth
    sigma: float = 3.1589  # A, O-O LJ diameter
    q_h: float = 0.5564  # e, charge on each H
    gamma: float = 0.73612  # M = gamma O + (1 - gamma)/2 (H1 + H2)
    lj_cutoff: float = 9.0  # A, O-O LJ truncation (no shift)

    @property
    def q_m(self) -> float:
        """Charge on the M site in e (-2 q_H, the molecule is neutral)."""
        return -2.0 * self.q_h


def orthorhombic_lengths(cell: np.ndarray | torch.Tensor | Sequence[float]) -> np.ndarray:
    """Edge lengths (A) of an orthorhombic cell given as (3,) lengths or a (3, 3) matrix of row vectors.

    Raises ValueError for a cell of another shape, a non-orthorhombic (triclinic or
    monoclinic) cell, or non-positive edge lengths.
    """
    c = np.asarray(cell.detach().cpu() if isinstance(cell, torch.Tensor) else cell, dtype=float)
    if c.shape == (3,):
        lengths = c.copy()
    elif c.shape == (3, 3):
        off = c - np.diag(np.diag(c))
        if np.max(np.abs(off)) > 1e-10 * max(np.max(np.abs(c)), 1.0):
            raise ValueError(
                f"q-TIP4P/f supports only orthorhombic cells (diagonal cell matrix); "
                f"got a non-orthorhombic cell with off-diagonal elements {off[off != 0].tolist()}"
            )
        lengths = np.diag(c).copy()
    else:
        raise ValueError(f"cell must have shape (3,) or (3, 3), got {c.shape}")
    if np.any(lengths <= 0):
        raise ValueError(f"cell edge lengths must be positive, got {lengths.tolist()}")
    return lengths


def check_atoms(n_atoms: int, atomic_numbers: Sequence[int] | np.ndarray | None = None) -> None:
    """Check that there are whole molecules ordered O H H; raise ValueError naming what is wrong."""
    if n_atoms == 0 or n_atoms % 3 != 0:
        raise ValueError(
            f"q-TIP4P/f needs whole water molecules: the number of atoms ({n_atoms}) is not a multiple of 3"
        )
    if atomic_numbers is None:
        return
    z = np.asarray(atomic_numbers)
    if z.shape != (n_atoms,):
        raise ValueError(f"got {z.shape} atomic numbers for {n_atoms} atoms")
    expected = np.tile([8, 1, 1], n_atoms // 3)
    wrong = np.flatnonzero(z != expected)
    if wrong.size:
        i = int(wrong[0])
        raise ValueError(
            f"q-TIP4P/f expects the atom order O H H per molecule: atom {i} (molecule {i // 3}) has "
            f"atomic number {int(z[i])} but should be {'O' if expected[i] == 8 else 'H'} ({int(expected[i])})"
        )
