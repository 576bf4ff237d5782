"""The q-TIP4P/f energy terms in torch, differentiable with respect to positions and cell (A, eV, e).

* O-H stretch (quartic expansion of a Morse potential) per bond,
  ``V = D_r [a^2 dr^2 - a^3 dr^3 + (7/12) a^4 dr^4]`` with ``dr = r_OH - r_eq``;
* H-O-H bend ``V = (k_theta / 2) (theta - theta_eq)^2`` per molecule;
* O-O Lennard-Jones ``4 eps [(sigma/r)^12 - (sigma/r)^6]``, truncated at 9 A without shift;
* the charge sites (q_H on each H, q_M on ``M = gamma O + (1 - gamma)/2 (H1 + H2)``) and the
  bare Coulomb energy ``k_e q_i q_j / r_ij`` of the excluded intramolecular pairs (H1-H2,
  H1-M, H2-M), which the model subtracts from the Ewald energy of all charges.

Intramolecular vectors are taken by minimum image in an orthorhombic cell (3, 3) of row
vectors, so molecules may straddle the cell boundary. Positions in A, energies in eV, charges
in e, dipoles in e A; everything float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from vesin import NeighborList

from actionmd.potentials.qtip4pf.parameters import COULOMB_EV_A, DTYPE, QTIP4PFParameters, orthorhombic_lengths


def minimum_image(d: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """Minimum-image displacement vectors ``d`` (..., 3) in A for an orthorhombic cell (3, 3) of row vectors.

    The integer shifts are found without gradient and applied as ``d - n @ cell``, so the
    result stays differentiable with respect to a (possibly strained) cell.
    """
    n = torch.round(d.detach() @ torch.linalg.inv(cell.detach()))
    return d - n @ cell


def intramolecular_vectors(positions: torch.Tensor, cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """O->H1 and O->H2 vectors (n_mol, 3) in A, by minimum image (molecules may straddle the box edge)."""
    o = positions[0::3]
    return minimum_image(positions[1::3] - o, cell), minimum_image(positions[2::3] - o, cell)


def stretch_energy(d1: torch.Tensor, d2: torch.Tensor, p: QTIP4PFParameters) -> torch.Tensor:
    """O-H stretch energy (eV): sum over bonds of D_r [a^2 dr^2 - a^3 dr^3 + (7/12) a^4 dr^4]."""
    r = torch.cat([torch.linalg.norm(d1, dim=-1), torch.linalg.norm(d2, dim=-1)])
    x = p.alpha_r * (r - p.r_eq)
    return p.d_r * torch.sum(x**2 - x**3 + (7.0 / 12.0) * x**4)


def bend_angle(d1: torch.Tensor, d2: torch.Tensor) -> torch.Tensor:
    """H-O-H angle (rad) of each molecule from its O->H vectors."""
    # atan2(|d1 x d2|, d1 . d2) is accurate (and differentiable) at all angles, unlike acos.
    return torch.atan2(torch.linalg.norm(torch.linalg.cross(d1, d2), dim=-1), torch.sum(d1 * d2, dim=-1))


def bend_energy(d1: torch.Tensor, d2: torch.Tensor, p: QTIP4PFParameters) -> torch.Tensor:
    """H-O-H bend energy (eV): sum over molecules of (k_theta / 2) (theta - theta_eq)^2."""
    return 0.5 * p.k_theta * torch.sum((bend_angle(d1, d2) - p.theta_eq) ** 2)


def pair_distances(
    neighbor_list: NeighborList, points: torch.Tensor, cell: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Half list of pairs (each once, periodic images included) of ``points`` within the list's cutoff (A).

    ``neighbor_list`` is a ``vesin.NeighborList`` (half list). The pairs and their integer cell
    shifts come from vesin (no gradient); the distances are recomputed in torch as
    ``|x_j - x_i + S @ cell|`` so that they carry gradients with respect to ``points`` and
    ``cell``. Returns ``(indices (P, 2) int64, distances (P,) A)``.
    """
    i, j, s = neighbor_list.compute(points.detach().cpu().numpy(), cell.detach().cpu().numpy(), True, "ijS")
    i = torch.from_numpy(i.astype(np.int64))
    j = torch.from_numpy(j.astype(np.int64))
    shifts = torch.from_numpy(s.astype(np.float64)).to(points.dtype)
    vectors = points[j] - points[i] + shifts @ cell
    return torch.stack([i, j], dim=1), torch.linalg.norm(vectors, dim=-1)


def lennard_jones_energy(oo_distances: torch.Tensor, p: QTIP4PFParameters) -> torch.Tensor:
    """O-O Lennard-Jones energy (eV), sum of 4 eps [(sigma/r)^12 - (sigma/r)^6] over pairs with r < 9 A (no shift)."""
    r = oo_distances[oo_distances < p.lj_cutoff]
    sr6 = (p.sigma / r) ** 6
    return 4.0 * p.epsilon * torch.sum(sr6 * sr6 - sr6)


def charge_sites(
    positions: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor, p: QTIP4PFParameters
) -> tuple[torch.Tensor, torch.Tensor]:
    """Charge sites ordered (H1, H2, M) per molecule (A) and their charges (n_sites, 1) in e.

    The H sites are O + d1 and O + d2 (the molecule made whole), and
    ``M = gamma O + (1 - gamma)/2 (H1 + H2) = O + (1 - gamma)/2 (d1 + d2)``.
    """
    o = positions[0::3]
    m = o + 0.5 * (1.0 - p.gamma) * (d1 + d2)
    sites = torch.stack([o + d1, o + d2, m], dim=1).reshape(-1, 3)
    q = torch.tensor([p.q_h, p.q_h, p.q_m], dtype=positions.dtype).repeat(len(o)).unsqueeze(1)
    return sites, q


def excluded_coulomb_energy(d1: torch.Tensor, d2: torch.Tensor, p: QTIP4PFParameters) -> torch.Tensor:
    """Bare Coulomb energy (eV) of the excluded intramolecular pairs H1-H2, H1-M, H2-M of all molecules."""
    dm = 0.5 * (1.0 - p.gamma) * (d1 + d2)  # O->M
    r_hh = torch.linalg.norm(d1 - d2, dim=-1)
    r_h1m = torch.linalg.norm(d1 - dm, dim=-1)
    r_h2m = torch.linalg.norm(d2 - dm, dim=-1)
    return COULOMB_EV_A * torch.sum(p.q_h * p.q_h / r_hh + p.q_h * p.q_m * (1.0 / r_h1m + 1.0 / r_h2m))


def total_dipole(positions: np.ndarray, cell: np.ndarray | Sequence[float], p: QTIP4PFParameters | None = None):
    """Total dipole moment (e A, (3,)) of the q-TIP4P/f charges, each molecule made whole around its O."""
    p = p or QTIP4PFParameters()
    pos = torch.as_tensor(np.asarray(positions, dtype=float), dtype=DTYPE)
    cell_matrix = torch.diag(torch.as_tensor(orthorhombic_lengths(cell), dtype=DTYPE))
    d1, d2 = intramolecular_vectors(pos, cell_matrix)
    sites, q = charge_sites(pos, d1, d2, p)
    return (q * sites).sum(dim=0).numpy()
