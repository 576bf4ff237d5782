"""Liquid water with q-TIP4P/f (SI I.2.3, I.4.3, Fig. 2): the steps of the water workflow.

Reference data: a box of q-TIP4P/f water (:mod:`actionmd.potentials.qtip4pf`) equilibrated
as a 300 K liquid at the experimental density, then one independent run per
state point of the grid (cell volume scale) x (temperature): Langevin NVT, then
NVE velocity Verlet frames (:mod:`actionmd.dynamics.state_point`). Pairs at a lag of 8 steps
(2 fs) feed the FlashMD models (:mod:`actionmd.atomistic.dataset`,
:mod:`actionmd.atomistic.training`); state points, not frames, are split
between training and validation. Rollouts are NVT at the rollout temperature
with the OBABO split and stochastic velocity rescaling around the long-step
map (:func:`actionmd.dynamics.ensemble.stepper`, run and recorded by
:mod:`actionmd.atomistic.rollout`): the reference is q-TIP4P/f velocity Verlet at
the MD step in the same split. Metrics and Fig. 2: :mod:`actionmd.analysis.water`.

``cfg`` is the resolved config of the system (:func:`actionmd.config.resolve`).
Units: A, fs (ps in the figure and metrics), eV, u, (eV*u)^(1/2), K.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actionmd.atomistic import rollout
from actionmd.atomistic.dataset import build_datasets, last_frame, split_state_points, write_initial
from actionmd.core.device import pick_device
from actionmd.dynamics import ensemble
from actionmd.dynamics.state_point import StatePointProtocol, run_state_point
from actionmd.dynamics.thermostat import SVRThermostat, VelocityVerletMap
from actionmd.io import InputError
from actionmd.io.checkpoint import LoopCheckpoint
from actionmd.io.trajectory import write_frames
from actionmd.naming import long_step, parse_method, state_point_name
from actionmd.potentials.qtip4pf import QTIP4PFCalculator, water_box
from actionmd.potentials.qtip4pf_metatomic import export_qtip4pf

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# reference data
# --------------------------------------------------------------------------------------


def calculator(physics: dict[str, Any], threads: int = 1):
    """q-TIP4P/f ASE calculator with the configured Ewald parameters."""
    return QTIP4PFCalculator(
        ewald_cutoff=physics["ewald_cutoff"],
        smearing=physics["smearing"],
        lr_wavelength=physics["lr_wavelength"],
        n_threads=threads,
    )


def potential(physics: dict[str, Any], threads: int = 1):
    """The q-TIP4P/f model (:class:`actionmd.potentials.qtip4pf.QTIP4PF`) with the configured Ewald parameters."""
    return calculator(physics, threads).model


def export_potential(cfg: dict[str, Any], out: str | Path) -> None:
    """The configured q-TIP4P/f as an exported metatomic model (energy; forces/stress by the engine's autograd)."""
    physics = cfg["physics"]
    export_qtip4pf(out, physics["ewald_cutoff"], physics["smearing"], physics["lr_wavelength"])
    log.info("exported q-TIP4P/f to %s", out)


def equilibrate(cfg: dict[str, Any], out: str | Path, threads: int = 1) -> None:
    """A 300 K liquid at the experimental density from a lattice of randomly oriented molecules.

    Langevin NVT at ``physics.temperature`` for ``equilibration.steps`` of ``equilibration.dt``;
    the output holds the final state (and a second frame ``reference.save_every`` NVE steps on).
    """
    torch.set_num_threads(threads)
    physics, box, eq, ref = cfg["physics"], cfg["box"], cfg["equilibration"], cfg["reference"]
    atoms = water_box(box["molecules_per_side"], physics["density"], eq["seed"], box["lattice"])
    log.info(
        "equilibrating %d molecules in a %.3f A cube at %.0f K",
        len(atoms) // 3,
        atoms.cell[0, 0],
        physics["temperature"],
    )
    protocol = StatePointProtocol(
        temperature=physics["temperature"],
        nvt_steps=eq["steps"],
        nve_steps=ref["save_every"],
        save_every=ref["save_every"],
        nvt_dt=eq["dt"],
        nve_dt=ref["dt"],
        tau=physics["langevin_tau"],
    )
    checkpoint = LoopCheckpoint.for_job(out, cfg)
    run_state_point(atoms, protocol, eq["seed"], out, calculator(physics, threads), log.info, checkpoint)
    checkpoint.remove()


def scaled(atoms, volume_scale: float):
    """``atoms`` in a cell of ``volume_scale`` times the volume: molecular centres of mass scaled, molecules rigid."""
    atoms = atoms.copy()
    factor = volume_scale ** (1.0 / 3.0)
    masses = atoms.get_masses().reshape(-1, 3)
    pos = atoms.positions.reshape(-1, 3, 3)
    com = (masses[..., None] * pos).sum(axis=1) / masses.sum(axis=1)[:, None]
    atoms.positions = (pos + (factor - 1.0) * com[:, None, :]).reshape(-1, 3)
    atoms.set_cell(atoms.cell.array * factor, scale_atoms=False)
    return atoms


def simulate_state_point(
    cfg: dict[str, Any], volume: str, temperature: int, initial: str | Path, out: str | Path, threads: int = 1
) -> None:
    """One state point: the equilibrated liquid rescaled to ``volume``, NVT at ``temperature``, NVE frames."""
    torch.set_num_threads(threads)
    physics, ref = cfg["physics"], cfg["reference"]
    seed = state_point_seed(ref["seed"], volume, temperature)
    atoms = scaled(last_frame(initial), float(volume))
    protocol = StatePointProtocol.from_reference(ref, temperature, physics["langevin_tau"])
    log.info("state point V x %s, T = %d K, seed %d: %d molecules", volume, temperature, seed, len(atoms) // 3)
    checkpoint = LoopCheckpoint.for_job(out, [cfg, volume, temperature], [initial])
    frames = run_state_point(atoms, protocol, seed, None, calculator(physics, threads), log.info, checkpoint)
    for frame in frames:
        frame.info.update(volume_scale=float(volume), state_point=state_point_name(volume, temperature))
    write_frames(out, frames)
    checkpoint.remove()


def state_point_seed(seed: int, volume: str, temperature: int) -> int:
    """The Langevin seed of one state point, from ``reference.seed`` and the point alone.

    Not from its place in the grid: adding or removing state points leaves the others' runs
    (and Snakemake's record of their parameters) as they were.
    """

    key = [int(seed), round(float(volume) * 1000), int(temperature)]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def build_dataset(
    cfg: dict[str, Any], trajectories: list[str | Path], out_dir: str | Path, equilibrated: str | Path | None = None
) -> None:
    """Datasets of both models from the state points; the rollouts start from the equilibrated liquid."""
    if equilibrated is None:
        raise InputError("water's datasets need the equilibrated liquid (md-dataset --equilibrated)")
    pair, ref = cfg["pairing"], cfg["reference"]
    splits = split_state_points(len(trajectories), pair["validation_every"])
    counts = build_datasets(trajectories, pair["lag"], pair["stride"], ref["save_every"], splits, out_dir)
    write_initial(Path(out_dir) / "initial.extxyz", [last_frame(equilibrated)], [str(equilibrated)])
    log.info("samples: %s", counts)


# --------------------------------------------------------------------------------------
# rollouts
# --------------------------------------------------------------------------------------


def run_rollout(
    method: str,
    cfg: dict[str, Any],
    initial: str | Path,
    out: str | Path,
    direct: str | Path | None = None,
    symplectic: str | Path | None = None,
    threads: int = 1,
) -> None:
    """One NVT rollout (OBABO, SVR thermostat) from the equilibrated liquid.

    'reference': q-TIP4P/f velocity Verlet at the MD step dt, thermostatted every dt;
    'direct' / 'symplectic_k<K>' / 'symplectic_converged': the ML map at Dt = lag * dt.
    """
    torch.set_num_threads(threads)
    model, _ = parse_method(method)
    traj, q0, p0 = rollout.initial_state(initial)
    physics, roll = cfg["physics"], cfg["rollout"]
    qtip4pf = potential(physics, threads)
    big_dt, lag = long_step(cfg), cfg["pairing"]["lag"]
    thermostat = SVRThermostat(physics["temperature"], physics["thermostat_tau"], seed=roll["seed"])
    checkpoint = LoopCheckpoint.for_job(out, [cfg, method], [initial, direct, symplectic])
    integrator = None
    if model == "reference":
        dt, per_step = cfg["reference"]["dt"], lag  # the MD step, lag of them per long step

        def forces(q: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():  # the forces are autograd's
                return torch.from_numpy(qtip4pf.energy_forces(q.numpy(), traj.cell, traj.numbers)[1])

        inner = VelocityVerletMap(forces, traj.masses, dt)
    elif model in ("direct", "symplectic"):
        dt, per_step = big_dt, 1
        device = pick_device(cfg["device"])
        integrator, _ = rollout.ml_integrator(method, direct, symplectic, traj, device, big_dt, cfg.get("solver"))
        inner = integrator
    else:
        raise ValueError(f"water has no rollout method {method!r}")
    stepper = ensemble.stepper(inner, traj.masses, dt, thermostat)
    arrays = rollout.run(
        method, stepper, q0, p0, traj.masses, roll["steps"] * per_step, roll["save_every"] * per_step,
        roll["max_temperature"], checkpoint, integrator,
    )  # fmt: skip
    arrays["steps_done"] = arrays["steps_done"] // per_step
    t_energy = time.perf_counter()
    energies = rollout.frame_energies(
        lambda q: qtip4pf.energy_breakdown(q, traj.cell, traj.numbers)["total"], arrays["positions"]
    )
    log.info("q-TIP4P/f energies of %d frames: %.1f s", len(energies), time.perf_counter() - t_energy)
    meta = {
        "n_atoms": traj.n_atoms,
        "long_step": big_dt,
        "dt": dt,
        "initial": str(initial),
        "system": cfg.get("name", "water"),  # the rule's params leave the name out (older runs stay valid)
        "target_temperature": physics["temperature"],
    }
    rollout.finish(arrays, out, traj.masses, traj.numbers, big_dt * roll["save_every"], meta, traj.cell, energies)
    checkpoint.remove()
