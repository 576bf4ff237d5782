"""The few-body experiments step by step: each function is one workflow rule.

reference MD -> paired dataset -> trained model -> rollout -> metrics -> figure.
Inputs and outputs are files; configuration arrives as the resolved dict of
:func:`actionmd.config.resolve` (or the part of it a step needs).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actionmd.analysis.orbits import PLOTTERS
from actionmd.core.fixed_point import SolverSettings
from actionmd.core.pairing import Pairs, make_pairs, split_tail, with_time_reversal
from actionmd.fewbody.metrics import metrics_table
from actionmd.fewbody.model_file import load_model
from actionmd.fewbody.nbody import GravitationalSystem, neighbour_trajectories, velocity_verlet
from actionmd.fewbody.rollout import run_model_rollout, run_verlet_rollout
from actionmd.fewbody.training import FewBodyData, Trainer, TrainingSettings
from actionmd.io import InputError, atomic_path, load_npz, read_rollouts, save_npz
from actionmd.naming import SYSTEMS, analysis, parse_method

log = logging.getLogger(__name__)


def make_system(physics: dict[str, Any]) -> tuple[GravitationalSystem, np.ndarray, np.ndarray]:
    """The Hamiltonian and the initial state (q0, p0), each (N, d), of a config 'systems' entry."""
    q0 = np.asarray(physics["q0"], dtype=np.float64)
    p0 = np.asarray(physics["p0"], dtype=np.float64)
    system = GravitationalSystem(
        masses=np.asarray(physics["masses"], dtype=np.float64),
        G=physics["G"],
        central_mass=physics["central_mass"],
        dim=q0.shape[1],
    )
    return system, q0, p0


def simulate_reference(cfg: dict[str, Any], out: str | Path) -> None:
    """Velocity Verlet at the reference step from the configured initial state; every step saved.

    With ``reference.neighbours``, also the trajectories of perturbed copies of the initial state
    (:func:`actionmd.fewbody.nbody.neighbour_trajectories`), saved every ``save_every`` steps as
    ``neighbours_q`` and ``neighbours_p`` (frames, trajectories, N, d).
    """
    system, q0, p0 = make_system(cfg["physics"])
    ref = cfg["reference"]
    log.info("velocity Verlet: dt = %g, %d steps, %d bodies", ref["dt"], ref["steps"], system.n_bodies)
    q, p = velocity_verlet(system, q0, p0, ref["dt"], ref["steps"], log_every=max(ref["steps"] // 10, 1))
    energy = system.energy(q, p)
    drift = float(np.max(np.abs(energy - energy[0])) / abs(energy[0]))
    log.info("energy E0 = %.10g, max relative deviation %.3e", energy[0], drift)
    if not np.isfinite(drift):
        raise RuntimeError("reference dynamics blew up: reduce reference.dt")
    meta = {"dt": ref["dt"], "steps": ref["steps"], "max_rel_energy_error": drift}
    arrays = {"q": q, "p": p, "energy": energy}
    if "neighbours" in ref:
        nb = ref["neighbours"]
        nq, np_, kept = neighbour_trajectories(
            system, q0, p0, nb["count"], nb["scale"], nb["seed"], ref["dt"], nb["steps"], nb["save_every"]
        )
        if not kept.any():
            raise RuntimeError(
                f"none of the {nb['count']} neighbouring trajectories stayed bound: "
                "reduce reference.neighbours.scale or reference.dt"
            )
        arrays.update(neighbours_q=nq, neighbours_p=np_)
        meta["neighbours"] = {**nb, "kept": int(kept.sum())}
    save_npz(out, **arrays, meta=meta)


def build_dataset(kind: str, trajectory: str | Path, cfg: dict[str, Any], out: str | Path) -> None:
    """Pairs of the reference trajectory at the configured lag, time-reversed copies included.

    ``direct``: (q0, p0) -> (q1, p1). ``symplectic``: midpoint -> increments.
    The trajectory's tail (``validation_fraction``) is paired separately. Neighbouring
    trajectories, if the reference has them, add all their pairs (stride: their saved frames),
    the last ``validation_fraction`` of them to the validation set.
    """
    if kind not in ("direct", "symplectic"):
        raise ValueError(f"dataset kind must be direct or symplectic, got {kind!r}")
    traj = load_npz(trajectory, required=("q", "p"))
    pairing = cfg["pairing"]
    arrays: dict[str, np.ndarray] = {}
    parts = split_tail(traj["q"], traj["p"], pairing["validation_fraction"])
    neighbours = _neighbour_parts(traj, pairing)
    for split, (q, p), extra in zip(("train", "valid"), parts, neighbours, strict=True):
        pairs = make_pairs(q, p, pairing["lag"], pairing["stride"])
        for more in extra:
            pairs = pairs.concatenate(more)
        pairs = with_time_reversal(pairs)
        if kind == "direct":
            inputs, targets = (pairs.q0, pairs.p0), (pairs.q1, pairs.p1)
        else:
            inputs, targets = pairs.midpoint(), pairs.increments()
        arrays.update(
            {f"{split}_q": inputs[0], f"{split}_p": inputs[1], f"{split}_a": targets[0], f"{split}_b": targets[1]}
        )
        log.info("%s set: %d pairs (time reversal included)", split, len(pairs))
    if len(arrays["train_q"]) == 0:
        raise RuntimeError("no training pairs: the reference run is shorter than the lag")
    save_npz(out, **arrays, meta={"kind": kind, "lag": pairing["lag"], "dt": traj["meta"]["dt"]})


def _neighbour_parts(traj: dict[str, Any], pairing: dict[str, Any]) -> tuple[list[Pairs], list[Pairs]]:
    """The pairs of each neighbouring trajectory, split by trajectory into (train, valid)."""
    if "neighbours_q" not in traj:
        return [], []
    every = traj["meta"]["neighbours"]["save_every"]
    if pairing["lag"] % every:
        raise InputError(
            f"reference.neighbours.save_every = {every} does not divide pairing.lag = {pairing['lag']}: "
            "choose a divisor of the lag"
        )
    q, p = traj["neighbours_q"], traj["neighbours_p"]
    pairs = [make_pairs(q[:, j], p[:, j], pairing["lag"] // every, 1) for j in range(q.shape[1])]
    n_valid = int(round(pairing["validation_fraction"] * len(pairs)))
    return pairs[: len(pairs) - n_valid], pairs[len(pairs) - n_valid :]


def _tensors(data: dict[str, np.ndarray], split: str) -> FewBodyData:
    return FewBodyData(*(torch.tensor(data[f"{split}_{k}"], dtype=torch.float32) for k in "qpab"))


def train_model(
    kind: str,
    dataset: str | Path,
    cfg: dict[str, Any],
    out: str | Path,
    checkpoint: str | Path | None,
    threads: int = 1,
) -> None:
    """Train one model on a dataset written by :func:`build_dataset` and save it."""
    data = load_npz(dataset, required=tuple(f"{s}_{k}" for s in ("train", "valid") for k in "qpab"))
    if data["meta"]["kind"] != kind:
        raise InputError(f"{dataset}: holds a {data['meta']['kind']} dataset, not {kind}")
    settings = TrainingSettings.from_dict({**cfg["training"], "device": cfg.get("device", "auto"), "threads": threads})
    lag_time = data["meta"]["lag"] * data["meta"]["dt"]
    prior = None
    if settings.prior != "none":
        physics = cfg["physics"]
        prior = {
            "dt": lag_time,
            "masses": [float(m) for m in physics["masses"]],
            "G": physics["G"],
            "central_mass": physics["central_mass"],
            "rule": settings.prior,
        }
    trainer = Trainer(
        kind,
        settings,
        _tensors(data, "train"),
        _tensors(data, "valid"),
        checkpoint=Path(checkpoint) if checkpoint else None,
        metadata={"lag_time": lag_time},
        prior=prior,
        translation_invariant=cfg["physics"]["central_mass"] == 0,
        masses=tuple(float(m) for m in cfg["physics"]["masses"]),
    )
    trainer.run()
    trainer.save(out)
    log.info("saved %s", out)


def run_rollout(
    method: str,
    cfg: dict[str, Any],
    out: str | Path,
    direct: str | Path | None = None,
    symplectic: str | Path | None = None,
) -> None:
    """Roll out one method (see :func:`actionmd.naming.parse_method`) for the configured steps."""
    system, q0, p0 = make_system(cfg["physics"])
    dt_ref = cfg["reference"]["dt"]
    lag = cfg["pairing"]["lag"]
    big_dt = lag * dt_ref
    steps = cfg["rollout"]["steps"]
    model, k = parse_method(method)
    log.info("rollout %s: %d steps of %g", method, steps, big_dt)
    if model == "reference":
        roll = run_verlet_rollout(system, q0, p0, big_dt, steps, substeps=lag, method=method)
    elif model == "vv_large":
        roll = run_verlet_rollout(system, q0, p0, big_dt, steps, substeps=1, method=method)
    else:
        if direct is None:
            raise InputError(f"rollout {method} needs the direct model")
        direct_model, payload = load_model(direct)
        _check_lag(direct, payload, big_dt)
        gf = None
        settings = None
        if model == "symplectic":
            if symplectic is None:
                raise InputError(f"rollout {method} needs the symplectic model")
            gf, payload = load_model(symplectic)
            _check_lag(symplectic, payload, big_dt)
            settings = SolverSettings.from_config(cfg["solver"], k)
        roll = run_model_rollout(
            system, q0, p0, big_dt, steps, direct_model, gf, settings, method, log_every=max(steps // 10, 1)
        )
    rel = (roll.energy - roll.energy[0]) / abs(roll.energy[0])
    log.info(
        "done in %.2f s: max |dE/E0| = %.3e, mean iterations %.1f",
        roll.wall_time,
        float(np.nanmax(np.abs(rel))),
        float(np.mean(roll.iterations)) if steps else 0.0,
    )
    save_npz(out, **roll.arrays())


def _check_lag(path: str | Path, payload: dict[str, Any], big_dt: float) -> None:
    lag_time = payload.get("metadata", {}).get("lag_time")
    if lag_time is not None and not np.isclose(lag_time, big_dt):
        raise InputError(f"{path}: trained for a step of {lag_time}, the rollout asks for {big_dt}; retrain")


def load_rollouts(paths: list[str | Path]) -> dict[str, dict[str, Any]]:
    return read_rollouts(paths, ("time", "q", "p", "energy", "iterations", "wall_time", "meta"))


def write_metrics(paths: list[str | Path], out: str | Path) -> None:
    """Metrics of every rollout against the 'reference' rollout, as CSV."""
    rollouts = load_rollouts(paths)
    if "reference" not in rollouts:
        raise InputError("metrics need the reference rollout among the inputs")
    table = metrics_table(
        [r for m, r in rollouts.items() if m != "reference"] + [rollouts["reference"]], rollouts["reference"]
    )
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    log.info("metrics:\n%s", table.to_string(index=False))


def plot(system: str, paths: list[str | Path], pdf: str | Path, png: str | Path | None = None) -> None:
    if system not in SYSTEMS or analysis(system) not in PLOTTERS:
        raise ValueError(f"no figure for system {system!r}; systems with one: {sorted(figure_systems())}")
    PLOTTERS[analysis(system)](load_rollouts(paths), str(pdf), str(png) if png else None)


def figure_systems() -> list[str]:
    """Registered systems whose analysis has a few-body figure."""
    return [s for s in SYSTEMS if analysis(s) in PLOTTERS]
