"""One rollout for every atomistic system: the learned maps, the ensemble's loop, the frames' observables.

A system's rollout (:mod:`actionmd.systems`) supplies only what differs: its initial
state, its reference integrator, its ensemble (:func:`actionmd.dynamics.ensemble.stepper`)
and how its reference potential evaluates a frame. This module supplies the rest:

* :func:`ml_integrator`: the exported FlashMD models as a long-step map, the direct one
  or the symplectic one at K fixed-point iterations (or converged), with the converged
  solve's free-flight preconditioner Dt / 2m (:func:`half_step_over_mass`);
* :func:`run`: the loop (:func:`actionmd.dynamics.stepping.run_steps`) with progress
  every 5 % of the run and a checkpoint;
* :func:`finish`: the reference potential energy, kinetic energy and temperatures (total
  and per species) of every saved frame, the times, the metadata, one log line, the file.

Units: A, fs, eV, u, (eV*u)^(1/2), K. The potential energy is computed after the run, so
that the wall time covers the steps only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import units
from ase.data import chemical_symbols

from actionmd.atomistic.model import DirectMap, ExportedModel, SymmetrisedIncrement
from actionmd.core.fixed_point import SolverSettings
from actionmd.core.integrators import DirectIntegrator, SymplecticIntegrator
from actionmd.dynamics.energy import conserved_quantity, kinetic_energy, species_temperatures, temperature
from actionmd.dynamics.stepping import run_steps
from actionmd.io import InputError, save_npz
from actionmd.io.checkpoint import LoopCheckpoint
from actionmd.io.trajectory import Trajectory, read_trajectory
from actionmd.naming import parse_method

log = logging.getLogger(__name__)


def initial_state(path: str | Path, frame: int = 0) -> tuple[Trajectory, np.ndarray, np.ndarray]:
    """The trajectory of initial states and frame ``frame``'s positions (A) and momenta ((eV*u)^(1/2))."""
    traj = read_trajectory(path, require_continuous=False)
    if not 0 <= frame < len(traj):
        raise InputError(f"{path}: has {len(traj)} initial states, run {frame} asked for")
    return traj, traj.positions[frame], traj.momenta[frame]


def half_step_over_mass(masses: np.ndarray, long_step: float) -> torch.Tensor:
    """Dt / 2m, (N, 1) in A per (eV*u)^(1/2): the midpoint's free-flight response to its momentum.

    ``masses`` (N,) in u, ``long_step`` Dt in fs (ASE's time unit is A sqrt(u/eV)).
    """
    return 0.5 * long_step * units.fs / torch.as_tensor(masses, dtype=torch.float64).reshape(-1, 1)


def load_ml_maps(
    method: str,
    direct: str | Path | None,
    symplectic: str | Path | None,
    traj: Trajectory,
    device: torch.device,
    long_step: float,
    solver: dict[str, Any] | None,
) -> tuple[DirectMap, SymmetrisedIncrement | None, SolverSettings | None]:
    """The exported models of a rollout as maps: (direct map, symmetrised increment or None, solver settings or None).

    ``method`` 'direct', 'symplectic_k<K>' or 'symplectic_converged', ``traj`` the
    trajectory whose atoms and cell the models run on; models trained for another long
    step than ``long_step`` (fs) are refused.
    """
    model, iterations = parse_method(method)
    if direct is None or (model == "symplectic" and symplectic is None):
        raise InputError(f"rollout {method} needs --direct{' and --symplectic' if model == 'symplectic' else ''}")
    args = (torch.as_tensor(traj.numbers), torch.as_tensor(traj.cell), torch.as_tensor(traj.masses), device)
    models = [ExportedModel(direct, *args)]
    if model == "symplectic":
        models.append(ExportedModel(symplectic, *args))
    for exported in models:
        exported.check_timestep(long_step)
    if model != "symplectic":  # the direct model needs no solver settings (a direct rollout's config has none)
        return DirectMap(models[0]), None, None
    return DirectMap(models[0]), SymmetrisedIncrement(models[1]), SolverSettings.from_config(solver, iterations)


def ml_integrator(
    method: str,
    direct: str | Path | None,
    symplectic: str | Path | None,
    traj: Trajectory,
    device: torch.device,
    long_step: float,
    solver: dict[str, Any] | None,
) -> tuple[DirectIntegrator | SymplecticIntegrator, list[ExportedModel]]:
    """The long-step map of ``method`` (Dt = ``long_step`` fs) and the exported models it evaluates."""
    direct_map, increment, settings = load_ml_maps(method, direct, symplectic, traj, device, long_step, solver)
    models = [direct_map.model] + ([increment.model] if increment is not None else [])
    if increment is None:
        return DirectIntegrator(direct_map), models
    scale = half_step_over_mass(traj.masses, long_step) if settings.free_flight else None
    return SymplecticIntegrator(increment, direct_map, settings, scale), models


def run(
    method: str,
    stepper: Any,
    q0: np.ndarray,
    p0: np.ndarray,
    masses: np.ndarray,
    steps: int,
    save_every: int,
    max_temperature: float,
    checkpoint: LoopCheckpoint,
    integrator: Any = None,
) -> dict[str, Any]:
    """``steps`` steps of ``stepper`` from (q0, p0), every ``save_every``-th state kept, progress every 5 %."""
    return run_steps(
        stepper, q0, p0, masses, steps, save_every, max_temperature, method, max(steps // 20, 1), integrator, checkpoint
    )


def frame_energies(evaluate: Callable[[np.ndarray], float], positions: np.ndarray) -> np.ndarray:
    """``evaluate(q)`` (eV) of every finite frame of (F, N, 3) positions; NaN for the others."""
    out = np.full(len(positions), np.nan)
    for i, q in enumerate(positions):
        if np.isfinite(q).all():
            out[i] = evaluate(q)
    return out


def finish(
    arrays: dict[str, Any],
    out: str | Path,
    masses: np.ndarray,
    numbers: np.ndarray,
    frame_interval: float,
    meta: dict[str, Any],
    cell: np.ndarray | None = None,
    potential_energy: np.ndarray | None = None,
) -> None:
    """Add every frame's observables and the metadata to a run's ``arrays`` and write them to ``out``.

    ``frame_interval``: fs between saved frames; ``potential_energy`` (eV per frame) unless the
    stepper recorded it (NPT); ``cell`` (A) of a fixed cell (NVE, NVT). Temperatures: total
    (3N - 3 degrees of freedom) and per species, as ``temperature_<symbol>``.
    """
    momenta = arrays["momenta"]
    if potential_energy is not None:
        arrays["potential_energy"] = potential_energy
    arrays["kinetic_energy"] = kinetic_energy(momenta, masses)
    arrays["temperature"] = temperature(momenta, masses)
    per_species = species_temperatures(np.nan_to_num(momenta), masses, numbers)
    finite = np.isfinite(momenta).all(axis=(1, 2))
    for z, values in per_species.items():
        arrays[f"temperature_{chemical_symbols[int(z)]}"] = np.where(finite, values, np.nan)
    arrays["time"] = frame_interval * np.arange(len(momenta))
    arrays["numbers"] = numbers
    if cell is not None:
        arrays["cell"] = cell
    arrays["meta"].update(meta)
    n_atoms = len(numbers)
    if "conserved" in arrays:  # NPT: the barostat's, with the cell's energy and work
        conserved = arrays["conserved"] / n_atoms
    else:
        work = arrays.get("thermostat_work", 0.0)
        conserved = conserved_quantity(arrays["potential_energy"], arrays["kinetic_energy"], n_atoms, work)
    log.info(
        "%s: %.1f s wall for %d steps; T = %.1f K; conserved quantity spread %.3e eV/atom",
        arrays["meta"]["method"],
        float(arrays["wall_time"]),
        int(arrays["steps_done"]),
        float(np.nanmean(arrays["temperature"])),
        float(np.nanmax(conserved) - np.nanmin(conserved)),
    )
    save_npz(out, **arrays)
