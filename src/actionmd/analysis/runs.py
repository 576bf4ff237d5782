"""Rollouts of the crystals driven by a reference ML potential, shared by GeTe (Fig. 3,
:mod:`actionmd.analysis.gete`) and aluminium (Table 1, :mod:`actionmd.analysis.aluminium`).

Reading and checking one rollout file, simulated time (ps) and wall-clock seconds per
simulated ps, NaN-aware mean and standard deviation, writing a table to CSV, and the
house colours, line styles and labels of the methods (ordered by
:func:`actionmd.naming.order_methods`).

Rollout files are .npz written by :func:`actionmd.io.save_npz`; frames after a run
blew up are NaN, so every statistic here is NaN-aware. Units: fs in the files (time,
``meta.dt``), ps where stated; eV in the files; K; A^3; wall-clock seconds.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from actionmd.io import InputError, atomic_path, load_npz
from actionmd.naming import SYSTEMS, analysis

log = logging.getLogger(__name__)


def load_rollout(
    path: str | Path, required: tuple[str, ...], meta_keys: tuple[str, ...], series: tuple[str, ...], kind: str
) -> dict[str, Any]:
    """One rollout file, checked: required arrays and metadata present, series as long as ``time``, and a
    rollout of a system whose analysis (:func:`actionmd.naming.analysis`) is ``kind``.

    The series are returned as float arrays and the file's path under ``path``. Raises
    :class:`InputError` naming the file for a missing array or metadata key, another
    system, fewer than 2 frames, or a series whose length differs from ``time``'s.
    """
    roll = load_npz(path, required=required)
    meta = roll["meta"]
    if not isinstance(meta, dict):
        raise InputError(f"{path}: 'meta' is not a dictionary; delete it and rerun the workflow")
    missing = [k for k in meta_keys if k not in meta]
    if missing:
        raise InputError(f"{path}: metadata lacks {missing}; delete it and rerun the workflow")
    if meta["system"] not in SYSTEMS or analysis(meta["system"]) != kind:
        raise InputError(f"{path}: a rollout of system {meta['system']!r}, not of one analysed as {kind!r}")
    n = len(roll["time"])
    if n < 2:
        raise InputError(f"{path}: {n} frames; a rollout needs at least 2")
    wrong = {k: len(roll[k]) for k in series if np.ndim(roll[k]) != 1 or len(roll[k]) != n}
    if wrong:
        raise InputError(f"{path}: series of lengths {wrong} differ from the {n} frames of 'time'")
    for k in series:
        roll[k] = np.asarray(roll[k], dtype=float)
    roll["path"] = str(path)
    return roll


def finite_frames(roll: dict[str, Any]) -> np.ndarray:
    """Frames with a finite temperature and potential energy (NaN from the first blown-up frame on)."""
    return np.isfinite(roll["temperature"]) & np.isfinite(roll["potential_energy"])


def simulated_ps(roll: dict[str, Any]) -> float:
    """Simulated time (ps): steps done times the method's step ``meta.dt``.

    Cross-checked against the time of the last finite frame: a mismatch larger than
    one saving interval (plus one step) is logged, since it means ``steps_done`` is
    not counted in steps of ``dt``.
    """
    dt = float(roll["meta"]["dt"])
    simulated = float(roll["steps_done"]) * dt / 1000.0
    finite = finite_frames(roll)
    if finite.any():
        t = np.asarray(roll["time"], dtype=float)
        last = float(t[np.flatnonzero(finite)[-1]]) / 1000.0
        spacing = float(t[1] - t[0]) / 1000.0
        if simulated < last - 1e-9 or simulated > last + spacing + dt / 1000.0 + 1e-9:
            log.warning(
                "%s: steps_done * dt = %.4g ps but the last finite frame is at %.4g ps",
                roll.get("path", roll["meta"]["method"]),
                simulated,
                last,
            )
    return simulated


def wall_per_ps(roll: dict[str, Any]) -> float:
    """Wall-clock seconds per simulated ps (:func:`simulated_ps`); NaN when nothing was simulated."""
    simulated = simulated_ps(roll)
    return float(roll["wall_time"]) / simulated if simulated > 0 else float("nan")


def finite_std(values: np.ndarray) -> float:
    """Sample standard deviation (ddof = 1) of the finite values; NaN for fewer than two."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.std(v, ddof=1)) if len(v) >= 2 else float("nan")


def finite_mean(values: np.ndarray) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.mean(v)) if len(v) else float("nan")


def write_csv(table: pd.DataFrame, out: str | Path) -> None:
    """Write ``table`` to ``out`` atomically, without the index, floats to 8 significant digits."""
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.8g")


def method_labels(ref: dict[str, Any] | None) -> dict[str, str]:
    """Legend names of the reference (with its step, fs, when ``ref`` is a reference rollout) and direct."""
    return {"reference": f"reference VV ({ref['meta']['dt']:g} fs)" if ref else "reference", "direct": "direct"}
