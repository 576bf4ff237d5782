"""The q-TIP4P/f model: energy (eV), forces (eV/A) and stress (eV/A^3) of periodic water (A, e).

:class:`QTIP4PF` evaluates the four terms of the package docstring (O-H stretch, H-O-H bend,
O-O Lennard-Jones truncated at 9 A, Coulomb by Ewald summation with the intramolecular pairs
excluded) two ways: :meth:`QTIP4PF.energy_terms` in torch (torch-pme's Ewald sum,
differentiable, used for the stress by autograd), and the fast path behind
:meth:`QTIP4PF.energy_forces`, :meth:`QTIP4PF.energy_forces_batch` and
:meth:`QTIP4PF.energy_breakdown`: numpy with analytic forces, the same real-space pairs
(vesin) and the reciprocal sum over the same k vectors taken over half of them
(:class:`~actionmd.potentials.qtip4pf.ewald.ReciprocalSum`). The two agree to ~1e-14
relative (tested to 1e-9). Forces ``F = -dE/dx`` act on O and H only: the energy is a function
of the O and H positions, so the force on the massless M site is redistributed onto O and the
H atoms with the weights ``gamma, (1 - gamma)/2, (1 - gamma)/2``. Everything is float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from vesin import NeighborList

from actionmd.potentials.qtip4pf.ewald import ReciprocalSum, kvector_indices, pair_indices, scatter_pair_gradient
from actionmd.potentials.qtip4pf.parameters import (
    COULOMB_EV_A,
    DTYPE,
    QTIP4PFParameters,
    check_atoms,
    orthorhombic_lengths,
)
from actionmd.potentials.qtip4pf.terms import (
    bend_energy,
    charge_sites,
    excluded_coulomb_energy,
    intramolecular_vectors,
    lennard_jones_energy,
    pair_distances,
    stretch_energy,
)


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
        import torchpme  # here, not at the top: 1.2 s to import (1.1-1.6 s measured), needed once a model is built

        if min(ewald_cutoff, smearing, lr_wavelength) <= 0 or skin < 0:
            raise ValueError("ewald_cutoff, smearing and lr_wavelength must be positive and skin non-negative")
        self.parameters = parameters or QTIP4PFParameters()
        self.ewald_cutoff = float(ewald_cutoff)
        self.smearing = float(smearing)
        self.lr_wavelength = float(lr_wavelength)
        potential = torchpme.CoulombPotential(smearing=self.smearing, prefactor=COULOMB_EV_A)
        self._ewald = torchpme.EwaldCalculator(potential, lr_wavelength=self.lr_wavelength).to(dtype=DTYPE)
        self._site_list = NeighborList(cutoff=self.ewald_cutoff, full_list=False, skin=skin, n_threads=n_threads)
        self._oxygen_list = NeighborList(
            cutoff=self.parameters.lj_cutoff, full_list=False, skin=skin, n_threads=n_threads
        )
        self._kvector_cache: tuple[tuple[float, ...], torch.Tensor] | None = None
        self._reciprocal_cache: tuple[tuple[float, ...], ReciprocalSum] | None = None
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

    def _reciprocal_sum(self, lengths: np.ndarray) -> ReciprocalSum:
        """The reciprocal sum of the box ``lengths`` (A), built once per box and cached."""
        key = tuple(lengths.tolist())
        if self._reciprocal_cache is None or self._reciprocal_cache[0] != key:
            self._reciprocal_cache = (key, ReciprocalSum(lengths, self.k_cutoff, self.smearing))
        return self._reciprocal_cache[1]

    def _neighbor_lists(self, replica: int) -> tuple[NeighborList, NeighborList]:
        """(site list, oxygen list) of replica ``replica`` (each keeps its own Verlet cache)."""
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
        go += scatter_pair_gradient(n_mol, *pair_indices(i, j), dlj)

        # Coulomb: Ewald sum over the sites (H1, H2, M per molecule) minus the excluded pairs
        c = 0.5 * (1.0 - p.gamma)
        dm = c * (d1 + d2)
        sites = np.stack([o + d1, o + d2, o + dm], axis=1).reshape(-1, 3)
        charges = np.tile([p.q_h, p.q_h, p.q_m], n_mol)
        # real space: vesin returns exactly the pairs closer than the cutoff (no extra filtering)
        i, j, r, vec = site_list.compute(sites, np.diag(lengths), True, "ijdD", copy=False)
        i, j = pair_indices(i, j)
        alpha = 1.0 / (math.sqrt(2.0) * self.smearing)
        qq = charges[i]
        qq *= charges[j]
        ar = alpha * r
        screened = torch.erfc(torch.from_numpy(ar)).numpy()  # torch's erfc is faster than scipy's
        screened /= r
        screened *= qq
        real = COULOMB_EV_A * float(np.sum(screened))  # (no BLAS dot: see ReciprocalSum)
        # d/dr [erfc(a r) / r] = -(erfc(a r) / r + (2 a / sqrt(pi)) exp(-a^2 r^2)) / r
        ar *= ar
        np.negative(ar, out=ar)
        dv_dr = np.exp(ar, out=ar)
        dv_dr *= qq
        dv_dr *= 2.0 * alpha / math.sqrt(math.pi)
        dv_dr += screened
        dv_dr /= r * r
        dv_dr *= -COULOMB_EV_A
        g_sites = scatter_pair_gradient(len(sites), i, j, np.multiply(vec.T, dv_dr, out=np.empty((3, len(r)))))
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
        pos = torch.as_tensor(positions, dtype=DTYPE).detach().clone()
        if pos.ndim != 2 or pos.shape[1] != 3:
            raise ValueError(f"positions must have shape (N, 3), got {tuple(pos.shape)}")
        check_atoms(pos.shape[0], atomic_numbers)
        cell_matrix = torch.diag(torch.as_tensor(orthorhombic_lengths(cell), dtype=DTYPE))
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
        strain = torch.zeros((3, 3), dtype=DTYPE, requires_grad=True)
        deform = torch.eye(3, dtype=DTYPE) + 0.5 * (strain + strain.T)
        energy = sum(self.energy_terms(pos @ deform, cell_matrix @ deform).values())
        grad, dstrain = torch.autograd.grad(energy, (pos, strain))
        volume = float(torch.det(cell_matrix))
        return energy.item(), -grad.numpy(), dstrain.numpy() / volume
