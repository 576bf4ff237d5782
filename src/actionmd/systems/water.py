"""Liquid water with q-TIP4P/f (SI I.2.3, I.4.3, Fig. 2): the steps of the water workflow.

Reference data: a box of q-TIP4P/f water (:mod:`actionmd.potentials.qtip4pf`) equilibrated
as a 300 K liquid at the experimental density, then one independent run per
state point of the grid (cell volume scale) x (temperature): Langevin NVT, then
NVE velocity Verlet frames (:mod:`actionmd.dynamics.state_point`). Pairs at a lag of 8 steps
(2 fs) feed the FlashMD models (:mod:`actionmd.atomistic.dataset`,
:mod:`actionmd.atomistic.training`); state points, not frames, are split
between training and validation. Rollouts are NVT at the rollout temperature
with the OBABO split and stochastic velocity rescaling around the long-step
map (:mod:`actionmd.dynamics.thermostat`): the reference is q-TIP4P/f velocity Verlet at
the MD step in the same split. Analyses: drift of the conserved quantity
H - (energy added by the thermostat), kinetic temperatures of O and H, the O-O
radial distribution function and the O mean-square displacement
(:mod:`actionmd.analysis.observables`).

``cfg`` is the resolved config of the system (:func:`actionmd.config.resolve`).
Units: A, fs (ps in the figure and metrics), eV, u, (eV*u)^(1/2), K.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from actionmd.analysis.observables import drift
from actionmd.io import InputError, atomic_path, save_npz
from actionmd.io.checkpoint import LoopCheckpoint

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# reference data
# --------------------------------------------------------------------------------------


def state_points(reference: dict[str, Any]) -> list[tuple[str, int]]:
    """(volume scale as written in file names, temperature in K) of every state point, volume-major."""
    temps = reference["temperatures"]
    grid = list(range(temps["start"], temps["stop"] + 1, temps["step"]))
    return [(f"{v:.2f}", t) for v in reference["volume_scales"] for t in grid]


def state_point_name(volume: str, temperature: int) -> str:
    return f"V{volume}_T{temperature}"


def calculator(physics: dict[str, Any], threads: int = 1):
    """q-TIP4P/f ASE calculator with the configured Ewald parameters."""
    from actionmd.potentials.qtip4pf import QTIP4PFCalculator

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
    from actionmd.potentials.qtip4pf_metatomic import export_qtip4pf

    physics = cfg["physics"]
    export_qtip4pf(out, physics["ewald_cutoff"], physics["smearing"], physics["lr_wavelength"])
    log.info("exported q-TIP4P/f to %s", out)


def equilibrate(cfg: dict[str, Any], out: str | Path, threads: int = 1) -> None:
    """A 300 K liquid at the experimental density from a lattice of randomly oriented molecules.

    Langevin NVT at ``physics.temperature`` for ``equilibration.steps`` of ``equilibration.dt``;
    the output holds the final state (and a second frame ``reference.save_every`` NVE steps on).
    """
    import torch

    from actionmd.dynamics.state_point import StatePointProtocol, run_state_point
    from actionmd.potentials.qtip4pf import water_box

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


def last_frame(path: str | Path):
    """The last frame of an extxyz trajectory (checked on reading) as ASE atoms with momenta."""
    from actionmd.atomistic.dataset import _atoms
    from actionmd.io.trajectory import read_trajectory

    traj = read_trajectory(path, require_continuous=False)
    return _atoms(traj, traj.positions[-1], traj.momenta[-1], {})


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
    import torch

    from actionmd.dynamics.state_point import StatePointProtocol, run_state_point

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
    from actionmd.io.trajectory import write_frames

    write_frames(out, frames)
    checkpoint.remove()


def state_point_seed(seed: int, volume: str, temperature: int) -> int:
    """The Langevin seed of one state point, from ``reference.seed`` and the point alone.

    Not from its place in the grid: adding or removing state points leaves the others' runs
    (and Snakemake's record of their parameters) as they were.
    """
    import numpy as np

    key = [int(seed), round(float(volume) * 1000), int(temperature)]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def split_state_points(n: int, validation_every: int) -> dict[str, list[int]]:
    """Every ``validation_every``-th state point (the last of each group) validates, the rest train."""
    val = [i for i in range(n) if i % validation_every == validation_every - 1]
    train = [i for i in range(n) if i not in val]
    if not train or not val:
        raise InputError(
            f"{n} state points with pairing.validation_every = {validation_every} leave no training or no "
            "validation state point; add state points or change validation_every"
        )
    return {"train": train, "val": val}


def build_dataset(cfg: dict[str, Any], trajectories: list[str | Path], equilibrated: str | Path, out_dir) -> None:
    """Datasets of both models from the state points; the rollouts start from the equilibrated liquid."""
    from actionmd.atomistic.dataset import build_datasets, write_initial

    pair, ref = cfg["pairing"], cfg["reference"]
    splits = split_state_points(len(trajectories), pair["validation_every"])
    counts = build_datasets(trajectories, pair["lag"], pair["stride"], ref["save_every"], splits, out_dir)
    write_initial(Path(out_dir) / "initial.extxyz", [last_frame(equilibrated)], [str(equilibrated)])
    log.info("samples: %s", counts)


# --------------------------------------------------------------------------------------
# rollouts
# --------------------------------------------------------------------------------------


def long_step(cfg: dict[str, Any]) -> float:
    """Dt in fs."""
    return cfg["pairing"]["lag"] * cfg["reference"]["dt"]


def potential_energies(model, positions: np.ndarray, cell: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """q-TIP4P/f energy (eV) of every finite frame of (F, N, 3) positions; NaN for the others."""
    out = np.full(len(positions), np.nan)
    for i, q in enumerate(positions):
        if np.isfinite(q).all():
            out[i] = model.energy_breakdown(q, cell, numbers)["total"]
    return out


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
    import torch

    from actionmd.dynamics.energy import kinetic_energy, species_temperatures, temperature
    from actionmd.dynamics.stepping import load_ml_maps, run_ml_rollout
    from actionmd.dynamics.thermostat import SVRThermostat, VelocityVerletMap
    from actionmd.fewbody.rollout import parse_method
    from actionmd.fewbody.training import pick_device
    from actionmd.io.trajectory import read_trajectory

    torch.set_num_threads(threads)
    model, iterations = parse_method(method)
    traj = read_trajectory(initial, require_continuous=False)
    q0, p0 = traj.positions[0], traj.momenta[0]
    physics, roll = cfg["physics"], cfg["rollout"]
    qtip4pf = potential(physics, threads)
    big_dt = long_step(cfg)
    lag = cfg["pairing"]["lag"]
    thermostat = SVRThermostat(physics["temperature"], physics["thermostat_tau"], seed=roll["seed"])
    checkpoint = LoopCheckpoint.for_job(out, [cfg, method], [initial, direct, symplectic])
    common = {
        "max_temperature": roll["max_temperature"],
        "method": method,
        "thermostat": thermostat,
        "checkpoint": checkpoint,
    }
    if model == "reference":
        dt = cfg["reference"]["dt"]
        cell, numbers = traj.cell, traj.numbers

        def forces(q: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():  # the integrator runs under no_grad; the forces are autograd's
                return torch.from_numpy(qtip4pf.energy_forces(q.numpy(), cell, numbers)[1])

        vv = VelocityVerletMap(forces, traj.masses, dt)
        steps = roll["steps"] * lag
        arrays = run_ml_rollout(
            q0, p0, traj.masses, steps, roll["save_every"] * lag, vv.step,
            long_step=dt, progress_every=max(steps // 20, 1), **common,
        )  # fmt: skip
        arrays["steps_done"] = arrays["steps_done"] // lag
        step_dt = dt
    elif model in ("direct", "symplectic"):
        direct_map, increment, settings = load_ml_maps(
            method, direct, symplectic, traj, pick_device(cfg["device"]), big_dt, cfg.get("solver")
        )
        arrays = run_ml_rollout(
            q0, p0, traj.masses, roll["steps"], roll["save_every"], direct_map, increment, settings,
            long_step=big_dt, progress_every=max(roll["steps"] // 20, 1), **common,
        )  # fmt: skip
        step_dt = big_dt
    else:
        raise ValueError(f"water has no rollout method {method!r}")
    positions, momenta = arrays["positions"], arrays["momenta"]
    t_energy = time.perf_counter()
    arrays["potential_energy"] = potential_energies(qtip4pf, positions, traj.cell, traj.numbers)
    log.info("q-TIP4P/f energies of %d frames: %.1f s", len(positions), time.perf_counter() - t_energy)
    arrays["kinetic_energy"] = kinetic_energy(momenta, traj.masses)
    arrays["temperature"] = temperature(momenta, traj.masses)
    per_species = species_temperatures(np.nan_to_num(momenta), traj.masses, traj.numbers)
    finite = np.isfinite(momenta).all(axis=(1, 2))
    for z, name in ((8, "O"), (1, "H")):
        arrays[f"temperature_{name}"] = np.where(finite, per_species[z], np.nan)
    arrays["time"] = big_dt * roll["save_every"] * np.arange(len(positions))
    arrays["cell"] = traj.cell
    arrays["numbers"] = traj.numbers
    arrays["meta"].update(
        {
            "n_atoms": traj.n_atoms,
            "long_step": big_dt,
            "dt": step_dt,
            "initial": str(initial),
            "system": "water",
            "target_temperature": physics["temperature"],
        }
    )
    conserved = (arrays["potential_energy"] + arrays["kinetic_energy"] - arrays["thermostat_work"]) / traj.n_atoms
    log.info(
        "%s: %.1f s wall; conserved quantity drift %.3e eV/atom over the run; T_O = %.1f K, T_H = %.1f K",
        method,
        float(arrays["wall_time"]),
        float(np.nanmax(conserved) - np.nanmin(conserved)),
        float(np.nanmean(arrays["temperature_O"])),
        float(np.nanmean(arrays["temperature_H"])),
    )
    save_npz(out, **arrays)
    checkpoint.remove()


# --------------------------------------------------------------------------------------
# analyses
# --------------------------------------------------------------------------------------

REQUIRED = (
    "time",
    "positions",
    "potential_energy",
    "kinetic_energy",
    "thermostat_work",
    "temperature_O",
    "temperature_H",
    "cell",
    "numbers",
    "wall_time",
    "steps_done",
    "meta",
)


BOND_LIMIT = 1.5  # A: an O-H distance beyond this is a broken molecule (q-TIP4P/f r_eq = 0.94 A)


def load_rollouts(paths: list[str | Path]) -> dict[str, dict[str, Any]]:
    """Rollouts keyed by method, each cut at its first broken molecule (:func:`cut_at_broken_molecule`)."""
    from actionmd.fewbody.rollout import load_rollouts

    return {m: cut_at_broken_molecule(r) for m, r in load_rollouts(paths, REQUIRED).items()}


def broken_frame(roll: dict[str, Any], limit: float = BOND_LIMIT) -> int | None:
    """Index of the first saved frame with an O-H bond longer than ``limit`` (A, minimum image), or None.

    Under a thermostat a failing map need not heat the system past ``max_temperature``: the
    thermostat removes the heat while molecules fly apart. A broken molecule marks such a run.
    """
    lengths = np.diagonal(np.asarray(roll["cell"]))
    q = roll["positions"].reshape(len(roll["positions"]), -1, 3, 3)
    d = q[:, :, 1:] - q[:, :, :1]
    d -= lengths * np.round(d / lengths)
    with np.errstate(invalid="ignore"):
        bad = np.linalg.norm(d, axis=-1).max(axis=(1, 2)) > limit
    hits = np.flatnonzero(bad)
    return int(hits[0]) if len(hits) else None


def cut_at_broken_molecule(roll: dict[str, Any]) -> dict[str, Any]:
    """A copy with every frame from the first broken molecule on set to NaN, marked as blown up there."""
    first = broken_frame(roll)
    if first is None:
        return roll
    roll = dict(roll)
    roll["meta"] = dict(roll["meta"])
    for key in ("positions", "potential_energy", "kinetic_energy", "thermostat_work", "temperature_O", "temperature_H"):
        roll[key] = np.array(roll[key], dtype=float)
        roll[key][first:] = np.nan
    frame_steps = float(roll["time"][1] - roll["time"][0]) / roll["meta"]["long_step"]
    step = int(round(first * frame_steps))
    previous = roll["meta"].get("diverged_at")
    roll["meta"]["diverged_at"] = step if previous is None else min(previous, step)
    roll["meta"]["broken_molecule_at"] = step
    return roll


def conserved_quantity(roll: dict[str, Any]) -> np.ndarray:
    """(H - thermostat work) per atom (eV) of every saved frame: constant for an exact inner map."""
    return (roll["potential_energy"] + roll["kinetic_energy"] - roll["thermostat_work"]) / roll["meta"]["n_atoms"]


def _finite(roll: dict[str, Any]) -> np.ndarray:
    return np.isfinite(roll["positions"]).all(axis=(1, 2))


def rdf_oo(roll: dict[str, Any], r_max: float, bins: int):
    """g_OO(r) over the finite frames (r_max capped below half the box edge)."""
    from actionmd.analysis.observables import radial_distribution

    cell = np.asarray(roll["cell"])
    r_max = min(r_max, 0.5 * float(np.diagonal(cell).min()) - 1e-6)
    oxygens = np.flatnonzero(roll["numbers"] == 8)
    return radial_distribution(roll["positions"][_finite(roll)], cell, oxygens, r_max=r_max, bins=bins)


def msd_o(roll: dict[str, Any]):
    """Mean-square displacement of the O atoms (A^2) against lag (ps), over the finite frames."""
    from actionmd.analysis.observables import mean_square_displacement

    frames = roll["positions"][_finite(roll)]
    saved_dt = float(roll["time"][1] - roll["time"][0])
    return mean_square_displacement(frames, saved_dt, np.flatnonzero(roll["numbers"] == 8))


def msd_fit_window(roll: dict[str, Any], fractions: list[float]) -> tuple[float, float]:
    """The lag window (ps) of the diffusion fit: ``fractions`` of the rollout's length."""
    length = float(roll["time"][-1]) / 1000.0
    return fractions[0] * length, fractions[1] * length


def rollout_metrics(roll: dict[str, Any], analysis: dict[str, Any]) -> dict[str, Any]:
    """The numbers of Fig. 2 for one rollout (drift, equipartition, structure, diffusion, cost)."""
    t_ps = roll["time"] / 1000.0
    meta = roll["meta"]
    done = int(roll["steps_done"])
    simulated_ps = done * meta["long_step"] / 1000.0
    diverged = meta.get("diverged_at")
    complete = diverged is None
    peak_r, peak_g, diffusion = float("nan"), float("nan"), float("nan")
    if complete:
        rdf = rdf_oo(roll, analysis["rdf_r_max"], analysis["rdf_bins"])
        peak_r, peak_g = rdf.first_peak(r_min=2.0)
        diffusion = msd_o(roll).diffusion_coefficient(*msd_fit_window(roll, analysis["msd_fit"]))
    iterations = roll.get("iterations")
    return {
        "method": meta["method"],
        "conserved_drift_meV_per_atom_ps": 1e3 * drift(t_ps, conserved_quantity(roll)),
        "temperature_O_K": float(np.nanmean(roll["temperature_O"])),
        "temperature_H_K": float(np.nanmean(roll["temperature_H"])),
        "temperature_gap_K": float(np.nanmean(roll["temperature_H"]) - np.nanmean(roll["temperature_O"])),
        "gOO_peak_position_A": peak_r,
        "gOO_peak_height": peak_g,
        "diffusion_A2_per_ps": diffusion,
        "mean_iterations": float(np.mean(iterations[:done])) if iterations is not None and done else 0.0,
        "wall_time_s": float(roll["wall_time"]),
        "wall_time_s_per_ps": float(roll["wall_time"]) / simulated_ps if simulated_ps > 0 else float("nan"),
        "blew_up_at_ps": float("nan") if complete else diverged * meta["long_step"] / 1000.0,
    }


def write_metrics(paths: list[str | Path], analysis: dict[str, Any], out: str | Path) -> None:
    import pandas as pd

    from actionmd.systems.argon import _order

    rollouts = load_rollouts(paths)
    table = pd.DataFrame([rollout_metrics(rollouts[m], analysis) for m in _order(list(rollouts))])
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    log.info("metrics:\n%s", table.to_string(index=False))


def plot(paths: list[str | Path], analysis: dict[str, Any], pdf: str | Path, png: str | Path | None = None) -> None:
    """Fig. 2: (a) conserved quantity, (b) T_O and T_H, (c) g_OO(r), (d) O mean-square displacement."""
    from actionmd.analysis.plotting import _save, label, plt
    from actionmd.systems.argon import _order

    rollouts = load_rollouts(paths)
    methods = _order(list(rollouts))
    ks = [m for m in methods if m.startswith("symplectic")]
    cmap = plt.get_cmap("viridis")
    colors = {"reference": "black", "direct": "tab:red"}
    for i, m in enumerate(ks):
        colors[m] = cmap(0.15 + 0.7 * i / max(len(ks) - 1, 1))
    ref = rollouts.get("reference")
    labels = {"reference": f"reference VV ({ref['meta']['dt']:g} fs)" if ref else "reference", "direct": "direct"}
    fig, axes = plt.subplots(2, 2, figsize=(9.6, 7.4), constrained_layout=True)
    (ax_e, ax_t), (ax_g, ax_m) = axes
    top, bottom = 0.0, 0.0
    for m in methods:
        r = rollouts[m]
        style = {"color": colors[m], "lw": 1.6 if m in ("reference", "direct") else 1.2,
                 "ls": "--" if m == "reference" else "-", "zorder": 3 if m == "reference" else 2}  # fmt: skip
        t = r["time"] / 1000.0
        c = 1e3 * conserved_quantity(r)
        dc = c - c[0]
        slope = drift(t, c)
        ax_e.plot(t, dc, label=f"{label(m, labels)}: {slope:+.3g} meV/atom/ps", **style)
        top, bottom = max(top, float(np.nanmax(dc))), min(bottom, float(np.nanmin(dc)))
        if r["meta"].get("diverged_at"):
            last = int(np.flatnonzero(np.isfinite(dc))[-1])
            ax_e.plot(t[last], dc[last], "x", color=colors[m], ms=8, mew=2)
            continue
        rdf = rdf_oo(r, analysis["rdf_r_max"], analysis["rdf_bins"])
        ax_g.plot(rdf.r, rdf.g, label=label(m, labels), **style)
        msd = msd_o(r)
        lo, hi = msd_fit_window(r, analysis["msd_fit"])
        d = msd.diffusion_coefficient(lo, hi)
        keep = msd.lag <= 0.5 * t[-1] + 1e-9
        ax_m.plot(msd.lag[keep], msd.msd[keep], label=f"{label(m, labels)}: D = {d:.3g} A$^2$/ps", **style)
    # (b) equipartition: mean kinetic temperature of O and of H per method
    x = np.arange(len(methods))
    t_o = [float(np.nanmean(rollouts[m]["temperature_O"])) for m in methods]
    t_h = [float(np.nanmean(rollouts[m]["temperature_H"])) for m in methods]
    ax_t.plot(x, t_o, "o", color="tab:red", ms=8, label="$T_\\mathrm{O}$")
    ax_t.plot(x, t_h, "s", color="tab:blue", ms=7, label="$T_\\mathrm{H}$")
    target = rollouts[methods[0]]["meta"].get("target_temperature")
    if target:
        ax_t.axhline(target, color="gray", lw=1, ls=":", label="thermostat target")
    ax_t.set_xticks(x, [label(m, labels) for m in methods], rotation=30, ha="right", fontsize=8)
    ax_t.set_ylabel("mean kinetic temperature (K)")
    ax_t.set_title("(b) equipartition")
    ax_t.legend(fontsize=8)
    ax_e.set_yscale("symlog", linthresh=1e-2)
    ax_e.set_ylim(1.5 * min(bottom, -0.1), 1.5 * max(top, 0.1))
    ax_e.set_xlabel("time (ps)")
    ax_e.set_ylabel("conserved quantity change / atom (meV)")
    big_dt = rollouts[methods[-1]]["meta"]["long_step"]
    n_mol = rollouts[methods[-1]]["meta"]["n_atoms"] // 3
    ax_e.set_title(f"(a) q-TIP4P/f water, {n_mol} molecules, NVT (SVR), long step {big_dt:g} fs", fontsize=9)
    ax_e.legend(fontsize=7)
    ax_g.set_xlabel("r (A)")
    ax_g.set_ylabel("$g_\\mathrm{OO}(r)$")
    ax_g.set_title("(c) O-O radial distribution")
    ax_g.legend(fontsize=7)
    ax_m.set_xlabel("lag (ps)")
    ax_m.set_ylabel("O mean-square displacement (A$^2$)")
    ax_m.set_title("(d) O diffusion")
    ax_m.legend(fontsize=7)
    for ax in axes.ravel():
        ax.grid(alpha=0.3)
    _save(fig, pdf, png)
