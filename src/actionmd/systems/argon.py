"""Liquid argon (SI I.2.5, I.4.5, Fig. 5): the steps of the atomistic workflow.

Reference MD on LAMMPS (:mod:`actionmd.potentials.lammps_lj`) -> metatrain datasets
(:mod:`actionmd.atomistic.dataset`) -> FlashMD models trained and exported with
metatrain (:mod:`actionmd.atomistic.training`) -> NVE rollouts with the direct
and the symplectic map (:mod:`actionmd.dynamics.stepping`, evaluated through
:mod:`actionmd.atomistic.model`) -> metrics and the figure. ``cfg`` is the
resolved config of the system (:func:`actionmd.config.resolve`): ``physics``,
``reference``, ``pairing``, ``training``, ``rollout``, ``solver``, ``device``.
Units: A, fs (ps in the figure and metrics), eV, u, (eV*u)^(1/2).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from actionmd.analysis.observables import drift
from actionmd.io import atomic_path, save_npz
from actionmd.io.checkpoint import LoopCheckpoint

log = logging.getLogger(__name__)


def lj_system(physics: dict[str, Any]):
    from actionmd.potentials.lammps_lj import LJArgon

    return LJArgon(**{**physics, "cells": tuple(physics["cells"])})


def md_protocol(reference: dict[str, Any]):
    from actionmd.potentials.lammps_lj import MDProtocol

    return MDProtocol(
        dt=reference["dt"],
        npt_steps=reference["npt_steps"],
        nve_steps=reference["nve_steps"],
        save_every=reference["save_every"],
    )


def simulate_reference(cfg: dict[str, Any], run: int, out: str | Path, workdir: str | Path | None = None) -> None:
    """One reference run (NPT equilibration, then NVE frames) with seed ``reference.seed + run``."""
    from actionmd.potentials.lammps_lj import run_reference

    seed = cfg["reference"]["seed"] + run
    log.info("reference run %d (seed %d)", run, seed)
    run_reference(lj_system(cfg["physics"]), md_protocol(cfg["reference"]), seed, Path(out), workdir, log.info)


def build_dataset(cfg: dict[str, Any], trajectories: list[str | Path], out_dir: str | Path) -> dict[str, int]:
    """Datasets split by run; the first frame of each held-out run is a rollout's initial state."""
    from actionmd.atomistic.dataset import _atoms, build_datasets, split_runs, write_initial
    from actionmd.io.trajectory import read_trajectory

    pair, ref = cfg["pairing"], cfg["reference"]
    splits = split_runs(len(trajectories), pair["validation_runs"], pair["held_out_runs"])
    counts = build_datasets(trajectories, pair["lag"], pair["stride"], ref["save_every"], splits, out_dir)
    held_out = [read_trajectory(trajectories[r]) for r in splits["held_out"]]
    states = [_atoms(t, t.positions[0], t.momenta[0], {}) for t in held_out]
    write_initial(Path(out_dir) / "initial.extxyz", states, [str(trajectories[r]) for r in splits["held_out"]])
    log.info("samples: %s", counts)
    return counts


def long_step(cfg: dict[str, Any]) -> float:
    """Dt in fs."""
    return cfg["pairing"]["lag"] * cfg["reference"]["dt"]


def train_model(
    kind: str, cfg: dict[str, Any], dataset_dir: str | Path, workdir: str | Path, out: str | Path, threads: int = 1
) -> None:
    from actionmd.atomistic.dataset import species_masses
    from actionmd.atomistic.training import make_options, train
    from actionmd.fewbody.training import pick_device

    dataset_dir = Path(dataset_dir).resolve()
    options = make_options(
        kind,
        cfg["training"],
        long_step(cfg),
        species_masses(dataset_dir / f"{kind}_train.extxyz"),
        dataset_dir / f"{kind}_train.extxyz",
        dataset_dir / f"{kind}_val.extxyz",
        pick_device(cfg["device"]).type,
    )
    train(kind, options, workdir, out, threads, log.info)


def _initial_state(path: str | Path):
    from actionmd.io.trajectory import read_trajectory

    traj = read_trajectory(path, require_continuous=False)
    return traj, traj.positions[0], traj.momenta[0]


def run_rollout(
    method: str,
    cfg: dict[str, Any],
    initial: str | Path,
    out: str | Path,
    direct: str | Path | None = None,
    symplectic: str | Path | None = None,
    threads: int = 1,
) -> None:
    """One NVE rollout from the first held-out state: 'reference' (LAMMPS VV at dt) or an ML method."""
    import torch

    from actionmd.dynamics.energy import kinetic_energy, temperature
    from actionmd.dynamics.stepping import load_ml_maps, run_ml_rollout
    from actionmd.fewbody.rollout import parse_method
    from actionmd.fewbody.training import pick_device
    from actionmd.potentials.lammps_lj import potential_energies, run_nve

    torch.set_num_threads(threads)
    model, iterations = parse_method(method)
    traj, q0, p0 = _initial_state(initial)
    system = lj_system(cfg["physics"])
    roll = cfg["rollout"]
    big_dt = long_step(cfg)
    steps, save_every = roll["steps"], roll["save_every"]
    lag = cfg["pairing"]["lag"]
    if model == "reference":
        import time

        t0 = time.perf_counter()
        res = run_nve(
            q0, p0, traj.cell, system, cfg["reference"]["dt"], steps * lag, save_every * lag, log.info, shift=True
        )
        wall = time.perf_counter() - t0
        arrays: dict[str, Any] = {
            "positions": res["positions"],
            "momenta": res["momenta"],
            "wall_time": np.array(wall),
            "steps_done": np.array(steps),
            "meta": {"method": method, "diverged_at": None, "dt": cfg["reference"]["dt"]},
        }
        potential = res["potential_energy"]
    elif model in ("direct", "symplectic"):
        checkpoint = LoopCheckpoint.for_job(out, [cfg, method], [initial, direct, symplectic])
        direct_map, increment, settings = load_ml_maps(
            method, direct, symplectic, traj, pick_device(cfg["device"]), big_dt, cfg.get("solver")
        )
        arrays = run_ml_rollout(
            q0,
            p0,
            traj.masses,
            steps,
            save_every,
            direct_map,
            increment,
            settings,
            roll["max_temperature"],
            method,
            progress_every=max(steps // 20, 1),
            checkpoint=checkpoint,
            map_step=big_dt,
        )
        arrays["meta"]["dt"] = big_dt
        valid = np.isfinite(arrays["positions"]).all(axis=(1, 2))
        potential = np.full(len(valid), np.nan)
        potential[valid] = potential_energies(arrays["positions"][valid], traj.cell, system, shift=True)
    else:
        raise ValueError(f"argon has no rollout method {method!r}")
    # energies of the potential shifted to zero at the cutoff: with the kinetic energy, the
    # quantity that dynamics with truncated forces conserves (the plain cut potential jumps
    # whenever a pair crosses the cutoff)
    arrays["time"] = big_dt * save_every * np.arange(len(potential))
    arrays["potential_energy"] = potential
    arrays["kinetic_energy"] = kinetic_energy(arrays["momenta"], traj.masses)
    arrays["temperature"] = temperature(arrays["momenta"], traj.masses)
    arrays["meta"].update({"n_atoms": traj.n_atoms, "long_step": big_dt, "initial": str(initial)})
    total = (arrays["potential_energy"] + arrays["kinetic_energy"]) / traj.n_atoms
    log.info(
        "%s: %.1f s wall; max |E - E0| = %.3e eV/atom; final T = %.1f K",
        method,
        float(arrays["wall_time"]),
        float(np.nanmax(np.abs(total - total[0]))),
        float(arrays["temperature"][np.isfinite(arrays["temperature"])][-1]),
    )
    save_npz(out, **arrays)
    if model != "reference":
        checkpoint.remove()


ENERGY_AXIS_LIMIT = 1e4  # meV/atom: energies of blown-up runs are clipped here in the figure

REQUIRED = ("time", "potential_energy", "kinetic_energy", "temperature", "wall_time", "meta")


def load_rollouts(paths: list[str | Path]) -> dict[str, dict[str, Any]]:
    from actionmd.fewbody.rollout import load_rollouts

    return load_rollouts(paths, REQUIRED)


def rollout_metrics(roll: dict[str, Any]) -> dict[str, Any]:
    """Energy and temperature drift (linear fits over the run), extremes and cost of one rollout."""
    n = roll["meta"]["n_atoms"]
    t_ps = roll["time"] / 1000.0
    e = (roll["potential_energy"] + roll["kinetic_energy"]) / n
    de = e - e[0]
    simulated_ps = float(roll["steps_done"]) * roll["meta"]["long_step"] / 1000.0
    iterations = roll.get("iterations")
    done = int(roll["steps_done"])
    diverged = roll["meta"].get("diverged_at")
    return {
        "method": roll["meta"]["method"],
        "energy_drift_meV_per_atom_ps": 1e3 * drift(t_ps, e),
        "max_abs_energy_error_meV_per_atom": 1e3 * float(np.nanmax(np.abs(de))),
        "temperature_drift_K_per_ps": drift(t_ps, roll["temperature"]),
        "mean_temperature_K": float(np.nanmean(roll["temperature"])),
        "final_temperature_K": float(roll["temperature"][np.isfinite(roll["temperature"])][-1]),
        "mean_iterations": float(np.mean(iterations[:done])) if iterations is not None and done else 0.0,
        "wall_time_s": float(roll["wall_time"]),
        "wall_time_s_per_ps": float(roll["wall_time"]) / simulated_ps if simulated_ps > 0 else float("nan"),
        "blew_up_at_ps": float("nan") if diverged is None else diverged * roll["meta"]["long_step"] / 1000.0,
    }


def _order(methods: list[str]) -> list[str]:
    from actionmd.fewbody.rollout import parse_method

    def key(m: str) -> tuple[int, float]:
        kind, k = parse_method(m)
        rank = {"reference": 0, "direct": 1, "symplectic": 2}[kind]
        return rank, float("inf") if (kind == "symplectic" and k is None) else float(k or 0)

    return sorted(methods, key=key)


def write_metrics(paths: list[str | Path], out: str | Path) -> None:
    import pandas as pd

    rollouts = load_rollouts(paths)
    table = pd.DataFrame([rollout_metrics(rollouts[m]) for m in _order(list(rollouts))])
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    log.info("metrics:\n%s", table.to_string(index=False))


LABELS = {"reference": "reference VV (1 fs)", "direct": "direct"}


def plot(paths: list[str | Path], pdf: str | Path, png: str | Path | None = None) -> None:
    """Fig. 5: total energy per atom minus its initial value, and kinetic temperature, vs time."""
    from actionmd.analysis.plotting import _save, label, plt

    rollouts = load_rollouts(paths)
    methods = _order(list(rollouts))
    ks = [m for m in methods if m.startswith("symplectic")]
    cmap = plt.get_cmap("viridis")
    colors = {"reference": "black", "direct": "tab:red"}
    for i, m in enumerate(ks):
        colors[m] = cmap(0.15 + 0.7 * i / max(len(ks) - 1, 1))
    fig, (ax_e, ax_t) = plt.subplots(2, 1, figsize=(6.4, 6.8), sharex=True, constrained_layout=True)
    top, bottom = 0.0, 0.0
    for m in methods:
        r = rollouts[m]
        n = r["meta"]["n_atoms"]
        e = 1e3 * (r["potential_energy"] + r["kinetic_energy"]) / n
        t = r["time"] / 1000.0
        de = np.clip(e - e[0], -ENERGY_AXIS_LIMIT, ENERGY_AXIS_LIMIT)
        style = {
            "color": colors[m],
            "lw": 1.6 if m in ("reference", "direct") else 1.2,
            "ls": "--" if m == "reference" else "-",
            "label": label(m, LABELS),
            "zorder": 3 if m == "reference" else 2,
        }
        ax_e.plot(t, de, **style)
        ax_t.plot(t, r["temperature"], **style)
        top = max(top, float(np.nanmax(de)))
        bottom = min(bottom, float(np.nanmin(de)))
        if r["meta"].get("diverged_at"):
            last = int(np.flatnonzero(np.isfinite(de))[-1])
            ax_e.plot(t[last], de[last], "x", color=colors[m], ms=8, mew=2, zorder=4)
            ax_t.plot(t[last], r["temperature"][last], "x", color=colors[m], ms=8, mew=2, zorder=4)
    # symmetric log scale: linear within +-0.01 meV/atom (the converged map's excursions),
    # logarithmic beyond, clipped where runs blow up
    ax_e.set_yscale("symlog", linthresh=1e-2)
    ax_e.set_ylim(1.5 * min(bottom, -0.1), 1.5 * max(top, 0.1))
    ax_e.set_ylabel("(E - E0) / atom (meV)")
    big_dt = rollouts[methods[-1]]["meta"]["long_step"]
    n_atoms = rollouts[methods[-1]]["meta"]["n_atoms"]
    ax_e.set_title(f"Argon (Lennard-Jones, {n_atoms} atoms), NVE, long step {big_dt:.0f} fs")
    ax_t.set_ylabel("kinetic temperature (K)")
    ax_t.set_xlabel("time (ps)")
    ax_t.set_yscale("log")
    handles, labels = ax_e.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8)
    ax_t.text(0.99, 0.02, "x: run blew up (stopped)", transform=ax_t.transAxes, ha="right", va="bottom", fontsize=8)
    for ax in (ax_e, ax_t):
        ax.grid(alpha=0.3)
    _save(fig, pdf, png)
