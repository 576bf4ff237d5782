"""Ewald reciprocal sum of the q-TIP4P/f fast path, its k vectors and the pair-sum helpers (numpy; A, eV, e).

The reciprocal part of the Ewald energy of point charges q_j (e) at sites r_j (A) in an
orthorhombic cell with tin-foil boundary conditions (k = 0 dropped),
``E = (1 / 2V) sum_k G(k) |S(k)|^2`` with ``G(k) = k_e 4 pi exp(-sigma^2 k^2 / 2) / k^2``,
over the sphere ``0 < |k| <= k_cutoff`` (1/A), and its analytic forces (eV/A). The k set is
:func:`kvector_indices`', the one handed to torch-pme by the differentiable path, so the two
paths agree to rounding. The pair helpers turn vesin's half lists into gradients of pair sums.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from actionmd.potentials.qtip4pf.parameters import COULOMB_EV_A, DTYPE


def kvector_indices(cell: np.ndarray, k_cutoff: float) -> torch.Tensor:
    """Integer triples n (M, 3) of the reciprocal vectors k = 2 pi n @ inverse(cell)^T with 0 < |k| <= k_cutoff.

    ``cell`` (3, 3) in A (rows are the cell vectors), ``k_cutoff`` in 1/A. Both k and -k are
    included (torch-pme's Ewald sum runs over the full set). Since n_a = k . a_a / (2 pi), the
    search box |n_a| <= k_cutoff |a_a| / (2 pi) contains the whole sphere.
    """
    cell = np.asarray(cell, dtype=float)
    n_max = np.floor(k_cutoff * np.linalg.norm(cell, axis=1) / (2.0 * math.pi)).astype(int)
    axes = [torch.arange(-m, m + 1, dtype=DTYPE) for m in n_max]
    n = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    reciprocal = 2.0 * math.pi * torch.linalg.inv(torch.as_tensor(cell, dtype=DTYPE)).T
    k_sq = torch.sum((n @ reciprocal) ** 2, dim=-1)
    return n[(k_sq > 0) & (k_sq <= k_cutoff**2 * (1.0 + 1e-12))]


class ReciprocalSum:
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
        """Half-sphere tables for |k| <= ``k_cutoff`` (1/A), box edges ``lengths``, Gaussian width ``smearing`` (A)."""
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


def scatter_pair_gradient(n: int, i: np.ndarray, j: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Gradient (n, 3) of a pair sum with dE/dx_j = g and dE/dx_i = -g for pairs (i, j); ``g`` is (3, P)."""
    out = np.empty((n, 3))
    for a in range(3):
        out[:, a] = np.bincount(j, g[a], minlength=n) - np.bincount(i, g[a], minlength=n)
    return out


def pair_indices(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """vesin's uint64 pair indices as intp (a view: the values are far below 2^63)."""
    return i.view(np.intp), j.view(np.intp)
