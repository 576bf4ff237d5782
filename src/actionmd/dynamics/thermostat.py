"""Canonical sampling around long-step maps: SVR thermostat, OBABO splitting, velocity Verlet.

Units are ASE's throughout: positions in A, masses in u, energies in eV, so that
momenta are in (eV*u)^(1/2) and the natural time unit is A*(u/eV)^(1/2) ~ 10.18 fs;
a time step given in fs enters as ``dt_fs * ase.units.fs``. Temperatures are in K and
converted with ``ase.units.kB`` (eV/K).

All routines act on float64 torch tensors of shape (..., N, 3): leading batch
dimensions are independent systems (each with its own thermostat draw and energy
bookkeeping); masses have shape (N,).

* :class:`SVRThermostat`: stochastic velocity rescaling of Bussi, Donadio and
  Parrinello (J. Chem. Phys. 126, 014101, 2007), the exact propagator of the
  kinetic-energy stochastic differential equation over a finite time.
* :class:`OBABOIntegrator`: symmetric Trotter split, half-step thermostat (O),
  any long-step map (standing for B-A-B), half-step thermostat (O), with the
  bookkeeping of the energy the thermostat exchanged.
* :class:`VelocityVerletMap`: a reference long-step map made of velocity-Verlet
  substeps with an arbitrary force function.
* :func:`species_temperatures`: kinetic temperature per chemical species.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch
from ase import units

from actionmd.dynamics.energy import KB, as_masses, kinetic_energy
from actionmd.io.checkpoint import restore, state_of

Forces = Callable[[torch.Tensor], torch.Tensor]


class LongStepMap(Protocol):
    """Anything mapping a state (q, p) to the state one (long) step later."""

    def step(self, q: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


def _make_generator(seed: int | torch.Generator | None) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    generator = torch.Generator()
    if seed is None:
        generator.seed()  # non-deterministic, leaves the global generator alone
    else:
        generator.manual_seed(int(seed))
    return generator


class SVRThermostat:
    """Stochastic velocity rescaling (Bussi, Donadio, Parrinello 2007), applied to momenta.

    The kinetic energy K of a system with N_f degrees of freedom obeys the
    stochastic differential equation

        dK = (K_bar - K) dt / tau + 2 sqrt(K K_bar / N_f) dW / sqrt(tau),   K_bar = N_f k_B T / 2,

    whose stationary distribution is the canonical one, P(K) ~ K^(N_f/2 - 1) exp(-K / k_B T),
    i.e. K ~ Gamma(shape N_f / 2, scale k_B T). Its exact solution over a time dt
    (eq. A7 of the paper) is, with c = exp(-dt / tau),

        K' = c K + (1 - c) (K_bar / N_f) (R_1^2 + sum_{i=2}^{N_f} R_i^2)
             + 2 R_1 sqrt(c (1 - c) K K_bar / N_f),

    R_i independent standard normals; all momenta are then scaled by alpha with
    alpha^2 = K' / K. ``sum_{i=2}^{N_f} R_i^2`` is drawn as 2 Gamma((N_f - 1) / 2)
    (chi-squared with N_f - 1 degrees of freedom). The sign of alpha is that of
    sqrt(c) + R_1 sqrt((1 - c) K_bar / (N_f K)), which makes alpha the
    continuous continuation of the c -> 1 limit (as in i-PI); the distribution of
    K' does not depend on it.

    Since all momenta are scaled by the same factor, a zero total momentum stays
    zero (and a nonzero one is scaled by alpha): with total momentum conserved,
    use N_f = 3N - 3 (the default, ``n_dof=None``); for a system without that
    constraint (e.g. atoms in external wells) pass ``n_dof = 3N``.

    Limits: ``tau_fs = inf`` (or dt = 0) is the identity, momenta returned
    untouched and zero energy exchanged; ``tau_fs = 0`` (or dt >> tau, c = 0)
    redraws K from its canonical distribution independently of the old one
    (with a random sign of alpha). A state with K = 0 cannot be rescaled and is
    returned unchanged.

    Args:
        temperature: target temperature T (K).
        tau_fs: relaxation time tau of the kinetic energy (fs), >= 0, may be ``math.inf``.
        n_dof: number of degrees of freedom N_f; None means 3N - 3, N from the momenta.
        seed: integer seed or a ``torch.Generator`` (CPU) driving the random numbers.
    """

    def __init__(
        self,
        temperature: float,
        tau_fs: float,
        n_dof: int | None = None,
        seed: int | torch.Generator | None = None,
    ) -> None:
        if not temperature >= 0.0:
            raise ValueError(f"temperature must be >= 0 K, got {temperature}")
        if not tau_fs >= 0.0:
            raise ValueError(f"tau_fs must be >= 0 (inf switches the thermostat off), got {tau_fs}")
        if n_dof is not None and n_dof < 1:
            raise ValueError(f"n_dof must be >= 1, got {n_dof}")
        self.temperature = float(temperature)
        self.tau_fs = float(tau_fs)
        self.n_dof = n_dof
        self.generator = _make_generator(seed)

    def checkpoint_state(self) -> dict:
        """Target temperature (a ramp changes it) and the random generator's state."""
        return {"temperature": self.temperature, "generator": self.generator.get_state()}

    def restore_state(self, state: dict) -> None:
        self.temperature = state["temperature"]
        self.generator.set_state(state["generator"])

    @property
    def kT(self) -> float:
        """k_B T in eV."""
        return KB * self.temperature

    def degrees_of_freedom(self, n_atoms: int) -> int:
        """N_f for a system of ``n_atoms`` atoms: the given ``n_dof`` or 3N - 3."""
        n_dof = self.n_dof if self.n_dof is not None else 3 * n_atoms - 3
        if n_dof < 1:
            raise ValueError(f"need at least one degree of freedom, got N_f = {n_dof} for {n_atoms} atoms")
        return n_dof

    def target_kinetic_energy(self, n_atoms: int) -> float:
        """K_bar = N_f k_B T / 2 (eV), the canonical mean kinetic energy."""
        return 0.5 * self.degrees_of_freedom(n_atoms) * self.kT

    def decay(self, dt_fs: float) -> float:
        """c = exp(-dt / tau); 1 for tau = inf or dt = 0, 0 for tau = 0."""
        if dt_fs == 0.0 or math.isinf(self.tau_fs):
            return 1.0
        if self.tau_fs == 0.0:
            return 0.0
        return math.exp(-dt_fs / self.tau_fs)

    def _chi2(self, n: int, shape: tuple[int, ...]) -> torch.Tensor:
        """Chi-squared variates with n degrees of freedom (the law of a sum of n squared normals), as 2 Gamma(n/2).

        ``torch._standard_gamma`` is the sampler behind ``torch.distributions.Gamma``; called
        directly it accepts our generator, so runs are reproducible from the seed.
        """
        if n == 0:
            return torch.zeros(shape, dtype=torch.float64)
        concentration = torch.full(shape, 0.5 * n, dtype=torch.float64)
        return 2.0 * torch._standard_gamma(concentration, generator=self.generator)

    def apply(
        self, p: torch.Tensor, masses: torch.Tensor | np.ndarray | Sequence[float], dt_fs: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagate the kinetic energy for a time ``dt_fs`` (fs) and rescale the momenta.

        Args:
            p: momenta (..., N, 3) in (eV*u)^(1/2).
            masses: (N,) in u.
            dt_fs: time over which the thermostat acts (fs); dt / 2 in an OBABO step.

        Returns:
            ``(p_new, delta_ke)``: the rescaled momenta alpha p and the kinetic
            energy the thermostat added, K' - K (eV), of shape (...). A negative
            value means energy was removed from the system.
        """
        if not dt_fs >= 0.0:
            raise ValueError(f"dt_fs must be >= 0, got {dt_fs}")
        batch = tuple(p.shape[:-2])
        c = self.decay(dt_fs)
        if c == 1.0:
            return p, torch.zeros(batch, dtype=p.dtype, device=p.device)
        n_atoms = p.shape[-2]
        n_dof = self.degrees_of_freedom(n_atoms)
        kin = kinetic_energy(p, masses).to(torch.float64).cpu()
        per_dof = 0.5 * self.kT  # K_bar / N_f
        r1 = torch.randn(batch, dtype=torch.float64, generator=self.generator)
        rest = self._chi2(n_dof - 1, batch)
        safe_kin = torch.where(kin > 0, kin, torch.ones_like(kin))
        ratio = per_dof / safe_kin  # (K_bar / N_f) / K
        alpha2 = c + (1.0 - c) * ratio * (r1.square() + rest) + 2.0 * r1 * torch.sqrt(c * (1.0 - c) * ratio)
        sign = torch.where(math.sqrt(c) + r1 * torch.sqrt((1.0 - c) * ratio) < 0, -1.0, 1.0)
        alpha = torch.where(kin > 0, sign * torch.sqrt(alpha2), torch.ones_like(kin))
        alpha = alpha.to(dtype=p.dtype, device=p.device)
        p_new = p * alpha[..., None, None]
        delta = kinetic_energy(p_new, masses) - kin.to(dtype=p.dtype, device=p.device)
        return p_new, delta


class OBABOIntegrator:
    """Symmetric Trotter split O (dt/2) - [long-step map] - O (dt/2) for NVT with long steps.

    One ``step`` applies the thermostat for dt/2, then the inner map (velocity
    Verlet, a direct or symplectic ML map: anything with ``step(q, p)``) in
    place of the velocity-Verlet B-A-B part, then the thermostat for another dt/2.
    The inner map is Hamiltonian (it conserves H up to its own error), the O
    parts change only the kinetic energy, by known amounts.

    Energy bookkeeping: ``thermostat_work`` (eV, batch shape) is the running sum
    of the kinetic-energy changes K' - K made by all O half-steps so far, i.e.
    the energy the thermostat *added* to the system (negative when it removed
    energy). The effective conserved quantity is

        conserved = H(q, p) - thermostat_work,

    H = K + V the total energy of the current state; with an exact inner map it
    is constant, so its drift measures the error of the inner map alone
    (:meth:`conserved` evaluates it from H).

    Args:
        inner: long-step map with ``step(q, p) -> (q', p')``, covering a time ``dt_fs``.
        thermostat: the O part, e.g. :class:`SVRThermostat`.
        dt_fs: the long time step Dt (fs) of the inner map; each O half acts for Dt / 2.
        masses: (N,) in u.
    """

    def __init__(
        self,
        inner: LongStepMap,
        thermostat: SVRThermostat,
        dt_fs: float,
        masses: torch.Tensor | np.ndarray | Sequence[float],
    ) -> None:
        if not dt_fs > 0.0:
            raise ValueError(f"dt_fs must be > 0, got {dt_fs}")
        self.inner = inner
        self.thermostat = thermostat
        self.dt_fs = float(dt_fs)
        self.masses = as_masses(masses)[:, 0]
        self.thermostat_work: torch.Tensor = torch.zeros((), dtype=torch.float64)

    def reset_work(self) -> None:
        """Set the accumulated thermostat work back to zero (e.g. after equilibration)."""
        self.thermostat_work = torch.zeros((), dtype=torch.float64)

    def checkpoint_state(self) -> dict:
        """Work so far, the thermostat's state and the inner map's (if it has one)."""
        return {
            "work": self.thermostat_work.clone(),
            "thermostat": self.thermostat.checkpoint_state(),
            "inner": state_of(self.inner),
        }

    def restore_state(self, state: dict) -> None:
        self.thermostat_work = state["work"].clone()
        self.thermostat.restore_state(state["thermostat"])
        restore(self.inner, state["inner"])

    def step(self, q: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One OBABO step of length dt_fs; positions A, momenta (eV*u)^(1/2)."""
        masses = self.masses.to(device=p.device, dtype=p.dtype)
        p, first = self.thermostat.apply(p, masses, 0.5 * self.dt_fs)
        q, p = self.inner.step(q, p)
        p, second = self.thermostat.apply(p, masses, 0.5 * self.dt_fs)
        self.thermostat_work = self.thermostat_work + (first + second).detach().to(torch.float64).cpu()
        return q, p

    def conserved(self, total_energy: torch.Tensor | float) -> torch.Tensor:
        """conserved = H - thermostat_work (eV), given the total energy H = K + V (eV) of the current state."""
        return torch.as_tensor(total_energy, dtype=torch.float64) - self.thermostat_work


class VelocityVerletMap:
    """Long-step map of ``substeps`` velocity-Verlet steps of h = dt / substeps.

    Each substep is the kick-drift-kick (B-A-B) splitting

        p <- p + (h/2) F(q);   q <- q + h p / m;   p <- p + (h/2) F(q),

    symplectic, time-reversible, with energy error O(h^2). Units: q in A, p in
    (eV*u)^(1/2), m in u, F in eV/A, and h in ASE time units,
    h = (dt_fs / substeps) * ase.units.fs. The forces of the last returned
    positions are cached, so a chain of steps (with only momenta changed in
    between, as in OBABO) costs one force call per substep.

    Args:
        forces: q (..., N, 3) -> F (..., N, 3) in eV/A.
        masses: (N,) in u.
        dt_fs: the long step (fs).
        substeps: number of velocity-Verlet steps per long step.
    """

    def __init__(
        self,
        forces: Forces,
        masses: torch.Tensor | np.ndarray | Sequence[float],
        dt_fs: float,
        substeps: int = 1,
    ) -> None:
        if substeps < 1:
            raise ValueError(f"substeps must be >= 1, got {substeps}")
        self.forces = forces
        self.masses = as_masses(masses)
        self.dt_fs = float(dt_fs)
        self.substeps = int(substeps)
        self.h = self.dt_fs / self.substeps * units.fs  # ASE time units
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def _forces(self, q: torch.Tensor) -> torch.Tensor:
        if self._cache is not None:
            q_cached, f_cached = self._cache
            if q_cached.shape == q.shape and torch.equal(q_cached, q):
                return f_cached
        f = self.forces(q)
        self._cache = (q.detach().clone(), f.detach())
        return f

    def step(self, q: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance (q, p) by dt_fs."""
        m = self.masses.to(device=q.device, dtype=q.dtype)
        h = self.h
        f = self._forces(q)
        for _ in range(self.substeps):
            p = p + 0.5 * h * f
            q = q + h * p / m
            f = self._forces(q)
            p = p + 0.5 * h * f
        return q, p
