"""Few-body rollouts: repeated long steps with a learned map or velocity Verlet.

A rollout starts from (q0, p0) and applies one integrator ``steps`` times at
the long step Dt. It records positions, momenta and the exact total energy
H(q, p) of every frame, the number of fixed-point iterations and the final
residual of each step (and, for the symplectic model, the residual after every
iteration of every step, NaN-padded), and the wall time. A run that blows up (non-finite or
escaping state) stops there; its remaining frames are NaN, never made up.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from actionmd.core.fixed_point import SolverSettings, solver_record
from actionmd.core.integrators import DirectIntegrator, SymplecticIntegrator
from actionmd.fewbody.nbody import GravitationalSystem, velocity_verlet

log = logging.getLogger(__name__)

ESCAPE_RADIUS = 1e3  # reduced units; a body this far out has left the bound orbit


@dataclass
class Rollout:
    """A trajectory on the long-step time grid ``time = k * Dt``."""

    method: str
    time: np.ndarray
    q: np.ndarray
    p: np.ndarray
    energy: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    wall_time: float
    meta: dict[str, Any] = field(default_factory=dict)
    residual_history: np.ndarray | None = None

    def arrays(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "q": self.q,
            "p": self.p,
            "energy": self.energy,
            "iterations": self.iterations,
            "residual": self.residual,
            "wall_time": np.array(self.wall_time),
            **({} if self.residual_history is None else {"residual_history": self.residual_history}),
            "meta": {"method": self.method, **self.meta},
        }


def run_model_rollout(
    system: GravitationalSystem,
    q0: np.ndarray,
    p0: np.ndarray,
    dt: float,
    steps: int,
    direct: torch.nn.Module,
    generating_function: torch.nn.Module | None = None,
    settings: SolverSettings | None = None,
    method: str = "direct",
    log_every: int = 0,
) -> Rollout:
    """Roll out the direct model (no ``generating_function``) or the symplectic corrector."""
    dtype = next(direct.parameters()).dtype
    if generating_function is None:
        integrator: DirectIntegrator | SymplecticIntegrator = DirectIntegrator(direct)
    else:
        settings = settings or SolverSettings()
        # Dt / 2m per body, shaped like a batch of states (1, N, 1), for the free-flight preconditioner
        scale = torch.as_tensor(0.5 * dt / np.asarray(system.masses, dtype=float), dtype=dtype).reshape(1, -1, 1)
        integrator = SymplecticIntegrator(generating_function.increment, direct, settings, scale)
    n = q0.shape[0]
    q_out = np.full((steps + 1, *q0.shape), np.nan)
    p_out = np.full((steps + 1, *p0.shape), np.nan)
    histories: list[list[float]] = []  # residual of every fixed-point iteration, per step
    q_out[0], p_out[0] = q0, p0
    q = torch.as_tensor(q0, dtype=dtype).reshape(1, n, -1)
    p = torch.as_tensor(p0, dtype=dtype).reshape(1, n, -1)
    diverged_at = None
    unconverged = 0
    t0 = time.perf_counter()
    for k in range(1, steps + 1):
        q, p = integrator.step(q, p)
        if isinstance(integrator, SymplecticIntegrator) and integrator.last is not None:
            last = integrator.last
            histories.append(last.residuals)
            if settings is not None and settings.iterations is None and not last.converged:
                unconverged += 1
        qn, pn = q[0].numpy(), p[0].numpy()
        if not (np.all(np.isfinite(qn)) and np.all(np.isfinite(pn))) or np.abs(qn).max() > ESCAPE_RADIUS:
            diverged_at = k
            log.warning("%s: state left the bound region at step %d; stopping", method, k)
            break
        q_out[k], p_out[k] = qn, pn
        if log_every and k % log_every == 0:
            log.info("%s: step %d / %d", method, k, steps)
    wall = time.perf_counter() - t0
    if unconverged:
        log.warning("%s: %d steps did not reach the solver tolerance", method, unconverged)
    history, counts, residual = solver_record(histories, steps)
    return Rollout(
        method,
        dt * np.arange(steps + 1),
        q_out,
        p_out,
        system.energy(q_out, p_out),
        counts,
        residual,
        wall,
        {"diverged_at": diverged_at, "unconverged_steps": unconverged, "dt": dt},
        history if generating_function is not None else None,
    )


def run_verlet_rollout(
    system: GravitationalSystem,
    q0: np.ndarray,
    p0: np.ndarray,
    dt: float,
    steps: int,
    substeps: int = 1,
    method: str = "reference",
) -> Rollout:
    """Velocity Verlet at ``dt / substeps``, saved every ``substeps`` steps (on the long-step grid)."""
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        q, p = velocity_verlet(system, q0, p0, dt / substeps, steps * substeps, save_every=substeps)
    wall = time.perf_counter() - t0
    bad = ~(np.isfinite(q).all(axis=(1, 2)) & (np.abs(q).max(axis=(1, 2)) < ESCAPE_RADIUS))
    diverged_at = int(np.argmax(bad)) if bad.any() else None
    if diverged_at is not None:
        q[diverged_at:] = np.nan
        p[diverged_at:] = np.nan
    with np.errstate(all="ignore"):
        energy = system.energy(q, p)
    return Rollout(
        method,
        dt * np.arange(steps + 1),
        q,
        p,
        energy,
        np.zeros(steps, dtype=np.int64),
        np.full(steps, np.nan),
        wall,
        {"diverged_at": diverged_at, "substeps": substeps, "dt": dt},
    )
