"""Figures of merit of few-body rollouts, compared with the small-step reference.

For every rollout: the largest relative energy error max_t |E(t) - E(0)| / |E(0)|,
the energy drift (slope of a straight-line fit of (E(t) - E(0)) / |E(0)| against
time, per unit time), the position error at the last frame against the
reference trajectory (largest distance of any body), the largest distance
from the reference orbit's shape (for each frame, the distance to the nearest
reference frame at any time, the largest over frames: a rollout that stays on
the orbit but runs ahead or behind in phase keeps it small, one that precesses
or leaves the orbit does not), the closest approach (the smallest distance between two
bodies, or of a single body from the centre, over the frames before any blow-up: a learned
orbit that librates towards a close encounter shows it before it fails), the mean number of
fixed-point iterations per step and the wall time. A rollout that blew up gets
infinite errors, so it can never look better than one that finished.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from actionmd.analysis.observables import drift as slope
from actionmd.naming import parse_method

COLUMNS = [
    "method",
    "model",
    "iterations",
    "steps",
    "dt",
    "max_rel_energy_error",
    "energy_drift_per_time",
    "final_position_error",
    "orbit_shape_error",
    "closest_approach",
    "mean_solver_iterations",
    "diverged_at_step",
    "wall_time_s",
    "wall_time_per_step_ms",
]


def rollout_metrics(roll: dict, reference: dict) -> dict:
    """Metrics of one rollout (arrays as written by :func:`actionmd.fewbody.rollout.Rollout.arrays`)."""
    meta = roll["meta"]
    method = meta["method"]
    model, k = parse_method(method)
    energy, t = roll["energy"], roll["time"]
    e0 = energy[0]
    rel = (energy - e0) / abs(e0)
    finite = np.isfinite(rel)
    diverged = meta.get("diverged_at") is not None or not finite.all()
    max_err = float(np.max(np.abs(rel[finite]))) if not diverged else np.inf
    drift = slope(t, rel) if not diverged else np.nan
    if reference["q"].shape != roll["q"].shape:
        raise ValueError(f"{method}: {roll['q'].shape} frames do not match the reference {reference['q'].shape}")
    final = np.linalg.norm(roll["q"][-1] - reference["q"][-1], axis=-1).max()
    steps = len(t) - 1
    iters = roll["iterations"]
    return {
        "method": method,
        "model": model,
        "iterations": "converged" if (model == "symplectic" and k is None) else (k if k is not None else ""),
        "steps": steps,
        "dt": float(t[1] - t[0]) if steps else np.nan,
        "max_rel_energy_error": max_err,
        "energy_drift_per_time": drift,
        "final_position_error": float(final) if np.isfinite(final) else np.inf,
        "orbit_shape_error": orbit_shape_error(roll["q"], reference["q"]) if not diverged else np.inf,
        "closest_approach": closest_approach(roll["q"]),
        "mean_solver_iterations": float(np.mean(iters)) if steps else 0.0,
        "diverged_at_step": meta.get("diverged_at") if meta.get("diverged_at") is not None else "",
        "wall_time_s": float(roll["wall_time"]),
        "wall_time_per_step_ms": 1e3 * float(roll["wall_time"]) / max(steps, 1),
    }


def orbit_shape_error(q: np.ndarray, reference_q: np.ndarray, chunk: int = 256) -> float:
    """max_t min_s max_i |q_i(t) - q_ref,i(s)|: how far the configurations of a rollout (frames, N, d)
    come from the set of configurations the reference visits, whatever the time (length units).

    The reference frames of a long rollout sample the orbit densely (the step is not commensurate
    with the period), so the nearest frame stands for the nearest point of the orbit.
    """
    worst = 0.0
    for start in range(0, len(q), chunk):
        block = q[start : start + chunk]
        dist = np.linalg.norm(block[:, None] - reference_q[None], axis=-1).max(axis=-1)  # (chunk, frames_ref)
        worst = max(worst, float(dist.min(axis=1).max()))
    return worst


def closest_approach(q: np.ndarray) -> float:
    """Smallest distance between two bodies over the frames of ``q`` (frames, N, d), in length units;
    for a single body, its smallest distance from the origin (the fixed central mass).

    Frames that are not finite (after a blow-up) are left out; NaN if none is.
    """
    if q.shape[1] == 1:
        dist = np.linalg.norm(q[:, 0], axis=-1)
    else:
        i, j = np.triu_indices(q.shape[1], k=1)
        dist = np.linalg.norm(q[:, i] - q[:, j], axis=-1).min(axis=-1)
    dist = dist[np.isfinite(dist)]
    return float(dist.min()) if dist.size else float("nan")


def metrics_table(rollouts: list[dict], reference: dict) -> pd.DataFrame:
    """One row per rollout, in the order given."""
    return pd.DataFrame([rollout_metrics(r, reference) for r in rollouts], columns=COLUMNS)
