"""The loop of every atomistic rollout: apply a stepper, keep every ``save_every``-th state.

The stepper is any ensemble's (:func:`actionmd.dynamics.ensemble.stepper`) around a
learned long-step map or the reference integrator. States are (q, p) in A and
(eV*u)^(1/2); with a thermostat, the energy it has added so far is saved with every
frame (``thermostat_work``, eV), so that H - thermostat_work, the conserved quantity,
is known. The wall time covers the steps only. A run that blows up (non-finite state,
an unphysical cell, or a kinetic temperature beyond ``max_temperature``) stops there
and its remaining frames are NaN, never made up. Runs checkpoint and resume
(:class:`actionmd.io.checkpoint.LoopCheckpoint`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import numpy as np
import torch

from actionmd.core.fixed_point import solver_record
from actionmd.core.integrators import SymplecticIntegrator
from actionmd.dynamics.barostat import UnphysicalState
from actionmd.dynamics.energy import temperature
from actionmd.io.checkpoint import LoopCheckpoint, restore, state_of

log = logging.getLogger(__name__)


def run_steps(
    stepper,
    q0: np.ndarray,
    p0: np.ndarray,
    masses: np.ndarray,
    steps: int,
    save_every: int,
    max_temperature: float = 1e4,
    method: str = "direct",
    progress_every: int = 0,
    integrator=None,
    checkpoint: LoopCheckpoint | None = None,
) -> dict[str, Any]:
    """Apply ``stepper.step(q, p)`` ``steps`` times from (q0, p0); arrays per saved frame.

    A stepper with a ``thermostat_work`` attribute (OBABO, NPT) has it saved per frame; one with
    a ``state(q, p)`` method (NPT: cell, volume, potential energy, conserved quantity) has each of
    its entries saved per frame. ``integrator``, when symplectic, has its solver record kept.
    The run stops at a non-finite state or a kinetic temperature above ``max_temperature``; the
    frames after that stay NaN.

    ``checkpoint``: the loop's state (step, q, p, the frames so far, the stepper's
    ``checkpoint_state()``, elapsed wall time) is saved there between steps, and a saved state of
    the same job is resumed: the frames are those of an uninterrupted run (see
    :mod:`actionmd.io.checkpoint`). The caller removes it once the output is written.
    """
    if steps % save_every:
        raise ValueError(f"steps ({steps}) must be a multiple of save_every ({save_every})")
    symplectic = integrator if isinstance(integrator, SymplecticIntegrator) else None
    settings = symplectic.settings if symplectic is not None else None
    frames = steps // save_every + 1
    positions = np.full((frames, *q0.shape), np.nan)
    momenta = np.full((frames, *p0.shape), np.nan)
    positions[0], momenta[0] = q0, p0
    q = torch.as_tensor(q0, dtype=torch.float64)
    p = torch.as_tensor(p0, dtype=torch.float64)
    has_work = hasattr(stepper, "thermostat_work")
    work = np.zeros(frames)
    extras: dict[str, np.ndarray] = {}
    if hasattr(stepper, "state"):
        for key, value in stepper.state(q, p).items():
            extras[key] = np.full((frames, *np.shape(value)), np.nan)
            extras[key][0] = value
    histories: list[list[float]] = []
    unconverged = 0
    diverged_at = None
    first, wall_before = 1, 0.0
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        first, wall_before = saved["step"] + 1, saved["wall"]
        q, p = saved["q"].clone(), saved["p"].clone()
        positions, momenta, work, extras = saved["positions"], saved["momenta"], saved["work"], saved["extras"]
        histories, unconverged = saved["histories"], saved["unconverged"]
        restore(stepper, saved["stepper"])
        log.info("%s: resuming at step %d / %d", method, first, steps)
    t0 = time.perf_counter()

    def loop_state(k: int) -> dict[str, Any]:
        return {
            "step": k,
            "q": q,
            "p": p,
            "positions": positions,
            "momenta": momenta,
            "work": work,
            "extras": extras,
            "histories": histories,
            "unconverged": unconverged,
            "stepper": state_of(stepper),
            "wall": wall_before + time.perf_counter() - t0,
        }

    with checkpoint.guard() if checkpoint is not None else contextlib.nullcontext():
        for k in range(first, steps + 1):
            try:
                q, p = stepper.step(q, p)
            except UnphysicalState as exc:
                diverged_at = k
                log.warning("%s: blew up at step %d (%s); stopping", method, k, exc)
                break
            if symplectic is not None and symplectic.last is not None:
                histories.append(symplectic.last.residuals)
                unconverged += int(
                    settings is not None and settings.iterations is None and not symplectic.last.converged
                )
            pn = p.numpy()
            temp = float(temperature(pn, masses))
            if not (torch.isfinite(q).all() and np.isfinite(pn).all()) or temp > max_temperature:
                diverged_at = k
                log.warning("%s: blew up at step %d (T = %.3g K); stopping", method, k, temp)
                break
            if k % save_every == 0:
                i = k // save_every
                positions[i], momenta[i] = q.numpy(), pn
                if has_work:
                    work[i] = float(stepper.thermostat_work)
                for key, value in (stepper.state(q, p) if extras else {}).items():
                    extras[key][i] = value
            if progress_every and k % progress_every == 0:
                log.info(
                    "%s: step %d / %d, T = %.1f K, %.3f s/step",
                    method,
                    k,
                    steps,
                    temp,
                    (time.perf_counter() - t0) / (k - first + 1),
                )
            if checkpoint is not None and k < steps:
                checkpoint.maybe_save(lambda k=k: loop_state(k), f"step {k} / {steps}")
    wall = wall_before + time.perf_counter() - t0
    if unconverged:
        log.warning("%s: %d steps did not reach the solver tolerance", method, unconverged)
    history, counts, residual = solver_record(histories, steps)
    return {
        "positions": positions,
        "momenta": momenta,
        "iterations": counts,
        "residual": residual,
        "wall_time": np.array(wall),
        "steps_done": np.array(diverged_at - 1 if diverged_at else steps),
        **({"thermostat_work": work} if has_work else {}),
        **extras,
        **({"residual_history": history} if symplectic is not None else {}),
        "meta": {"method": method, "diverged_at": diverged_at, "unconverged_steps": unconverged},
    }
