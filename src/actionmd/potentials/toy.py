"""A tiny Morse pair potential exported as a metatomic model: a stand-in for PET-MAD.

It lets the tests and the ``test`` preset exercise the whole metatomic path (export, loading by
``metatomic_ase.MetatomicCalculator``, neighbour lists, autograd forces and stress) in seconds
and without downloading a foundation model. It is not the physics of any material: every pair
of atoms, whatever their species, interacts through the same smoothly truncated Morse
potential

    V(r) = D [(1 - exp(-a (r - r0)))^2 - 1] s(r),

D = 0.25 eV, a = 1.2 1/A, r0 = 3.0 A, with the switch s(r) = 1 for r <= r_on = 5 A,
s(r) = (1 + cos(pi (r - r_on) / (r_c - r_on))) / 2 for r_on < r < r_c and 0 beyond
r_c = 6 A (V and dV/dr are continuous everywhere). Units A, eV.

:func:`export_toy_potential` writes the model (TorchScript ``.pt``, energy only: engines take
the forces and the stress by autograd); :func:`toy_energy` is an independent pure-numpy
implementation (explicit sum over periodic images) used as the reference in the tests.
"""

import math
import os
from pathlib import Path

import numpy as np
import torch
from metatomic.torch import AtomisticModel, NeighborListOptions, System

from actionmd.potentials.metatomic_energy import AtomicEnergyModule, energy_atomistic_model, save_atomically

#: Morse well depth (eV), stiffness (1/A), equilibrium distance (A), switch start and cutoff (A).
DEPTH = 0.25
STIFFNESS = 1.2
R0 = 3.0
R_ON = 5.0
CUTOFF = 6.0
#: Atomic types the model accepts: H to Pu (the potential does not depend on the species).
ATOMIC_TYPES = list(range(1, 95))


class ToyMorseModule(AtomicEnergyModule):
    """Energy (eV) of the switched Morse pair potential, following metatomic's ``ModelInterface``.

    Pairs come from one half neighbour list (cutoff :data:`CUTOFF`); their vectors are
    recomputed from positions, cell and cell shifts (``r_j - r_i + S @ cell``) so that the energy
    is differentiable with respect to both, and pairs the engine gives beyond the cutoff (a
    Verlet skin) contribute exactly zero, with zero gradient.
    """

    def __init__(
        self,
        depth: float = DEPTH,
        stiffness: float = STIFFNESS,
        r0: float = R0,
        r_on: float = R_ON,
        cutoff: float = CUTOFF,
    ) -> None:
        super().__init__()
        if not 0.0 < r_on < cutoff:
            raise ValueError("need 0 < r_on < cutoff")
        self.depth = float(depth)
        self.stiffness = float(stiffness)
        self.r0 = float(r0)
        self.r_on = float(r_on)
        self.cutoff = float(cutoff)
        self._nl_options = NeighborListOptions(cutoff=self.cutoff, full_list=False, strict=True)

    def requested_neighbor_lists(self) -> list[NeighborListOptions]:
        """One half neighbour list with the cutoff of the potential (A)."""
        return [self._nl_options]

    def pair_energy(self, r: torch.Tensor) -> torch.Tensor:
        """Switched Morse energy (eV) of pairs at distances ``r`` (A); zero (and flat) beyond the cutoff."""
        inside = r < self.cutoff
        rs = torch.where(inside, r, torch.full_like(r, self.r_on))
        morse = self.depth * ((1.0 - torch.exp(-self.stiffness * (rs - self.r0))) ** 2 - 1.0)
        x = torch.clamp((rs - self.r_on) / (self.cutoff - self.r_on), min=0.0, max=1.0)
        switch = 0.5 * (1.0 + torch.cos(math.pi * x))
        return torch.where(inside, morse * switch, torch.zeros_like(r))

    def atomic_energies(self, system: System) -> torch.Tensor:
        """Per-atom energies (N,) in eV: each pair's energy split in halves; they sum to the energy."""
        positions = system.positions
        neighbors = system.get_neighbor_list(self._nl_options)
        samples = neighbors.samples.values
        i = samples[:, 0].to(torch.long)
        j = samples[:, 1].to(torch.long)
        shifts = samples[:, 2:5].to(positions.dtype)
        vectors = positions[j] - positions[i] + shifts @ system.cell
        half = 0.5 * self.pair_energy(torch.linalg.norm(vectors, dim=1))
        energies = torch.zeros(positions.shape[0], dtype=positions.dtype, device=positions.device)
        return energies.index_add(0, i, half).index_add(0, j, half)


def toy_atomistic_model() -> AtomisticModel:
    """The toy Morse :class:`ToyMorseModule` wrapped in a metatomic ``AtomisticModel`` (not yet scripted)."""
    description = (
        f"Test stand-in for PET-MAD, not a model of any material: one Morse pair potential for every "
        f"species pair (D = {DEPTH} eV, a = {STIFFNESS} 1/A, r0 = {R0} A), cosine switch from {R_ON} A "
        f"to the cutoff {CUTOFF} A."
    )
    return energy_atomistic_model(
        ToyMorseModule(),
        name="actionmd toy Morse",
        description=description,
        references={"implementation": ["actionmd.potentials.toy"]},
        atomic_types=ATOMIC_TYPES,
        interaction_range=CUTOFF,
    )


def export_toy_potential(path: str | os.PathLike) -> None:
    """Save the toy Morse metatomic model (TorchScript ``.pt``) to ``path``, atomically (temporary file + rename).

    Load it with ``metatomic_ase.MetatomicCalculator(path)`` (or
    :func:`actionmd.potentials.reference.calculator` with ``{"kind": "toy"}``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_atomically(toy_atomistic_model(), path)


def toy_pair_energy(r: np.ndarray) -> np.ndarray:
    """Switched Morse pair energy (eV) at distances ``r`` (A), in numpy."""
    r = np.asarray(r, dtype=np.float64)
    morse = DEPTH * ((1.0 - np.exp(-STIFFNESS * (r - R0))) ** 2 - 1.0)
    x = np.clip((r - R_ON) / (CUTOFF - R_ON), 0.0, 1.0)
    return np.where(r < CUTOFF, morse * 0.5 * (1.0 + np.cos(np.pi * x)), 0.0)


def toy_energy(positions: np.ndarray, cell: np.ndarray, numbers: np.ndarray) -> float:
    """Energy (eV) of the toy potential by brute force: explicit sum over all periodic images.

    ``positions`` (N, 3) in A (anywhere, not necessarily inside the cell), ``cell`` (3, 3) in A
    with the lattice vectors as rows, periodic in all three directions; ``numbers`` is accepted
    for the interface only (the potential does not depend on the species). Every image
    translation ``n @ cell`` that can bring a pair within the cutoff is summed, so cells smaller
    than twice the cutoff are handled too. For tests: O(N^2 x images).
    """
    positions = np.asarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    if len(numbers) != len(positions):
        raise ValueError("numbers and positions have different lengths")
    # positions wrapped into the cell: pair vectors then have fractional parts in (-1, 1)
    frac = positions @ np.linalg.inv(cell)
    wrapped = (frac - np.floor(frac)) @ cell
    # number of images along a: the distance between lattice planes is V / |b x c|
    volume = abs(np.linalg.det(cell))
    heights = volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    n_max = np.ceil(CUTOFF / heights).astype(int) + 1
    grid = np.stack(
        np.meshgrid(*(np.arange(-m, m + 1) for m in n_max), indexing="ij"),
        axis=-1,
    ).reshape(-1, 3)
    translations = grid @ cell
    d = wrapped[None, :, :] - wrapped[:, None, :]  # (N, N, 3): r_j - r_i
    energy = 0.0
    n = len(positions)
    same = np.eye(n, dtype=bool)
    for t, shift in zip(grid, translations, strict=True):
        r = np.linalg.norm(d + shift, axis=-1)
        if not t.any():
            r = np.where(same, np.inf, r)
        energy += 0.5 * float(np.sum(toy_pair_energy(r)))
    return energy
