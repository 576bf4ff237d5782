"""Crystals driven by a reference ML potential: GeTe (SI I.2.4, I.4.4, Fig. 3) and aluminium (I.2.6, I.4.6, Table 1).

The reference potential is exchangeable (:mod:`actionmd.potentials.reference`):
PET-MAD or any exported metatomic model, a classical EAM run by LAMMPS, or the
toy metatomic model of the tests. The steps:

1. :func:`ramp`: from the crystal, an NPT heating ramp and a cooling ramp (SVR
   thermostat, isotropic BZP barostat, :mod:`actionmd.dynamics.barostat`) collect one
   structure (positions, momenta, cell) each time the target temperature
   crosses a grid temperature, on both legs.
2. :func:`simulate_structure`: each structure is thermalised with Langevin NVT
   and run with NVE velocity Verlet (:mod:`actionmd.dynamics.state_point`, ASE's
   integrators driving the reference potential); its frames are the data.
3. :func:`build_dataset`: pairs at a lag of ``pairing.lag`` steps, split by
   structure (:mod:`actionmd.atomistic.dataset`); FlashMD models are trained as for
   argon and water.
4. GeTe, :func:`quench`: a liquid at ``liquid.temperature`` (SVR), samples every
   ``sample_every`` steps, each quenched to the rollout temperature: the
   initial states of the glassy-relaxation runs.
5. :func:`run_rollout`: NVT (GeTe: OBABO with a weak SVR thermostat) or NPT
   (aluminium: :class:`actionmd.dynamics.barostat.NPTIntegrator`; both from
   :func:`actionmd.dynamics.ensemble.stepper`, run by :mod:`actionmd.atomistic.rollout`) rollouts with the
   reference potential at its own step ('reference') or the ML maps at the long
   step. The NPT maps call the reference potential once per long step, for the
   stress the barostat needs; the wall time includes that call.

Metrics and figures: :mod:`actionmd.analysis.gete` (Fig. 3), :mod:`actionmd.analysis.aluminium`
(Table 1). ``cfg`` is the resolved config of the system (:func:`actionmd.config.resolve`);
``model`` the exported reference potential file (metatomic and toy kinds).
Units: A, fs, eV, u, (eV*u)^(1/2), K, bar.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
import torch
from ase import Atoms
from ase.build import bulk

from actionmd.atomistic import rollout
from actionmd.atomistic.dataset import build_datasets, last_frame, split_state_points, write_initial
from actionmd.core.device import pick_device
from actionmd.dynamics import ensemble
from actionmd.dynamics.barostat import IsotropicBarostat, NPTIntegrator
from actionmd.dynamics.energy import KB
from actionmd.dynamics.state_point import StatePointProtocol, run_state_point
from actionmd.dynamics.thermostat import OBABOIntegrator, SVRThermostat, VelocityVerletMap
from actionmd.io import InputError
from actionmd.io.checkpoint import LoopCheckpoint, restore
from actionmd.io.trajectory import write_frames
from actionmd.naming import LEGS, long_step, parse_method, structure_name, structures, temperature_grid
from actionmd.potentials.reference import Evaluator, describe
from actionmd.potentials.reference import calculator as reference_calculator

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# structures and the reference potential
# --------------------------------------------------------------------------------------


def crystal(cfg: dict[str, Any]):
    """The conventional cubic cell of ``physics.crystal`` repeated ``box.repeat`` times along each axis."""
    c = cfg["physics"]["crystal"]
    return bulk(c["symbols"], c["structure"], a=c["a"], cubic=True).repeat(cfg["box"]["repeat"])


def potential_label(cfg: dict[str, Any]) -> str:
    """The reference potential in one line (tables, figure titles, logs)."""
    return describe(cfg["potential"]["name"], cfg["potential"])


def calculator(cfg: dict[str, Any], model: str | Path | None, threads: int = 1):
    """ASE calculator (energy, forces, stress) of the configured reference potential (``cfg["potential"]``)."""
    return reference_calculator(cfg["potential"], model, threads)


def evaluator(cfg: dict[str, Any], numbers: np.ndarray, model: str | Path | None, threads: int = 1):
    """(q, cell) -> (energy, forces, stress) of the reference potential, caching its last state."""
    return Evaluator(calculator(cfg, model, threads), numbers)


def thermal_momenta(masses: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Maxwell-Boltzmann momenta ((eV*u)^(1/2)) at ``temperature`` with zero total momentum."""
    p = rng.standard_normal((len(masses), 3)) * np.sqrt(masses * KB * temperature)[:, None]
    return p - masses[:, None] * p.sum(0) / masses.sum()


def _atoms(numbers: np.ndarray, q: np.ndarray, p: np.ndarray, cell: np.ndarray, info: dict[str, Any]):
    atoms = Atoms(numbers=numbers, positions=q, cell=cell, pbc=True)
    atoms.set_momenta(p)
    atoms.info.update(info)
    return atoms


# --------------------------------------------------------------------------------------
# reference data
# --------------------------------------------------------------------------------------


def ramp(cfg: dict[str, Any], out: str | Path, model: str | Path | None = None, threads: int = 1) -> None:
    """NPT heating then cooling between ``ramp.start`` and ``ramp.stop`` K, collecting the structures.

    The thermostat (SVR, ``ramp_thermostat_tau``) and the barostat's k_B T follow the linear
    temperature ramp; each leg has ``ramp.steps`` steps of ``ramp.dt``. Positions are saved
    wrapped into the cell (each structure starts a new run).
    """
    torch.set_num_threads(threads)
    phys, rp = cfg["physics"], cfg["ramp"]
    atoms = crystal(cfg)
    numbers, masses = atoms.numbers, atoms.get_masses()
    evaluate = evaluator(cfg, numbers, model, threads)
    rng = np.random.default_rng(rp["seed"])
    q = torch.from_numpy(atoms.positions.copy())
    p = torch.from_numpy(thermal_momenta(masses, rp["start"], rng))
    barostat = IsotropicBarostat(
        phys["pressure"], 0.5 * (rp["start"] + rp["stop"]), phys["barostat_tau"], phys["cell_tau"], len(atoms),
        seed=rp["seed"] + 1,
    )  # fmt: skip
    thermostat = SVRThermostat(rp["start"], phys["ramp_thermostat_tau"], seed=rp["seed"] + 2)
    npt = NPTIntegrator(masses, atoms.cell.array, evaluate, barostat, thermostat, rp["dt"])
    log.info("%s: %d atoms, %s", cfg["name"], len(atoms), potential_label(cfg))
    steps, frames = rp["steps"], []
    legs = list(zip(LEGS, ((rp["start"], rp["stop"]), (rp["stop"], rp["start"])), strict=True))
    checkpoint = LoopCheckpoint.for_job(out, cfg, [model])
    first = (0, 1)  # (leg, step) to run next
    saved = checkpoint.load()
    if saved is not None:
        q, p, frames, first = saved["q"].clone(), saved["p"].clone(), saved["frames"], saved["next"]
        restore(npt, saved["npt"])
    with checkpoint.guard():
        for index in range(first[0], len(legs)):
            leg, (t0, t1) = legs[index]
            collect = {round((t - t0) / (t1 - t0) * steps): t for t in temperature_grid(cfg)}
            for k in range(first[1] if index == first[0] else 1, steps + 1):
                target = t0 + (t1 - t0) * k / steps
                thermostat.temperature = barostat.temperature = target
                q, p = npt.step(q, p)
                if not (torch.isfinite(q).all() and torch.isfinite(p).all()):
                    raise RuntimeError(f"{leg} ramp blew up at step {k} ({target:.0f} K); shorten ramp.dt")
                if k in collect:
                    frame = _atoms(numbers, q.numpy(), p.numpy(), npt.cell, {"leg": leg, "temperature": collect[k]})
                    frame.wrap()
                    frame.info.update(volume=npt.volume, energy=npt.potential_energy, step=k)
                    frames.append(frame)
                if k % max(steps // 10, 1) == 0:
                    log.info(
                        "%s ramp step %d/%d: target %.0f K, V = %.3f A^3/atom, E = %.4f eV/atom",
                        leg, k, steps, target, npt.volume / len(atoms), npt.potential_energy / len(atoms),
                    )  # fmt: skip
                following = (index, k + 1) if k < steps else (index + 1, 1)
                checkpoint.maybe_save(
                    lambda q=q, p=p, following=following: {
                        "q": q, "p": p, "frames": frames, "next": following, "npt": npt.checkpoint_state()
                    },
                    f"{leg} ramp step {k}",
                )  # fmt: skip
    write_frames(out, frames)
    checkpoint.remove()


def ramp_structure(path: str | Path, leg: str, temperature: int):
    """The structure collected on ``leg`` at ``temperature`` K from a ramp file."""
    path = Path(path)
    try:
        frames = ase.io.read(path, ":", format="extxyz")
    except Exception as exc:
        raise InputError(f"{path}: unreadable ramp file ({exc}); delete it and rerun the workflow") from exc
    for frame in frames:
        if frame.info.get("leg") == leg and int(frame.info.get("temperature", -1)) == temperature:
            if "momenta" not in frame.arrays:
                raise InputError(f"{path}: structures have no momenta; delete it and rerun the workflow")
            return frame
    raise InputError(f"{path}: no structure at {leg} {temperature} K; the ramp was run with another grid, rerun it")


def simulate_structure(
    cfg: dict[str, Any],
    leg: str,
    temperature: int,
    ramp_file: str | Path,
    out: str | Path,
    model: str | Path | None = None,
    threads: int = 1,
) -> None:
    """One structure: Langevin NVT at ``temperature`` in the ramp's cell, then NVE frames."""
    torch.set_num_threads(threads)
    points = structures(cfg)
    if (leg, temperature) not in points:
        raise InputError(f"structure {leg} {temperature} K is not in the configured grid {points}")
    ref = cfg["reference"]
    seed = ref["seed"] + points.index((leg, temperature))
    atoms = ramp_structure(ramp_file, leg, temperature)
    protocol = StatePointProtocol.from_reference(ref, temperature, cfg["physics"]["langevin_tau"])
    log.info("%s %s %d K, seed %d: %d atoms, %s", cfg["name"], leg, temperature, seed, len(atoms), potential_label(cfg))
    checkpoint = LoopCheckpoint.for_job(out, [cfg, leg, temperature], [ramp_file, model])
    frames = run_state_point(atoms, protocol, seed, None, calculator(cfg, model, threads), log.info, checkpoint)
    for frame in frames:
        frame.info.update(leg=leg, state_point=structure_name(leg, temperature))
    write_frames(out, frames)
    checkpoint.remove()


def build_dataset(cfg: dict[str, Any], trajectories: list[str | Path], out_dir: str | Path) -> dict[str, int]:
    """Datasets of both models, split by structure; the rollouts' initial state for NPT.

    The initial state is the last NVE frame of the heating-leg structure closest to the
    rollout temperature (aluminium: the crystal at 300 K).
    """
    pair, ref = cfg["pairing"], cfg["reference"]
    points = structures(cfg)
    if len(points) != len(trajectories):
        raise InputError(f"{len(trajectories)} trajectories for {len(points)} configured structures")
    splits = split_state_points(len(trajectories), pair["validation_every"])
    counts = build_datasets(trajectories, pair["lag"], pair["stride"], ref["save_every"], splits, out_dir)
    target = cfg["physics"]["temperature"]
    heat = [i for i, (leg, _) in enumerate(points) if leg == "heat"]
    start = min(heat, key=lambda i: abs(points[i][1] - target))
    write_initial(Path(out_dir) / "initial.extxyz", [last_frame(trajectories[start])], [str(trajectories[start])])
    log.info("samples: %s; rollouts start from %s", counts, trajectories[start])
    return counts


def quench(
    cfg: dict[str, Any], ramp_file: str | Path, out: str | Path, model: str | Path | None = None, threads: int = 1
) -> None:
    """GeTe: ``rollout.runs`` liquid samples quenched to the rollout temperature (NVT, SVR, velocity Verlet).

    The liquid starts from the cooling-leg structure closest to ``liquid.temperature`` (its cell
    fixes the density), runs ``liquid_steps``, then a sample is taken every ``sample_every``
    steps and quenched for ``quench_steps`` at ``physics.temperature``.
    """
    torch.set_num_threads(threads)
    phys, qc, runs = cfg["physics"], cfg["quench"], cfg["rollout"]["runs"]
    if "liquid" not in phys:
        raise InputError(f"config key 'systems.{cfg['name']}.liquid': needed for the quenches")
    liquid = phys["liquid"]
    cool = [t for leg, t in structures(cfg) if leg == "cool"]
    start = ramp_structure(ramp_file, "cool", min(cool, key=lambda t: abs(t - liquid["temperature"])))
    numbers, masses, cell = start.numbers, start.get_masses(), start.cell.array.copy()
    evaluate = evaluator(cfg, numbers, model, threads)

    def forces(q: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(evaluate(q.numpy(), cell)[1])

    def nvt(temperature: float, tau: float, seed: int) -> OBABOIntegrator:
        vv = VelocityVerletMap(forces, masses, qc["dt"])
        return OBABOIntegrator(vv, SVRThermostat(temperature, tau, seed=seed), qc["dt"], masses)

    rng = np.random.default_rng(qc["seed"])
    q = torch.from_numpy(start.positions.copy())
    p = torch.from_numpy(thermal_momenta(masses, liquid["temperature"], rng))
    hot = nvt(liquid["temperature"], liquid["thermostat_tau"], qc["seed"])
    log.info("liquid at %.0f K: %d atoms in %.3f A^3", liquid["temperature"], len(numbers), np.linalg.det(cell))
    frames = []
    # a checkpoint after each quenched sample (the liquid's state and the samples so far)
    checkpoint = LoopCheckpoint.for_job(out, cfg, [ramp_file, model])
    saved = checkpoint.load()
    if saved is not None:
        q, p, frames = saved["q"].clone(), saved["p"].clone(), saved["frames"]
        hot.restore_state(saved["hot"])
    with checkpoint.guard():
        for run in range(len(frames), runs):
            for _ in range(qc["liquid_steps"] if run == 0 else qc["sample_every"]):
                q, p = hot.step(q, p)
            cold = nvt(phys["temperature"], liquid["quench_thermostat_tau"], qc["seed"] + 1 + run)
            qq, pp = q, p
            for _ in range(qc["quench_steps"]):
                qq, pp = cold.step(qq, pp)
            if not (torch.isfinite(qq).all() and torch.isfinite(pp).all()):
                raise RuntimeError(f"quench {run} blew up; shorten quench.dt")
            energy = evaluate(qq.numpy(), cell)[0]
            log.info("quench %d: E = %.4f eV/atom", run, energy / len(numbers))
            frames.append(_atoms(numbers, qq.numpy(), pp.numpy(), cell, {"run": run, "energy": energy}))
            if run < runs - 1:
                checkpoint.maybe_save(
                    lambda q=q, p=p: {"q": q, "p": p, "frames": frames, "hot": hot.checkpoint_state()},
                    f"quench {run} done",
                )
    write_frames(out, frames)
    checkpoint.remove()


# --------------------------------------------------------------------------------------
# rollouts
# --------------------------------------------------------------------------------------


def run_rollout(
    method: str,
    cfg: dict[str, Any],
    initial: str | Path,
    run: int,
    out: str | Path,
    direct: str | Path | None = None,
    symplectic: str | Path | None = None,
    model: str | Path | None = None,
    threads: int = 1,
) -> None:
    """One rollout from frame ``run`` of ``initial``, in the system's ensemble (NVT or NPT).

    'reference': the reference potential with velocity Verlet at ``rollout.reference_dt``;
    'direct' / 'symplectic_k<K>' / 'symplectic_converged': the ML maps at Dt = lag * dt.
    Saved per frame: positions, momenta, potential energy, temperatures (total and per
    species), thermostat work; for NPT also cell, volume and the conserved quantity.
    """
    torch.set_num_threads(threads)
    kind, _ = parse_method(method)
    phys, roll = cfg["physics"], cfg["rollout"]
    traj, q0, p0 = rollout.initial_state(initial, run)
    cell, numbers, masses = traj.cell, traj.numbers, traj.masses
    evaluate = evaluator(cfg, numbers, model, threads)
    seed = roll["seed"] + 1000 * run
    thermostat = SVRThermostat(phys["temperature"], phys["thermostat_tau"], seed=seed)
    npt = phys["ensemble"] == "npt"
    big_dt = long_step(cfg)
    integrator, inner, set_cell = None, None, None
    if kind == "reference":
        dt, steps, save_every = roll["reference_dt"], roll["reference_steps"], roll["reference_save_every"]
        if not npt:  # NPT: the barostat's own velocity Verlet (drift and dilation in one flow)
            inner = VelocityVerletMap(lambda q: torch.from_numpy(evaluate(q.numpy(), cell)[1]), masses, dt)
    elif kind in ("direct", "symplectic"):
        dt, steps, save_every = big_dt, roll["steps"], roll["save_every"]
        device = pick_device(cfg["device"])
        integrator, models = rollout.ml_integrator(method, direct, symplectic, traj, device, big_dt, cfg.get("solver"))
        inner = integrator

        def set_cell(new: np.ndarray) -> None:
            for exported in models:
                exported.set_cell(new)

    else:
        raise ValueError(f"{cfg['name']} has no rollout method {method!r}")
    barostat = None
    if npt:
        barostat = IsotropicBarostat(
            phys["pressure"], phys["temperature"], phys["barostat_tau"], phys["cell_tau"], len(numbers), seed=seed + 1
        )
    stepper = ensemble.stepper(inner, masses, dt, thermostat, barostat, cell, evaluate, set_cell)
    log.info(
        "%s %s run %d: %d atoms, %s, %s, %d steps of %g fs",
        cfg["name"], method, run, len(numbers), phys["ensemble"].upper(), potential_label(cfg), steps, dt,
    )  # fmt: skip
    checkpoint = LoopCheckpoint.for_job(out, [cfg, method, run], [initial, direct, symplectic, model])
    arrays = rollout.run(
        method, stepper, q0, p0, masses, steps, save_every, roll["max_temperature"], checkpoint, integrator
    )
    # NVT: the potential energy of each saved frame, after the run (not in the wall time); NPT records its own
    energies = None if npt else rollout.frame_energies(lambda q: evaluate(q, cell)[0], arrays["positions"])
    meta = {
        "run": run,
        "system": cfg["name"],
        "dt": dt,
        "long_step": big_dt,
        "potential": potential_label(cfg),
        "target_temperature": phys["temperature"],
        "target_pressure": phys["pressure"],
        "ensemble": phys["ensemble"],
        "n_atoms": int(len(numbers)),
        "initial": str(initial),
        "reference_calls": int(getattr(evaluate, "calls", -1)),
    }
    rollout.finish(arrays, out, masses, numbers, dt * save_every, meta, None if npt else cell, energies)
    checkpoint.remove()
