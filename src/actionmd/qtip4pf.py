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
minimum-image intramolecular vectors are functions of them), so that forces from autograd,
``F = -dE/dx``, redistribute the force on M onto O and the H atoms with the weights
``gamma, (1 - gamma)/2, (1 - gamma)/2`` automatically. Everything is float64.

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
    the exact self term). One energy + forces of 128 molecules takes 35-55 ms on one (busy) CPU
    thread, about 2/3 of it in torch-pme's reciprocal sum. The LJ cutoff (9 A) is part of the
    model, not a convergence parameter.

    ``skin`` (A) enables vesin's Verlet caching: the pair topology is rebuilt only when an atom
    has moved more than skin/2, the pairs are still filtered to the exact cutoffs at every call,
    so results do not depend on it. ``n_threads`` is passed to vesin (torch uses its own setting).
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
        from vesin import NeighborList

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

    def energy_breakdown(
        self, positions: np.ndarray | torch.Tensor, cell, atomic_numbers: Sequence[int] | np.ndarray | None = None
    ) -> dict[str, float]:
        """Energy terms in eV: ``stretch``, ``bend``, ``lj``, ``coulomb`` and their sum ``total``."""
        pos, cell_matrix = self._inputs(positions, cell, atomic_numbers)
        with torch.no_grad():
            terms = {k: float(v) for k, v in self.energy_terms(pos, cell_matrix).items()}
        terms["total"] = sum(terms.values())
        return terms

    def energy_forces(
        self, positions: np.ndarray | torch.Tensor, cell, atomic_numbers: Sequence[int] | np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """Total energy (eV) and forces (N, 3) eV/A = -dE/dpositions, for positions (N, 3) A and cell (3,)/(3, 3) A."""
        pos, cell_matrix = self._inputs(positions, cell, atomic_numbers)
        pos.requires_grad_(True)
        energy = sum(self.energy_terms(pos, cell_matrix).values())
        (grad,) = torch.autograd.grad(energy, pos)
        return energy.item(), -grad.numpy()

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
