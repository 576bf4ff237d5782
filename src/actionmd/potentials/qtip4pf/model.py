"""The q-TIP4P/f flexible water model (Habershon, Markland, Manolopoulos, J. Chem. Phys. 131, 024501, 2009).

Energy and forces of periodic liquid water, as the paper used it through i-PI's driver
(``i-pi-driver -m qtip4pf``). Atoms are ordered O H H per molecule and the cell is
orthorhombic. Units: positions and lengths A, energies eV, forces eV/A, stress eV/A^3,
charges e, masses u.

The energy is the sum of four terms:

* O-H stretch (quartic expansion of a Morse potential) per bond,
  ``V = D_r [a^2 dr^2 - a^3 dr^3 + (7/12) a^4 dr^4]`` with ``dr = r_OH - r_eq``;
* H-O-H bend ``V = (k_theta / 2) (theta - theta_eq)^2`` per molecule;
* O-O Lennard-Jones ``4 eps [(sigma/r)^12 - (sigma/r)^6]`` between different molecules
  (and periodic images), truncated at 9 A without shift and without tail correction;
* Coulomb between point charges q_H on each H and q_M on the massless site
  ``M = gamma O + (1 - gamma)/2 (H1 + H2)``, by Ewald summation over all charges with the
  three intramolecular pairs (H1-H2, H1-M, H2-M) excluded. Interactions of a molecule with
  its own periodic images are kept (they are intermolecular). The Ewald sum uses tin-foil
  boundary conditions (k = 0 term dropped); the cell is neutral, so no background term.

The exclusion is done by subtracting the bare Coulomb energy ``k_e q_i q_j / r_ij`` of each
excluded pair from the Ewald energy of all charges: the Ewald sum counts exactly that for a
pair of the same cell (erfc part in real space + erf part in reciprocal space), and the
self-energy of each Gaussian is removed by torch-pme itself.

The energy is written as a function of the O and H positions only (the M site and the
minimum-image intramolecular vectors are functions of them), so that forces ``F = -dE/dx``
redistribute the force on M onto O and the H atoms with the weights
``gamma, (1 - gamma)/2, (1 - gamma)/2``. Everything is float64.

Two implementations of the same energy: :meth:`QTIP4PF.energy_terms` in torch (torch-pme's
Ewald sum, differentiable, used for the stress by autograd), and the fast path behind
:meth:`QTIP4PF.energy_forces`, :meth:`QTIP4PF.energy_forces_batch` and
:meth:`QTIP4PF.energy_breakdown`: numpy with analytic forces, the same real-space pairs
(vesin), and the reciprocal sum over the same k vectors taken over half of them
(:class:`_ReciprocalSum`). The two agree to ~1e-14 relative (tested to 1e-9).

Constants: 1 kcal/mol = 0.0433641043 eV; Coulomb constant k_e = torchpme.prefactors.eV_A
= 14.399645478425667 eV A / e^2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from vesin import NeighborList

#: 1 kcal/mol in eV.
KCAL_MOL_TO_EV = 0.0433641043
#: Coulomb constant k_e = 1 / (4 pi eps_0) in eV A / e^2 (torch-pme's ``prefactors.eV_A``).
COULOMB_EV_A = 14.399645478425667
#: Molar mass of H2O in g/mol and Avogadro's number in 1/mol (for :func:`water_box`).
WATER_MOLAR_MASS = 18.01528
AVOGADRO = 6.02214076e23

_DTYPE = torch.float64


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


# --------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# energy terms (torch, differentiable)
# --------------------------------------------------------------------------------------


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


def pair_distances(neighbor_list, points: torch.Tensor, cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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


def kvector_indices(cell: np.ndarray, k_cutoff: float) -> torch.Tensor:
    """Integer triples n (M, 3) of the reciprocal vectors k = 2 pi n @ inverse(cell)^T with 0 < |k| <= k_cutoff.

    ``cell`` (3, 3) in A (rows are the cell vectors), ``k_cutoff`` in 1/A. Both k and -k are
    included (torch-pme's Ewald sum runs over the full set). Since n_a = k . a_a / (2 pi), the
    search box |n_a| <= k_cutoff |a_a| / (2 pi) contains the whole sphere.
    """
    cell = np.asarray(cell, dtype=float)
    n_max = np.floor(k_cutoff * np.linalg.norm(cell, axis=1) / (2.0 * math.pi)).astype(int)
    axes = [torch.arange(-m, m + 1, dtype=_DTYPE) for m in n_max]
    n = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    reciprocal = 2.0 * math.pi * torch.linalg.inv(torch.as_tensor(cell, dtype=_DTYPE)).T
    k_sq = torch.sum((n @ reciprocal) ** 2, dim=-1)
    return n[(k_sq > 0) & (k_sq <= k_cutoff**2 * (1.0 + 1e-12))]


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
    pos = torch.as_tensor(np.asarray(positions, dtype=float), dtype=_DTYPE)
    cell_matrix = torch.diag(torch.as_tensor(orthorhombic_lengths(cell), dtype=_DTYPE))
    d1, d2 = intramolecular_vectors(pos, cell_matrix)
    sites, q = charge_sites(pos, d1, d2, p)
    return (q * sites).sum(dim=0).numpy()


# --------------------------------------------------------------------------------------
# fast path: numpy with analytic forces
# --------------------------------------------------------------------------------------


class _ReciprocalSum:
    """Reciprocal Ewald energy and forces over the half-space of the k sphere of an orthorhombic cell (numpy).

    The k set is exactly :func:`kvector_indices`' (so the result equals torch-pme's sum over it
    to rounding), kept only for its canonical half (n_x > 0, or n_x = 0 and n_y > 0, or
    n_x = n_y = 0 and n_z > 0), with weight 2 for the partner -k:
    ``E = (1 / 2V) sum_k G(k) |S(k)|^2 = sum_{k in half} g_k |S(k)|^2`` with
    ``G(k) = k_e 4 pi exp(-sigma^2 k^2 / 2) / k^2``, ``g_k = G(k) / V`` and the structure factor
    ``S(k) = sum_j q_j exp(i k . r_j)``. The phase factors are products of per-axis ones,
    ``exp(i 2 pi n_x x / L_x) exp(i 2 pi n_y y / L_y) exp(i 2 pi n_z z / L_z)``: the (n_x, n_y)
    products for each site (N x P) times the z factors (N x N_z) give S on the (P, N_z) grid of
    the half box as one complex matrix product, and the forces
    ``F_j = 2 q_j Im(sum_k g_k conj(S(k)) k exp(i k . r_j))`` as another (weights zero off the
    sphere). The Gaussian self-energy and the background term are not included.
    """

    def __init__(self, lengths: np.ndarray, k_cutoff: float, smearing: float) -> None:
        lengths = np.asarray(lengths, dtype=float)
        n = kvector_indices(np.diag(lengths), k_cutoff).numpy().astype(np.int64)
        half = (n[:, 0] > 0) | ((n[:, 0] == 0) & ((n[:, 1] > 0) | ((n[:, 1] == 0) & (n[:, 2] > 0))))
        n = n[half]
        self.lengths = lengths
        self.n_max = np.abs(n).max(axis=0) if len(n) else np.zeros(3, dtype=np.int64)
        mx, my, mz = (int(v) for v in self.n_max)
        k = 2.0 * math.pi * n / lengths
        k_sq = np.sum(k**2, axis=1)
        weights = np.zeros(((mx + 1) * (2 * my + 1), 2 * mz + 1))
        rows = n[:, 0] * (2 * my + 1) + n[:, 1] + my
        weights[rows, n[:, 2] + mz] = COULOMB_EV_A * 4.0 * math.pi * np.exp(-0.5 * smearing**2 * k_sq) / k_sq
        weights /= float(np.prod(lengths))
        nx, ny = (a.ravel() for a in np.meshgrid(np.arange(mx + 1), np.arange(-my, my + 1), indexing="ij"))
        used = weights.any(axis=1)
        self.weights = weights[used]  # (P, N_z)
        self.nx, self.ny = nx[used], ny[used]
        self.kx = (2.0 * math.pi / lengths[0]) * self.nx
        self.ky = (2.0 * math.pi / lengths[1]) * self.ny
        self.kz = (2.0 * math.pi / lengths[2]) * np.arange(-mz, mz + 1)

    def energy_forces(self, sites: np.ndarray, charges: np.ndarray) -> tuple[float, np.ndarray]:
        """Energy (eV) and forces (N, 3) eV/A of point charges (N,) e at ``sites`` (N, 3) A."""
        mx, my, mz = (int(v) for v in self.n_max)
        # powers exp(i 2 pi n x_a / L_a), n = 0..max, by repeated multiplication (error ~n ulp)
        base = np.exp(1j * (sites * (2.0 * math.pi / self.lengths)))
        powers = np.empty((len(sites), 3, max(mx, my, mz) + 1), dtype=complex)
        powers[:, :, 0] = 1.0
        for n in range(1, powers.shape[2]):
            np.multiply(powers[:, :, n - 1], base, out=powers[:, :, n])
        ex = powers[:, 0, : mx + 1]
        ey = np.concatenate([powers[:, 1, my:0:-1].conj(), powers[:, 1, : my + 1]], axis=1)
        ez = np.concatenate([powers[:, 2, mz:0:-1].conj(), powers[:, 2, : mz + 1]], axis=1)
        exy = ex[:, self.nx] * ey[:, self.ny + my]  # (N, P)
        # complex matrix products in torch (its thread setting), not numpy's BLAS: OpenBLAS' own
        # threads spin after each call and slow everything else down on a busy machine
        s = (torch.from_numpy(exy).T @ torch.from_numpy(charges[:, None] * ez)).numpy()  # (P, N_z)
        energy = float(np.sum(self.weights * (s.real**2 + s.imag**2)))
        w = self.weights * s.conj()
        wk = np.concatenate([w * self.kx[:, None], w * self.ky[:, None], w * self.kz[None, :]], axis=1)
        t = (torch.from_numpy(exy) @ torch.from_numpy(wk)).numpy().reshape(len(charges), 3, -1)
        forces = 2.0 * charges[:, None] * np.einsum("nak,nk->na", t, ez).imag
        return energy, forces


def _scatter_pair_gradient(n: int, i: np.ndarray, j: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Gradient (n, 3) of a pair sum with dE/dx_j = g and dE/dx_i = -g for pairs (i, j); ``g`` is (3, P)."""
    out = np.empty((n, 3))
    for a in range(3):
        out[:, a] = np.bincount(j, g[a], minlength=n) - np.bincount(i, g[a], minlength=n)
    return out


def _pair_indices(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """vesin's uint64 pair indices as intp (a view: the values are far below 2^63)."""
    return i.view(np.intp), j.view(np.intp)


# --------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------


class QTIP4PF:
    """q-TIP4P/f energy, forces and stress of periodic water in an orthorhombic cell (A, eV, e).

    Ewald parameters (torch-pme ``EwaldCalculator`` with ``CoulombPotential``):

    * ``ewald_cutoff`` (A): real-space cutoff of the erfc part;
    * ``smearing`` (A): width sigma of the Gaussian charges, real-space part
      ``erfc(r / (sqrt(2) sigma)) / r`` (the usual Ewald alpha = 1 / (sqrt(2) sigma));
    * ``lr_wavelength`` (A): the reciprocal sum keeps every k vector with wavelength
      ``2 pi / |k| >= lr_wavelength``, i.e. the sphere ``|k| <= 2 pi / lr_wavelength``
      (torch-pme's documented meaning; the k vectors are built here and passed to torch-pme,
      whose own default keeps a cube of |k_a| up to about pi / lr_wavelength instead).

    The defaults (9 A, 1.7 A, 2.1 A, i.e. |k| <= 3.0 1/A) were measured against a tight
    reference (cutoff 14 A, smearing 1.8 A, lr_wavelength 1.0 A, itself equal to within 4e-13
    eV per molecule to 15 A / 2.0 A / 0.9 A) on distorted 64- and 125-molecule boxes at
    0.997 g/cm^3: Coulomb energy error 7e-7 eV per molecule, force error 4e-6 eV/A (max over
    components), 1e-6 eV/A (RMS). For an isolated molecule in a 60 A box the error is a
    configuration-independent 1.6e-6 eV (the reciprocal sum truncated at |k| <= 3 1/A against
    the exact self term). One :meth:`energy_forces` of 64 / 128 molecules takes about 2.5 / 5 ms
    on one CPU thread (AMD EPYC, shared; median ~7 ms for 128 during MD, where vesin's list
    rebuilds add ~1 ms per step on average), against 18 / 36-55 ms for torch-pme + autograd
    of :meth:`energy_terms`. The LJ cutoff (9 A) is part of the model, not a convergence parameter.

    ``skin`` (A) enables vesin's Verlet caching: the pair topology is rebuilt only when an atom
    has moved more than skin/2, the pairs are still filtered to the exact cutoffs at every call,
    so results do not depend on it. ``n_threads`` is passed to vesin (torch uses its own setting;
    the fast path does its complex matrix products and erfc in torch, everything else in
    single-threaded numpy).
    """

    def __init__(
        self,
        ewald_cutoff: float = 9.0,
        smearing: float = 1.7,
        lr_wavelength: float = 2.1,
        parameters: QTIP4PFParameters | None = None,
        skin: float = 1.0,
        n_threads: int = 1,
    ) -> None:
        import torchpme

        if min(ewald_cutoff, smearing, lr_wavelength) <= 0 or skin < 0:
            raise ValueError("ewald_cutoff, smearing and lr_wavelength must be positive and skin non-negative")
        self.parameters = parameters or QTIP4PFParameters()
        self.ewald_cutoff = float(ewald_cutoff)
        self.smearing = float(smearing)
        self.lr_wavelength = float(lr_wavelength)
        potential = torchpme.CoulombPotential(smearing=self.smearing, prefactor=COULOMB_EV_A)
        self._ewald = torchpme.EwaldCalculator(potential, lr_wavelength=self.lr_wavelength).to(dtype=_DTYPE)
        self._site_list = NeighborList(cutoff=self.ewald_cutoff, full_list=False, skin=skin, n_threads=n_threads)
        self._oxygen_list = NeighborList(
            cutoff=self.parameters.lj_cutoff, full_list=False, skin=skin, n_threads=n_threads
        )
        self._kvector_cache: tuple[tuple[float, ...], torch.Tensor] | None = None
        self._reciprocal_cache: tuple[tuple[float, ...], _ReciprocalSum] | None = None
        self._skin, self._n_threads = float(skin), int(n_threads)
        self._replica_lists: list[tuple[NeighborList, NeighborList]] = []

    @property
    def k_cutoff(self) -> float:
        """Reciprocal-space cutoff |k| <= 2 pi / lr_wavelength in 1/A."""
        return 2.0 * math.pi / self.lr_wavelength

    # ---- differentiable energy ---------------------------------------------------------

    def kvectors(self, cell: torch.Tensor) -> torch.Tensor:
        """Reciprocal vectors (M, 3) in 1/A of the sphere |k| <= k_cutoff, differentiable in ``cell``.

        The integer triples are cached per cell (the cell is fixed in NVE/NVT runs); the vectors
        k = 2 pi n @ inverse(cell)^T carry the gradient with respect to a strained cell (stress).
        """
        key = tuple(cell.detach().numpy().ravel().tolist())
        if self._kvector_cache is None or self._kvector_cache[0] != key:
            self._kvector_cache = (key, kvector_indices(cell.detach().numpy(), self.k_cutoff))
        return 2.0 * math.pi * self._kvector_cache[1] @ torch.linalg.inv(cell).T

    def ewald_energy(self, sites: torch.Tensor, charges: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Ewald energy (eV) of all point charges (tin-foil boundary), self-energy removed, no exclusions.

        torch-pme returns per-site potentials already halved (``V_i = 1/2 sum_j q_j v(r_ij)``
        over the real-space pairs plus the reciprocal part minus the Gaussian self term), so the
        energy is ``sum_i q_i V_i``.
        """
        idx, dist = pair_distances(self._site_list, sites, cell)
        keep = dist < self.ewald_cutoff
        kvectors = self.kvectors(cell)
        potentials = self._ewald(charges, cell, sites, idx[keep], dist[keep], kvectors=kvectors)
        return torch.sum(charges * potentials)

    def energy_terms(self, positions: torch.Tensor, cell: torch.Tensor) -> dict[str, torch.Tensor]:
        """Energy terms (eV, differentiable tensors): ``stretch``, ``bend``, ``lj``, ``coulomb``.

        ``positions`` (N, 3) A and ``cell`` (3, 3) A (rows are cell vectors), float64 tensors; no
        input checks here. The formulas hold for a slightly strained cell too (used for the
        stress); the public methods accept orthorhombic cells only, as the i-PI driver does.
        """
        p = self.parameters
        d1, d2 = intramolecular_vectors(positions, cell)
        sites, charges = charge_sites(positions, d1, d2, p)
        _, oo_distances = pair_distances(self._oxygen_list, positions[0::3], cell)
        return {
            "stretch": stretch_energy(d1, d2, p),
            "bend": bend_energy(d1, d2, p),
            "lj": lennard_jones_energy(oo_distances, p),
            "coulomb": self.ewald_energy(sites, charges, cell) - excluded_coulomb_energy(d1, d2, p),
        }

    # ---- fast path: numpy, analytic forces ----------------------------------------------

    def _reciprocal_sum(self, lengths: np.ndarray) -> _ReciprocalSum:
        key = tuple(lengths.tolist())
        if self._reciprocal_cache is None or self._reciprocal_cache[0] != key:
            self._reciprocal_cache = (key, _ReciprocalSum(lengths, self.k_cutoff, self.smearing))
        return self._reciprocal_cache[1]

    def _neighbor_lists(self, replica: int):
        """(site list, oxygen list) of replica ``replica`` (each keeps its own Verlet cache)."""
        from vesin import NeighborList

        if replica == 0:
            return self._site_list, self._oxygen_list
        while len(self._replica_lists) < replica:
            self._replica_lists.append(
                (
                    NeighborList(cutoff=self.ewald_cutoff, full_list=False, skin=self._skin, n_threads=self._n_threads),
                    NeighborList(
                        cutoff=self.parameters.lj_cutoff, full_list=False, skin=self._skin, n_threads=self._n_threads
                    ),
                )
            )
        return self._replica_lists[replica - 1]

    def _terms_and_gradient(
        self, x: np.ndarray, lengths: np.ndarray, replica: int = 0
    ) -> tuple[dict[str, float], np.ndarray]:
        """Energy terms (eV) and the gradient dE/dx (N, 3) eV/A of positions ``x`` (N, 3) A in the box ``lengths``.

        The same energy as :meth:`energy_terms` (to rounding), in numpy with analytic derivatives:
        the gradient is accumulated with respect to the O positions and the minimum-image O->H
        vectors d1, d2 (the sites are H1 = O + d1, H2 = O + d2, M = O + c (d1 + d2) with
        c = (1 - gamma) / 2), then mapped to the atoms (dE/dx_O = dE/dO - dE/dd1 - dE/dd2).
        """
        p = self.parameters
        site_list, oxygen_list = self._neighbor_lists(replica)
        n_mol = len(x) // 3
        o = x[0::3]
        d1 = x[1::3] - o
        d1 -= np.round(d1 / lengths) * lengths
        d2 = x[2::3] - o
        d2 -= np.round(d2 / lengths) * lengths

        # O-H stretch
        r1 = np.sqrt(np.einsum("ma,ma->m", d1, d1))
        r2 = np.sqrt(np.einsum("ma,ma->m", d2, d2))
        x1, x2 = p.alpha_r * (r1 - p.r_eq), p.alpha_r * (r2 - p.r_eq)
        stretch = p.d_r * float(np.sum(x1**2 - x1**3 + (7.0 / 12.0) * x1**4 + x2**2 - x2**3 + (7.0 / 12.0) * x2**4))
        g1 = (p.d_r * p.alpha_r * (2.0 * x1 - 3.0 * x1**2 + (7.0 / 3.0) * x1**3) / r1)[:, None] * d1
        g2 = (p.d_r * p.alpha_r * (2.0 * x2 - 3.0 * x2**2 + (7.0 / 3.0) * x2**3) / r2)[:, None] * d2

        # H-O-H bend: dtheta/dd1 = (cos d1 / r1^2 - d2 / (r1 r2)) r1 r2 / |d1 x d2| = (dot d1 / r1^2 - d2) / |d1 x d2|
        dot = np.einsum("ma,ma->m", d1, d2)
        cross = np.linalg.norm(np.cross(d1, d2), axis=1)
        dtheta = np.arctan2(cross, dot) - p.theta_eq
        bend = 0.5 * p.k_theta * float(np.sum(dtheta**2))
        scale = (p.k_theta * dtheta / cross)[:, None]
        g1 += scale * ((dot / r1**2)[:, None] * d1 - d2)
        g2 += scale * ((dot / r2**2)[:, None] * d2 - d1)
        go = np.zeros_like(o)

        # O-O Lennard-Jones (truncated, unshifted)
        i, j, r_oo, vec = oxygen_list.compute(o, np.diag(lengths), True, "ijdD", copy=False)
        sr6 = (p.sigma / r_oo) ** 6
        lj = 4.0 * p.epsilon * float(np.sum(sr6 * sr6 - sr6))
        dlj = np.multiply(
            vec.T, 4.0 * p.epsilon * (6.0 * sr6 - 12.0 * sr6 * sr6) / r_oo**2, out=np.empty((3, len(r_oo)))
        )
        go += _scatter_pair_gradient(n_mol, *_pair_indices(i, j), dlj)

        # Coulomb: Ewald sum over the sites (H1, H2, M per molecule) minus the excluded pairs
        c = 0.5 * (1.0 - p.gamma)
        dm = c * (d1 + d2)
        sites = np.stack([o + d1, o + d2, o + dm], axis=1).reshape(-1, 3)
        charges = np.tile([p.q_h, p.q_h, p.q_m], n_mol)
        # real space: vesin returns exactly the pairs closer than the cutoff (no extra filtering)
        i, j, r, vec = site_list.compute(sites, np.diag(lengths), True, "ijdD", copy=False)
        i, j = _pair_indices(i, j)
        alpha = 1.0 / (math.sqrt(2.0) * self.smearing)
        qq = charges[i]
        qq *= charges[j]
        ar = alpha * r
        screened = torch.erfc(torch.from_numpy(ar)).numpy()  # torch's erfc is faster than scipy's
        screened /= r
        screened *= qq
        real = COULOMB_EV_A * float(np.sum(screened))  # (no BLAS dot: see _ReciprocalSum)
        # d/dr [erfc(a r) / r] = -(erfc(a r) / r + (2 a / sqrt(pi)) exp(-a^2 r^2)) / r
        ar *= ar
        np.negative(ar, out=ar)
        dv_dr = np.exp(ar, out=ar)
        dv_dr *= qq
        dv_dr *= 2.0 * alpha / math.sqrt(math.pi)
        dv_dr += screened
        dv_dr /= r * r
        dv_dr *= -COULOMB_EV_A
        g_sites = _scatter_pair_gradient(len(sites), i, j, np.multiply(vec.T, dv_dr, out=np.empty((3, len(r)))))
        reciprocal, f_rec = self._reciprocal_sum(lengths).energy_forces(sites, charges)
        g_sites -= f_rec
        volume = float(np.prod(lengths))
        self_energy = -0.5 * COULOMB_EV_A * math.sqrt(2.0 / math.pi) / self.smearing * float(np.sum(charges**2))
        background = -COULOMB_EV_A * math.pi * self.smearing**2 * float(np.sum(charges)) ** 2 / volume
        excluded = 0.0
        for v, qq_ex, w_a, w_b in (
            (d1 - d2, p.q_h * p.q_h, 1.0, -1.0),  # H1-H2, dv/dd1 = 1, dv/dd2 = -1
            (d1 - dm, p.q_h * p.q_m, 1.0 - c, -c),  # H1-M
            (d2 - dm, p.q_h * p.q_m, -c, 1.0 - c),  # H2-M
        ):
            rv = np.sqrt(np.einsum("ma,ma->m", v, v))
            excluded += COULOMB_EV_A * qq_ex * float(np.sum(1.0 / rv))
            gv = (COULOMB_EV_A * qq_ex / rv**3)[:, None] * v  # -d(bare)/dv, the gradient of -bare
            g1 += w_a * gv
            g2 += w_b * gv
        g_sites = g_sites.reshape(n_mol, 3, 3)
        go += g_sites.sum(axis=1)
        g1 += g_sites[:, 0] + c * g_sites[:, 2]
        g2 += g_sites[:, 1] + c * g_sites[:, 2]

        gradient = np.empty_like(x)
        gradient[0::3] = go - g1 - g2
        gradient[1::3] = g1
        gradient[2::3] = g2
        terms = {
            "stretch": stretch,
            "bend": bend,
            "lj": lj,
            "coulomb": real + reciprocal + self_energy + background - excluded,
        }
        return terms, gradient

    # ---- public numpy interface --------------------------------------------------------

    @staticmethod
    def _inputs(
        positions: np.ndarray | torch.Tensor, cell, atomic_numbers: Sequence[int] | np.ndarray | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Checked float64 tensors: positions (N, 3) A and the diagonal cell matrix (3, 3) A."""
        pos = torch.as_tensor(positions, dtype=_DTYPE).detach().clone()
        if pos.ndim != 2 or pos.shape[1] != 3:
            raise ValueError(f"positions must have shape (N, 3), got {tuple(pos.shape)}")
        check_atoms(pos.shape[0], atomic_numbers)
        cell_matrix = torch.diag(torch.as_tensor(orthorhombic_lengths(cell), dtype=_DTYPE))
        return pos, cell_matrix

    @staticmethod
    def _checked_arrays(
        positions: np.ndarray | torch.Tensor,
        cell,
        atomic_numbers: Sequence[int] | np.ndarray | None,
        replicas: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Checked float64 arrays: positions (N, 3) A, or (R, N, 3) with ``replicas``, and the edge lengths (3,) A."""
        if isinstance(positions, torch.Tensor):
            positions = positions.detach().cpu().numpy()
        x = np.array(positions, dtype=np.float64, order="C")
        ndim, shape = (3, "(R, N, 3)") if replicas else (2, "(N, 3)")
        if x.ndim != ndim or x.shape[-1] != 3:
            raise ValueError(f"positions must have shape {shape}, got {tuple(x.shape)}")
        check_atoms(x.shape[-2], atomic_numbers)
        return x, orthorhombic_lengths(cell)

    def energy_breakdown(
        self, positions: np.ndarray | torch.Tensor, cell, atomic_numbers: Sequence[int] | np.ndarray | None = None
    ) -> dict[str, float]:
        """Energy terms in eV: ``stretch``, ``bend``, ``lj``, ``coulomb`` and their sum ``total``."""
        x, lengths = self._checked_arrays(positions, cell, atomic_numbers)
        terms, _ = self._terms_and_gradient(x, lengths)
        terms["total"] = sum(terms.values())
        return terms

    def energy_forces(
        self, positions: np.ndarray | torch.Tensor, cell, atomic_numbers: Sequence[int] | np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """Total energy (eV) and forces (N, 3) eV/A = -dE/dpositions, for positions (N, 3) A and cell (3,)/(3, 3) A."""
        x, lengths = self._checked_arrays(positions, cell, atomic_numbers)
        terms, gradient = self._terms_and_gradient(x, lengths)
        return sum(terms.values()), -gradient

    def energy_forces_batch(
        self,
        positions: np.ndarray | torch.Tensor,
        cell,
        atomic_numbers: Sequence[int] | np.ndarray | None = None,
        n_workers: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Energies (R,) eV and forces (R, N, 3) eV/A of R replicas ``positions`` (R, N, 3) A sharing one cell.

        Each replica equals :meth:`energy_forces` of its positions (replica r keeps its own
        neighbour-list cache, so calling this along R trajectories keeps every cache valid).
        ``n_workers > 1`` evaluates replicas in that many threads (numpy, torch and vesin release
        the GIL in their loops); with one torch thread each this uses ``n_workers`` cores.
        """
        x, lengths = self._checked_arrays(positions, cell, atomic_numbers, replicas=True)
        self._reciprocal_sum(lengths)  # build the shared k-space tables once, before any thread
        for r in range(len(x)):
            self._neighbor_lists(r)

        def one(r: int) -> tuple[float, np.ndarray]:
            terms, gradient = self._terms_and_gradient(x[r], lengths, replica=r)
            return sum(terms.values()), gradient

        if n_workers > 1 and len(x) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=n_workers) as pool:
                results = list(pool.map(one, range(len(x))))
        else:
            results = [one(r) for r in range(len(x))]
        energies = np.array([e for e, _ in results])
        forces = -np.stack([g for _, g in results]) if results else np.zeros_like(x)
        return energies, forces

    def energy_forces_stress(
        self, positions: np.ndarray | torch.Tensor, cell, atomic_numbers: Sequence[int] | np.ndarray | None = None
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Energy (eV), forces (N, 3) eV/A and stress (3, 3) eV/A^3 = (1/V) dE/d(strain), ASE's sign convention.

        The strain derivative is taken by autograd of the energy of the homogeneously strained
        system (positions and cell multiplied by 1 + strain) with the neighbour pairs held fixed.
        """
        pos, cell_matrix = self._inputs(positions, cell, atomic_numbers)
        pos.requires_grad_(True)
        strain = torch.zeros((3, 3), dtype=_DTYPE, requires_grad=True)
        deform = torch.eye(3, dtype=_DTYPE) + 0.5 * (strain + strain.T)
        energy = sum(self.energy_terms(pos @ deform, cell_matrix @ deform).values())
        grad, dstrain = torch.autograd.grad(energy, (pos, strain))
        volume = float(torch.det(cell_matrix))
        return energy.item(), -grad.numpy(), dstrain.numpy() / volume


class QTIP4PFCalculator(Calculator):
    """ASE calculator for q-TIP4P/f (energy eV, forces eV/A, stress eV/A^3); atoms O H H per molecule.

    Requires a periodic orthorhombic cell (``pbc`` all True). Keyword arguments other than
    ASE's are passed to :class:`QTIP4PF` (``ewald_cutoff``, ``smearing``, ``lr_wavelength``, ...).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model: QTIP4PF | None = None, **kwargs) -> None:
        model_keys = {"ewald_cutoff", "smearing", "lr_wavelength", "parameters", "skin", "n_threads"}
        model_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in model_keys}
        super().__init__(**kwargs)
        self.model = model or QTIP4PF(**model_kwargs)

    def calculate(self, atoms: Atoms | None = None, properties=("energy",), system_changes=all_changes) -> None:
        """Compute the requested properties (stress only when asked: it costs a second graph)."""
        super().calculate(atoms, properties, system_changes)
        if not np.all(self.atoms.pbc):
            raise ValueError(f"q-TIP4P/f needs a cell periodic in all three directions, got pbc={self.atoms.pbc}")
        args = (self.atoms.positions, np.asarray(self.atoms.cell), self.atoms.numbers)
        if "stress" in properties:
            energy, forces, stress = self.model.energy_forces_stress(*args)
            self.results["stress"] = stress.reshape(9)[[0, 4, 8, 5, 2, 1]]
        else:
            energy, forces = self.model.energy_forces(*args)
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["forces"] = forces


# --------------------------------------------------------------------------------------
# test structures
# --------------------------------------------------------------------------------------


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


def random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rotation matrices (n, 3, 3) uniformly distributed on SO(3) (from random unit quaternions)."""
    q = rng.normal(size=(n, 4))
    w, x, y, z = (q / np.linalg.norm(q, axis=1, keepdims=True)).T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], axis=-1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], axis=-1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=-1),
        ],
        axis=1,
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
    rotated = np.einsum("mab,kb->mka", random_rotations(n_mol, rng), water_molecule())
    positions = (fractional[:, None, :] * (length / n) + rotated).reshape(-1, 3)
    return Atoms("OH2" * n_mol, positions=positions, cell=[length] * 3, pbc=True)
