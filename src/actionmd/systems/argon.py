"""Liquid argon (SI I.2.5, I.4.5, Fig. 5): the steps of the atomistic workflow.

Reference MD on LAMMPS (:mod:`actionmd.potentials.lammps_lj`) -> metatrain datasets
(:mod:`actionmd.atomistic.dataset`) -> FlashMD models trained and exported with
metatrain (:mod:`actionmd.atomistic.training`) -> NVE rollouts with the direct
and the symplectic map (:mod:`actionmd.atomistic.rollout`) -> metrics and Fig. 5
(:mod:`actionmd.analysis.argon`). ``cfg`` is the
resolved config of the system (:func:`actionmd.config.resolve`): ``physics``,
``reference``, ``pairing``, ``training``, ``rollout``, ``solver``, ``device``.
Units: A, fs (ps in the figure and metrics), eV, u, (eV*u)^(1/2).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actionmd.atomistic import rollout
from actionmd.atomistic.dataset import build_datasets, split_runs, to_atoms, write_initial
from actionmd.core.device import pick_device
from actionmd.dynamics import ensemble
from actionmd.io.checkpoint import LoopCheckpoint
from actionmd.io.trajectory import read_trajectory
from actionmd.naming import long_step, parse_method
from actionmd.potentials.lammps_lj import LJArgon, MDProtocol, potential_energies, run_nve, run_reference

log = logging.getLogger(__name__)


def lj_system(physics: dict[str, Any]):
    return LJArgon(**{**physics, "cells": tuple(physics["cells"])})


def md_protocol(reference: dict[str, Any]):
    return MDProtocol(
        dt=reference["dt"],
        npt_steps=reference["npt_steps"],
        nve_steps=reference["nve_steps"],
        save_every=reference["save_every"],
    )


def simulate_reference(cfg: dict[str, Any], run: int, out: str | Path, workdir: str | Path | None = None) -> None:
    """One reference run (NPT equilibration, then NVE frames) with seed ``reference.seed + run``."""
    seed = cfg["reference"]["seed"] + run
    log.info("reference run %d (seed %d)", run, seed)
    run_reference(lj_system(cfg["physics"]), md_protocol(cfg["reference"]), seed, Path(out), workdir, log.info)


def build_dataset(cfg: dict[str, Any], trajectories: list[str | Path], out_dir: str | Path) -> dict[str, int]:
    """Datasets split by run; the first frame of each held-out run is a rollout's initial state."""
    pair, ref = cfg["pairing"], cfg["reference"]
    splits = split_runs(len(trajectories), pair["validation_runs"], pair["held_out_runs"])
    counts = build_datasets(trajectories, pair["lag"], pair["stride"], ref["save_every"], splits, out_dir)
    held_out = [read_trajectory(trajectories[r]) for r in splits["held_out"]]
    states = [to_atoms(t, t.positions[0], t.momenta[0], {}) for t in held_out]
    write_initial(Path(out_dir) / "initial.extxyz", states, [str(trajectories[r]) for r in splits["held_out"]])
    log.info("samples: %s", counts)
    return counts


def run_rollout(
    method: str,
    cfg: dict[str, Any],
    initial: str | Path,
    out: str | Path,
    direct: str | Path | None = None,
    symplectic: str | Path | None = None,
    threads: int = 1,
) -> None:
    """One NVE rollout from the first held-out state: 'reference' (LAMMPS VV at dt) or an ML method.

    Energies are those of the potential shifted to zero at the cutoff: with the kinetic
    energy, the quantity that dynamics with truncated forces conserves (the plain cut
    potential jumps whenever a pair crosses the cutoff).
    """
    torch.set_num_threads(threads)
    model, _ = parse_method(method)
    traj, q0, p0 = rollout.initial_state(initial)
    system = lj_system(cfg["physics"])
    roll = cfg["rollout"]
    big_dt = long_step(cfg)
    steps, save_every = roll["steps"], roll["save_every"]
    checkpoint = None
    if model == "reference":  # LAMMPS runs the whole NVE trajectory itself
        lag, dt = cfg["pairing"]["lag"], cfg["reference"]["dt"]
        t0 = time.perf_counter()
        res = run_nve(q0, p0, traj.cell, system, dt, steps * lag, save_every * lag, log.info, shift=True)
        arrays: dict[str, Any] = {
            "positions": res["positions"],
            "momenta": res["momenta"],
            "wall_time": np.array(time.perf_counter() - t0),
            "steps_done": np.array(steps),
            "meta": {"method": method, "diverged_at": None},
        }
        potential = res["potential_energy"]
    elif model in ("direct", "symplectic"):
        dt = big_dt
        checkpoint = LoopCheckpoint.for_job(out, [cfg, method], [initial, direct, symplectic])
        device = pick_device(cfg["device"])
        integrator, _ = rollout.ml_integrator(method, direct, symplectic, traj, device, big_dt, cfg.get("solver"))
        stepper = ensemble.stepper(integrator, traj.masses)  # NVE
        arrays = rollout.run(
            method, stepper, q0, p0, traj.masses, steps, save_every, roll["max_temperature"], checkpoint, integrator
        )
        valid = np.isfinite(arrays["positions"]).all(axis=(1, 2))
        potential = np.full(len(valid), np.nan)
        potential[valid] = potential_energies(arrays["positions"][valid], traj.cell, system, shift=True)
    else:
        raise ValueError(f"argon has no rollout method {method!r}")
    meta = {"dt": dt, "n_atoms": traj.n_atoms, "long_step": big_dt, "initial": str(initial)}
    rollout.finish(arrays, out, traj.masses, traj.numbers, big_dt * save_every, meta, traj.cell, potential)
    if checkpoint is not None:
        checkpoint.remove()
