"""Gravitational few-body Hamiltonians and their velocity-Verlet reference dynamics.

The one-body (Kepler) and three-body (figure-eight) experiments of the paper
use reduced units: G = 1 and unit masses, so lengths, times, energies and
momenta are all dimensionless. Positions and momenta have shape ``(..., N, d)``
(N bodies in d dimensions); every function accepts leading batch dimensions.

    H(q, p) = sum_i |p_i|^2 / (2 m_i) - G sum_{i<j} m_i m_j / |q_i - q_j|
              - G M sum_i m_i / |q_i|

where the last term is a fixed, immovable central mass M at the origin (used
for the one-body orbit; M = 0 for the free three-body problem).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GravitationalSystem:
    """N point masses with Newtonian gravity, optionally around a fixed central mass."""

    masses: np.ndarray
    G: float = 1.0
    central_mass: float = 0.0
    dim: int = field(default=2)

    def __post_init__(self) -> None:
        masses = np.asarray(self.masses, dtype=np.float64).reshape(-1)
        if masses.size == 0 or np.any(masses <= 0):
            raise ValueError(f"masses must be positive, got {masses}")
        if self.G <= 0 or self.central_mass < 0:
            raise ValueError("G must be positive and central_mass non-negative")
        object.__setattr__(self, "masses", masses)

    @property
    def n_bodies(self) -> int:
        return int(self.masses.size)

    def _pair_geometry(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Displacements q_i - q_j (..., N, N, d) and inverse distances (..., N, N), zero on the diagonal."""
        diff = q[..., :, None, :] - q[..., None, :, :]
        dist = np.linalg.norm(diff, axis=-1)
        n = self.n_bodies
        eye = np.eye(n, dtype=bool)
        inv = np.where(eye, 0.0, 1.0 / np.where(eye, 1.0, dist))
        return diff, inv

    def potential(self, q: np.ndarray) -> np.ndarray:
        """Potential energy V(q), shape (...)."""
        q = np.asarray(q, dtype=np.float64)
        mm = self.masses[:, None] * self.masses[None, :]
        _, inv = self._pair_geometry(q)
        v = -0.5 * self.G * np.sum(mm * inv, axis=(-1, -2))
        if self.central_mass > 0:
            r = np.linalg.norm(q, axis=-1)
            v = v - self.G * self.central_mass * np.sum(self.masses / r, axis=-1)
        return v

    def forces(self, q: np.ndarray) -> np.ndarray:
        """Forces -dV/dq, shape (..., N, d)."""
        q = np.asarray(q, dtype=np.float64)
        mm = self.masses[:, None] * self.masses[None, :]
        diff, inv = self._pair_geometry(q)
        f = -self.G * np.sum((mm * inv**3)[..., None] * diff, axis=-2)
        if self.central_mass > 0:
            r = np.linalg.norm(q, axis=-1, keepdims=True)
            f = f - self.G * self.central_mass * self.masses[:, None] * q / r**3
        return f

    def kinetic(self, p: np.ndarray) -> np.ndarray:
        """Kinetic energy sum |p|^2 / 2m, shape (...)."""
        p = np.asarray(p, dtype=np.float64)
        return 0.5 * np.sum(np.sum(p**2, axis=-1) / self.masses, axis=-1)

    def energy(self, q: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Total energy H(q, p), shape (...)."""
        return self.kinetic(p) + self.potential(q)


def velocity_verlet(
    system: GravitationalSystem,
    q0: np.ndarray,
    p0: np.ndarray,
    dt: float,
    steps: int,
    save_every: int = 1,
    log_every: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate Hamilton's equations with velocity Verlet (kick-drift-kick).

    Explicit, symplectic and time-reversible for separable H. Works on a batch
    of independent systems if ``q0`` has leading dimensions.

    Returns ``(q, p)`` with shape ``(steps // save_every + 1, ..., N, d)``;
    frame k is the state at time ``k * save_every * dt`` (frame 0 the start).
    """
    if dt <= 0 or steps < 0 or save_every < 1:
        raise ValueError("need dt > 0, steps >= 0, save_every >= 1")
    q = np.array(q0, dtype=np.float64)
    p = np.array(p0, dtype=np.float64)
    inv_m = (1.0 / system.masses)[:, None]
    n_saved = steps // save_every + 1
    q_out = np.empty((n_saved, *q.shape))
    p_out = np.empty((n_saved, *p.shape))
    q_out[0], p_out[0] = q, p
    f = system.forces(q)
    for step in range(1, steps + 1):
        p += 0.5 * dt * f
        q += dt * p * inv_m
        f = system.forces(q)
        p += 0.5 * dt * f
        if step % save_every == 0:
            q_out[step // save_every] = q
            p_out[step // save_every] = p
        if log_every and step % log_every == 0:
            log.info("velocity Verlet: step %d / %d", step, steps)
    return q_out, p_out


def perturbed_starts(
    system: GravitationalSystem, q0: np.ndarray, p0: np.ndarray, count: int, scale: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` copies of (q0, p0), each (N, d), moved by Gaussian noise of ``scale`` times the rms
    of q0 (positions) and of p0 (momenta); shape (count, N, d).

    The noise keeps the centre of mass where it is and adds no total momentum (it is made
    mass-weighted zero-sum), so each copy is a neighbouring state in the same frame as (q0, p0).
    Its energy and angular momentum differ from those of (q0, p0) at the order of ``scale``.
    """
    if count < 1 or scale <= 0:
        raise ValueError(f"need count >= 1 and scale > 0, got {count} and {scale}")
    rng = np.random.default_rng(seed)
    m = system.masses[:, None]
    dq = rng.normal(size=(count, *q0.shape)) * scale * float(np.sqrt(np.mean(q0**2)))
    dp = rng.normal(size=(count, *p0.shape)) * scale * float(np.sqrt(np.mean(p0**2)))
    dq -= np.sum(m * dq, axis=1, keepdims=True) / m.sum()  # centre of mass unmoved
    dp -= m * np.sum(dp, axis=1, keepdims=True) / m.sum()  # total momentum unchanged
    return q0 + dq, p0 + dp


def neighbour_trajectories(
    system: GravitationalSystem,
    q0: np.ndarray,
    p0: np.ndarray,
    count: int,
    scale: float,
    seed: int,
    dt: float,
    steps: int,
    save_every: int,
    max_energy_error: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Velocity Verlet from :func:`perturbed_starts`, all at once; the ones that stay like the orbit.

    A perturbed start of a periodic orbit may fall outside its island of stability: the bodies
    then meet closely (the step no longer resolves them, the energy jumps) or one escapes. Those
    are dropped: kept are the trajectories whose relative energy error stays under
    ``max_energy_error`` and whose largest |q| stays under twice the median of that extent over
    all starts (an escaping body goes far beyond it).

    Returns (q, p, kept): q and p of shape (frames, kept, N, d), frames every ``save_every`` steps,
    and the boolean mask of the starts kept.
    """
    qs, ps = perturbed_starts(system, q0, p0, count, scale, seed)
    q, p = velocity_verlet(system, qs, ps, dt, steps, save_every=save_every)
    energy = system.energy(q, p)
    drift = np.max(np.abs(energy - energy[0]) / np.abs(energy[0]), axis=0)
    reach = np.max(np.abs(q), axis=(0, 2, 3))
    kept = np.isfinite(drift) & (drift < max_energy_error) & (reach < 2.0 * np.median(reach))
    log.info(
        "neighbours: kept %d of %d perturbed starts (scale %g)%s",
        int(kept.sum()),
        count,
        scale,
        "; the others met closely or escaped" if not kept.all() else "",
    )
    return q[:, kept], p[:, kept], kept
