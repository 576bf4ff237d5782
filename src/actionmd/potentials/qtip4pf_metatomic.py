"""The q-TIP4P/f water potential as an exported metatomic model.

:class:`QTIP4PFModule` computes the same energy as :class:`actionmd.potentials.qtip4pf.QTIP4PF` (see
that module for the physics) as a TorchScript-compatible module following metatomic's
``ModelInterface``, so that any metatomic-aware engine (ASE's ``MetatomicCalculator``,
LAMMPS, i-PI) can run q-TIP4P/f; :func:`export_qtip4pf` wraps it in an
``AtomisticModel`` and saves the TorchScript ``.pt`` file. Forces and stress are not
outputs of the model: engines take them by autograd of the energy with respect to the
positions and the (strained) cell, which the energy is written to allow.

Inputs: periodic systems (pbc all True) with an orthorhombic cell, atoms ordered O H H per
molecule (atomic types 8, 1, 1), positions and cell in A, float64. The model asks the engine
for one half neighbour list of atoms with cutoff ``max(9 A, ewald_cutoff + site_margin)`` and
filters every distance exactly at its own cutoff:

* O-O atom pairs give the Lennard-Jones term (r < 9 A);
* every atom pair (i, j, S) gives the real-space Ewald pair of the charge sites of the two
  atoms (M for an O, the atom itself for an H), with the site vector formed from the atom
  vector ``r_j - r_i + S @ cell`` plus the intramolecular offsets ``O -> M`` (never by
  re-wrapping), kept if shorter than ``ewald_cutoff``, except the pairs of a molecule with
  itself in the image that makes it whole (by minimum image; this is S = 0 only when the
  engine has not wrapped one of its atoms across the cell). The M site is within ``site_margin / 2``
  of its O (checked at every call), so no site pair within the cutoff is missed.

The three intramolecular charge pairs (H1-H2, H1-M, H2-M) of a molecule are left out of the
real-space sum and their reciprocal-space part ``k_e q_i q_j erf(r / (sqrt(2) sigma)) / r`` is
subtracted, which is the same as QTIP4PF's "Ewald energy of all charges minus the bare
Coulomb energy of the excluded pairs". The reciprocal sum runs over the half sphere
``0 < |k| <= 2 pi / lr_wavelength`` (k and -k give the same term), with tin-foil boundary
conditions and the Gaussian self-energy ``k_e q^2 / (sqrt(2 pi) sigma)`` removed, as in
QTIP4PF (the same k set; the results agree to rounding). Intramolecular vectors (O->H1,
O->H2) are taken by minimum image, so molecules may straddle the cell boundary and the engine
may wrap positions.

The per-atom energies (``sample_kind="atom"``) split each term between the atoms it involves:
a bond between its O and H, the bend in thirds, pair terms in halves, the reciprocal and self
terms of a site to its atom (M to O). They sum to the total energy.

The Ewald sum needs all atoms of the periodic system, so the model declares an infinite
``interaction_range`` (metatomic's convention for explicit long-range models): engines must
give it the whole periodic system, not a domain with ghost atoms.
"""

import math
import os
from collections.abc import Sequence

import torch
from metatomic.torch import AtomisticModel, NeighborListOptions, System

from actionmd.potentials.metatomic_energy import AtomicEnergyModule, energy_atomistic_model, save_atomically
from actionmd.potentials.qtip4pf import COULOMB_EV_A, QTIP4PFParameters

#: Extra neighbour-list range (A) beyond the Ewald cutoff: an atom pair's distance differs from
#: its site pair's by at most twice the O -> M distance, which must stay below half of this.
SITE_MARGIN = 0.6

REFERENCE = (
    "S. Habershon, T. E. Markland, D. E. Manolopoulos, 'Competing quantum effects in the dynamics "
    "of a flexible water model', J. Chem. Phys. 131, 024501 (2009), doi:10.1063/1.3167790"
)


class QTIP4PFModule(AtomicEnergyModule):
    """q-TIP4P/f energy (eV) of periodic water, following metatomic's ``ModelInterface``.

    ``ewald_cutoff`` (A), ``smearing`` (A) and ``lr_wavelength`` (A) have the meaning of
    :class:`actionmd.potentials.qtip4pf.QTIP4PF`'s; ``site_margin`` (A) is added to the Ewald cutoff for
    the neighbour list (see :data:`SITE_MARGIN`). Float parameters of the force field come from
    ``parameters`` (defaults: the paper's).
    """

    def __init__(
        self,
        ewald_cutoff: float = 9.0,
        smearing: float = 1.7,
        lr_wavelength: float = 2.1,
        parameters: QTIP4PFParameters | None = None,
        site_margin: float = SITE_MARGIN,
    ) -> None:
        super().__init__()
        if min(ewald_cutoff, smearing, lr_wavelength, site_margin) <= 0:
            raise ValueError("ewald_cutoff, smearing, lr_wavelength and site_margin must be positive")
        p = parameters or QTIP4PFParameters()
        self.ewald_cutoff = float(ewald_cutoff)
        self.smearing = float(smearing)
        self.lr_wavelength = float(lr_wavelength)
        self.site_margin = float(site_margin)
        self.k_cutoff = 2.0 * math.pi / self.lr_wavelength
        self.d_r = float(p.d_r)
        self.alpha_r = float(p.alpha_r)
        self.r_eq = float(p.r_eq)
        self.k_theta = float(p.k_theta)
        self.theta_eq = float(p.theta_eq)
        self.epsilon = float(p.epsilon)
        self.sigma = float(p.sigma)
        self.q_h = float(p.q_h)
        self.q_m = float(p.q_m)
        self.gamma = float(p.gamma)
        self.lj_cutoff = float(p.lj_cutoff)
        self.coulomb = COULOMB_EV_A
        self.cutoff = max(self.lj_cutoff, self.ewald_cutoff + self.site_margin)
        # the engine may hand over pairs beyond the cutoff (e.g. a Verlet skin): all filtered here
        self._nl_options = NeighborListOptions(cutoff=self.cutoff, full_list=False, strict=False)

    def requested_neighbor_lists(self) -> list[NeighborListOptions]:
        """One half neighbour list of atoms with cutoff ``max(9, ewald_cutoff + site_margin)`` A."""
        return [self._nl_options]

    # ---- input checks -----------------------------------------------------------------

    def check_system(self, system: System) -> None:
        """Raise ValueError unless ``system`` is whole molecules O H H in a periodic orthorhombic cell."""
        n = system.positions.shape[0]
        if n == 0 or n % 3 != 0:
            raise ValueError(
                "q-TIP4P/f needs whole water molecules: the number of atoms (" + str(n) + ") is not a multiple of 3"
            )
        expected = torch.tensor([8, 1, 1], dtype=system.types.dtype, device=system.types.device).repeat(n // 3)
        wrong = torch.nonzero(system.types != expected).reshape(-1)
        if wrong.shape[0] > 0:
            i = int(wrong[0])
            should = "O (8)" if i % 3 == 0 else "H (1)"
            raise ValueError(
                "q-TIP4P/f expects the atom order O H H per molecule: atom "
                + str(i)
                + " (molecule "
                + str(i // 3)
                + ") has atomic number "
                + str(int(system.types[i]))
                + " but should be "
                + should
            )
        if not bool(torch.all(system.pbc)):
            raise ValueError("q-TIP4P/f needs a cell periodic in all three directions")
        cell = system.cell.detach()
        off = cell - torch.diag(torch.diagonal(cell))
        if float(torch.max(torch.abs(off))) > 1e-10 * max(float(torch.max(torch.abs(cell))), 1.0):
            raise ValueError("q-TIP4P/f supports only orthorhombic cells (diagonal cell matrix)")
        if bool(torch.any(torch.diagonal(cell) <= 0)):
            raise ValueError("q-TIP4P/f needs positive cell edge lengths")

    # ---- energy -----------------------------------------------------------------------

    def _minimum_image(self, d: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        n = torch.round(d.detach() @ torch.linalg.inv(cell.detach()))
        return d - n @ cell

    def _reciprocal_potential(self, sites: torch.Tensor, charges: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Reciprocal-space Ewald potential (N,) in V (eV/e) at each site, tin-foil, k = 0 dropped.

        ``phi_i = (4 pi k_e / V) sum_{k in half} w(k) Re(exp(-i k.r_i) S(k))`` over the canonical
        half (n_x > 0, or n_x = 0 and n_y > 0, or n_x = n_y = 0 and n_z > 0) of the integer
        triples n with ``0 < |k| <= k_cutoff``, ``k = 2 pi n @ inverse(cell)^T``,
        ``w(k) = exp(-sigma^2 k^2 / 2) / k^2`` and ``S(k) = sum_j q_j exp(i k.r_j)`` (each +-k pair
        counted once, hence 4 pi instead of 2 pi), so that ``sum_i q_i phi_i`` is the reciprocal
        energy. The phases ``k.r = 2 pi n.s`` use the fractional coordinates s and are built as
        products of per-axis factors ``exp(i 2 pi n_a s_a)``: S on the (n_x, n_y) x n_z grid is one
        complex matrix product (written with real ones). The k set is selected on the detached
        cell; the weights and phases carry the gradients with respect to positions and cell.
        """
        c = cell.detach()
        n_max = torch.floor(self.k_cutoff * torch.linalg.norm(c, dim=1) / (2.0 * math.pi)).to(torch.long)
        mx = int(n_max[0])
        my = int(n_max[1])
        mz = int(n_max[2])
        device = c.device
        dtype = c.dtype
        # rows p: all (n_x, n_y) with n_x >= 0; columns: n_z
        nx = torch.arange(0, mx + 1, device=device).repeat_interleave(2 * my + 1)
        ny = torch.arange(-my, my + 1, device=device).repeat(mx + 1)
        nz = torch.arange(-mz, mz + 1, device=device)
        half = (nx[:, None] > 0) | ((nx[:, None] == 0) & ((ny[:, None] > 0) | ((ny[:, None] == 0) & (nz[None, :] > 0))))
        reciprocal = 2.0 * math.pi * torch.linalg.inv(cell).T  # rows b_a: k = sum_a n_a b_a
        k_xy = nx[:, None].to(dtype) * reciprocal[0] + ny[:, None].to(dtype) * reciprocal[1]  # (P, 3)
        k_z = nz[:, None].to(dtype) * reciprocal[2]  # (Nz, 3)
        k_sq = torch.sum((k_xy[:, None, :] + k_z[None, :, :]) ** 2, dim=-1)  # (P, Nz)
        k_sq_fixed = k_sq.detach()
        inside = half & (k_sq_fixed > 0) & (k_sq_fixed <= self.k_cutoff**2 * (1.0 + 1e-12))
        safe_k_sq = torch.where(inside, k_sq, torch.ones_like(k_sq))
        weights = torch.where(
            inside, torch.exp(-0.5 * self.smearing**2 * safe_k_sq) / safe_k_sq, torch.zeros_like(k_sq)
        )
        # per-axis phase factors exp(i 2 pi n s_a) = c + i s of every site, in real arithmetic
        # (TorchScript's optimised executor differentiated complex tensors wrongly from the
        # second call on)
        angle = 2.0 * math.pi * (sites @ torch.linalg.inv(cell))  # (N, 3)
        ax = angle[:, 0:1] * torch.arange(0, mx + 1, device=device).to(dtype)
        ay = angle[:, 1:2] * torch.arange(-my, my + 1, device=device).to(dtype)
        az = angle[:, 2:3] * nz.to(dtype)
        cx = torch.cos(ax)
        sx = torch.sin(ax)
        cy = torch.cos(ay)
        sy = torch.sin(ay)
        cz = torch.cos(az)
        sz = torch.sin(az)
        cx = cx[:, nx]
        sx = sx[:, nx]
        cy = cy[:, ny + my]
        sy = sy[:, ny + my]
        cxy = cx * cy - sx * sy  # exp(i (k_x x + k_y y)) on the (n_x, n_y) rows (N, P)
        sxy = sx * cy + cx * sy
        qcz = charges[:, None] * cz
        qsz = charges[:, None] * sz
        # structure factor S(k) on the grid (P, Nz), weighted
        w_re = weights * (cxy.T @ qcz - sxy.T @ qsz)
        w_im = weights * (cxy.T @ qsz + sxy.T @ qcz)
        # Re sum_k w(k) S(k) exp(-i k.r_i) for each site
        a_re = cxy @ w_re + sxy @ w_im
        a_im = cxy @ w_im - sxy @ w_re
        field = torch.sum(a_re * cz + a_im * sz, dim=1)
        volume = torch.abs(torch.linalg.det(cell))
        return (4.0 * math.pi * self.coulomb / volume) * field

    def atomic_energies(self, system: System) -> torch.Tensor:
        """Per-atom energies (N,) in eV of one checked system; they sum to the total energy."""
        positions = system.positions
        cell = system.cell
        dtype = positions.dtype
        device = positions.device
        n_atoms = positions.shape[0]
        n_mol = n_atoms // 3
        energies = torch.zeros(n_atoms, dtype=dtype, device=device)

        # intramolecular geometry: O->H vectors by minimum image, O->M offset
        mol = positions.reshape(n_mol, 3, 3)
        o = mol[:, 0]
        d1 = self._minimum_image(mol[:, 1] - o, cell)
        d2 = self._minimum_image(mol[:, 2] - o, cell)
        dm = 0.5 * (1.0 - self.gamma) * (d1 + d2)
        if n_mol > 0 and 2.0 * float(torch.max(torch.linalg.norm(dm.detach(), dim=1))) > self.site_margin:
            raise ValueError(
                "q-TIP4P/f: a molecule is so distorted that its M site is more than site_margin / 2 = "
                + str(0.5 * self.site_margin)
                + " A from its O; export the model with a larger site_margin"
            )

        # stretch (each bond split between O and H) and bend (split in thirds)
        r1 = torch.linalg.norm(d1, dim=1)
        r2 = torch.linalg.norm(d2, dim=1)
        x1 = self.alpha_r * (r1 - self.r_eq)
        x2 = self.alpha_r * (r2 - self.r_eq)
        v1 = self.d_r * (x1**2 - x1**3 + (7.0 / 12.0) * x1**4)
        v2 = self.d_r * (x2**2 - x2**3 + (7.0 / 12.0) * x2**4)
        theta = torch.atan2(torch.linalg.norm(torch.linalg.cross(d1, d2, dim=-1), dim=1), torch.sum(d1 * d2, dim=1))
        bend = 0.5 * self.k_theta * (theta - self.theta_eq) ** 2 / 3.0

        # excluded intramolecular pairs: minus the erf (reciprocal-space) part of each
        inv_width = 1.0 / (math.sqrt(2.0) * self.smearing)
        r_hh = torch.linalg.norm(d1 - d2, dim=1)
        r_h1m = torch.linalg.norm(d1 - dm, dim=1)
        r_h2m = torch.linalg.norm(d2 - dm, dim=1)
        e_hh = -0.5 * self.coulomb * self.q_h * self.q_h * torch.erf(r_hh * inv_width) / r_hh
        e_h1m = -0.5 * self.coulomb * self.q_h * self.q_m * torch.erf(r_h1m * inv_width) / r_h1m
        e_h2m = -0.5 * self.coulomb * self.q_h * self.q_m * torch.erf(r_h2m * inv_width) / r_h2m

        per_molecule = torch.stack(
            [
                0.5 * (v1 + v2) + bend + e_h1m + e_h2m,
                0.5 * v1 + bend + e_hh + e_h1m,
                0.5 * v2 + bend + e_hh + e_h2m,
            ],
            dim=1,
        )
        energies = energies + per_molecule.reshape(n_atoms)

        # charge sites (M for O, the atom for H) and charges, one per atom
        offsets = torch.stack([dm, torch.zeros_like(dm), torch.zeros_like(dm)], dim=1).reshape(n_atoms, 3)
        sites = positions + offsets
        # (torch.full, not torch.tensor([...]): TorchScript builds a float list tensor in float32 first)
        charges = torch.cat(
            [
                torch.full((n_mol, 1), self.q_m, dtype=dtype, device=device),
                torch.full((n_mol, 2), self.q_h, dtype=dtype, device=device),
            ],
            dim=1,
        ).reshape(n_atoms)

        # Pairs from the engine's neighbour list. They are selected with the list's own vectors
        # (r_j - r_i + S @ cell, detached: cheap, no graph); the vectors of the kept pairs are
        # then recomputed from the positions and the cell to carry the gradients (forces and
        # stress), whether or not the engine registered the list's vectors with autograd.
        neighbors = system.get_neighbor_list(self._nl_options)
        samples = neighbors.samples.values
        i = samples[:, 0].to(torch.long)
        j = samples[:, 1].to(torch.long)
        shifts = samples[:, 2:5]
        fixed_cell = cell.detach()
        fixed_positions = positions.detach()
        fixed_offsets = offsets.detach()
        fixed_vectors = neighbors.values.detach().reshape(-1, 3)

        # O-O Lennard-Jones, truncated at 9 A without shift
        is_oo = ((i % 3) == 0) & ((j % 3) == 0)
        oo = torch.nonzero(is_oo & (torch.linalg.norm(fixed_vectors, dim=1) < self.lj_cutoff)).reshape(-1)
        i_oo = i[oo]
        j_oo = j[oo]
        r_oo = torch.linalg.norm(positions[j_oo] - positions[i_oo] + shifts[oo].to(dtype) @ cell, dim=1)
        sr6 = (self.sigma / r_oo) ** 6
        half_lj = 2.0 * self.epsilon * (sr6 * sr6 - sr6)
        energies = energies.index_add(0, i_oo, half_lj).index_add(0, j_oo, half_lj)

        # Real-space Ewald between sites, the excluded intramolecular pairs left out. These are
        # the pairs of the same molecule whose cell shift joins the two atoms as in the molecule
        # made whole (by minimum image), not necessarily S = 0: the engine may have wrapped an H
        # atom to the other side of the cell. ``image[a]`` is the lattice translation (integer)
        # taking atom a from its given position to its place in the whole molecule.
        whole = torch.stack([o, o + d1, o + d2], dim=1).reshape(n_atoms, 3).detach()
        image = torch.round((whole - fixed_positions) @ torch.linalg.inv(fixed_cell)).to(shifts.dtype)
        intramolecular = ((i // 3) == (j // 3)) & torch.all(shifts == image[j] - image[i], dim=1)
        fixed_site_vectors = fixed_vectors + fixed_offsets[j] - fixed_offsets[i]
        inside = torch.linalg.norm(fixed_site_vectors, dim=1) < self.ewald_cutoff
        pairs = torch.nonzero(inside & torch.logical_not(intramolecular)).reshape(-1)
        i_s = i[pairs]
        j_s = j[pairs]
        r_site = torch.linalg.norm(sites[j_s] - sites[i_s] + shifts[pairs].to(dtype) @ cell, dim=1)
        half_real = 0.5 * self.coulomb * charges[i_s] * charges[j_s] * torch.erfc(r_site * inv_width) / r_site
        energies = energies.index_add(0, i_s, half_real).index_add(0, j_s, half_real)

        # reciprocal space (tin-foil, k = 0 dropped) and Gaussian self-energy, per site
        potential = self._reciprocal_potential(sites, charges, cell)
        self_energy = self.coulomb * charges**2 / (math.sqrt(2.0 * math.pi) * self.smearing)
        energies = energies + charges * potential - self_energy
        return energies


def qtip4pf_atomistic_model(
    ewald_cutoff: float = 9.0,
    smearing: float = 1.7,
    lr_wavelength: float = 2.1,
    supported_devices: Sequence[str] = ("cpu",),
    site_margin: float = SITE_MARGIN,
) -> AtomisticModel:
    """The q-TIP4P/f :class:`QTIP4PFModule` wrapped in a metatomic ``AtomisticModel`` (not yet scripted).

    The module is written device-agnostically, but only CPU has been tested: declare
    ``supported_devices=("cpu", "cuda")`` to let engines run it on a GPU.
    """
    module = QTIP4PFModule(
        ewald_cutoff=ewald_cutoff, smearing=smearing, lr_wavelength=lr_wavelength, site_margin=site_margin
    )
    description = (
        "Flexible q-TIP4P/f water (quartic O-H stretch, harmonic bend, O-O Lennard-Jones truncated at "
        f"9 A, point charges on H and M with Ewald summation: real-space cutoff {ewald_cutoff} A, "
        f"smearing {smearing} A, lr_wavelength {lr_wavelength} A, tin-foil boundary). Atoms ordered O H H "
        "per molecule, orthorhombic periodic cell."
    )
    return energy_atomistic_model(
        module,
        name="q-TIP4P/f",
        description=description,
        references={"model": [REFERENCE], "implementation": ["actionmd.potentials.qtip4pf_metatomic"]},
        atomic_types=[1, 8],
        interaction_range=math.inf,
        supported_devices=supported_devices,
    )


def export_qtip4pf(
    path: str | os.PathLike,
    ewald_cutoff: float = 9.0,
    smearing: float = 1.7,
    lr_wavelength: float = 2.1,
    supported_devices: Sequence[str] = ("cpu",),
    site_margin: float = SITE_MARGIN,
) -> None:
    """Save the q-TIP4P/f metatomic model (TorchScript ``.pt``) to ``path``, atomically (temporary file + rename).

    Ewald parameters as in :class:`actionmd.potentials.qtip4pf.QTIP4PF` (A); ``supported_devices`` as in
    :func:`qtip4pf_atomistic_model`; ``site_margin`` (A) as in :class:`QTIP4PFModule`. Load it
    with ``metatomic.torch.load_atomistic_model`` or ``metatomic_ase.MetatomicCalculator(path)``.
    """
    model = qtip4pf_atomistic_model(
        ewald_cutoff=ewald_cutoff,
        smearing=smearing,
        lr_wavelength=lr_wavelength,
        supported_devices=supported_devices,
        site_margin=site_margin,
    )
    save_atomically(model, path)
