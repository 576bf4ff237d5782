"""GeTe glassy relaxation: the metrics table and paper Fig. 3.

Several independent quenches of liquid GeTe per method, thermostatted (NVT) at the
target temperature, driven by a reference ML potential. The glass ages: its potential
energy keeps falling on a logarithmic time scale; a faithful long-step map must follow
the reference's relaxation and keep equipartition between the species, T_Ge = T_Te (a
map that is not symplectic heats one species and cools the other while the thermostat
holds the total).

Fig. 3: (a) potential energy per atom (meV) against log time (ps), mean over runs with
the min-max band; (b) T_Ge - T_Te (K) per method. The metrics table: temperatures (K),
species gap (K), final potential energy (meV/atom), drift of the conserved quantity
(meV/atom/ps) and cost (wall-clock s per simulated ns). Rollout files are read and
checked by :mod:`actionmd.analysis.runs` (fs and eV in the files); frames after a run
blew up are NaN, so every statistic here is NaN-aware.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from actionmd.analysis.observables import drift
from actionmd.analysis.plotting import label, line_style, method_colors, plt, save_figure
from actionmd.analysis.runs import (
    finite_frames,
    finite_mean,
    finite_std,
    load_rollout,
    method_labels,
    simulated_ps,
    wall_per_ps,
    write_csv,
)
from actionmd.dynamics.energy import conserved_quantity
from actionmd.io import InputError
from actionmd.naming import order_methods

log = logging.getLogger(__name__)

GETE_REQUIRED = (
    "time",
    "potential_energy",
    "kinetic_energy",
    "temperature",
    "temperature_Ge",
    "temperature_Te",
    "thermostat_work",
    "wall_time",
    "steps_done",
    "numbers",
    "meta",
)
GETE_META = ("method", "run", "system", "dt", "long_step", "potential", "target_temperature", "n_atoms")
GETE_SERIES = (
    "potential_energy",
    "kinetic_energy",
    "temperature",
    "temperature_Ge",
    "temperature_Te",
    "thermostat_work",
)


FINAL_FRACTION = 0.1  # GeTe: the final potential energy is the mean over the last 10 % of the frames


def load_gete(paths: list[str | Path]) -> dict[str, list[dict[str, Any]]]:
    """GeTe rollouts keyed by method (reference, direct, symplectic K ascending), runs sorted by ``meta.run``.

    All runs of one method must share the saving time grid (fs); a run that blew up
    has the same grid with a NaN tail. Raises :class:`InputError` naming the file for
    missing arrays or metadata, a duplicated (method, run) or a different time grid.
    """
    rolls: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        roll = load_rollout(path, GETE_REQUIRED, GETE_META, GETE_SERIES, "gete")
        rolls.setdefault(roll["meta"]["method"], []).append(roll)
    out = {}
    for method in order_methods(list(rolls)):
        runs = sorted(rolls[method], key=lambda r: int(r["meta"]["run"]))
        ids = [int(r["meta"]["run"]) for r in runs]
        if len(set(ids)) != len(ids):
            files = [r["path"] for r in runs]
            raise InputError(f"{method}: duplicated run numbers {ids} in {files}")
        first = runs[0]
        for r in runs[1:]:
            if len(r["time"]) != len(first["time"]) or not np.allclose(r["time"], first["time"]):
                raise InputError(
                    f"{r['path']}: time grid ({len(r['time'])} frames up to {r['time'][-1]:g} fs) differs from "
                    f"{first['path']} ({len(first['time'])} frames up to {first['time'][-1]:g} fs); all runs of "
                    f"{method} must be saved on the same grid"
                )
        out[method] = runs
    return out


def _second_half(x: np.ndarray) -> np.ndarray:
    """The second half of a run's saved frames (of the full grid, NaN tail included)."""
    return np.asarray(x, dtype=float)[len(x) // 2 :]


def _final(x: np.ndarray, fraction: float = FINAL_FRACTION) -> np.ndarray:
    """The last ``fraction`` of a run's saved frames (at least one)."""
    n = max(int(round(fraction * len(x))), 1)
    return np.asarray(x, dtype=float)[-n:]


def gete_run_values(roll: dict[str, Any]) -> dict[str, float]:
    """Per-run numbers: mean T, T_Ge - T_Te (K) over the finite frames of the second half, final U (meV/atom).

    The final potential energy per atom is the mean over the finite frames among the
    last 10 % of the saved frames: NaN for a run that blew up before them.
    """
    n_atoms = roll["meta"]["n_atoms"]
    gap = roll["temperature_Ge"] - roll["temperature_Te"]
    conserved = conserved_quantity(roll["potential_energy"], roll["kinetic_energy"], n_atoms, roll["thermostat_work"])
    return {
        "drift": 1e3 * drift(np.asarray(roll["time"]) / 1e3, conserved),
        "T": finite_mean(_second_half(roll["temperature"])),
        "gap": finite_mean(_second_half(gap)),
        "U_final": finite_mean(_final(1e3 * roll["potential_energy"] / n_atoms)),
        "frames_finite": int(finite_frames(roll).sum()),
        "complete": bool(roll["meta"].get("diverged_at") is None and finite_frames(roll)[-1]),
        "wall_s_per_ns": 1e3 * wall_per_ps(roll),
        "simulated_ns": simulated_ps(roll) / 1e3,
        "wall_time_s": float(roll["wall_time"]),
    }


def gete_metrics(rolls: dict[str, list[dict[str, Any]]], out_csv: str | Path | None = None) -> pd.DataFrame:
    """One row per method of the GeTe relaxation: temperatures, species gap, final energy, cost.

    Per run: the kinetic temperature T and the gap T_Ge - T_Te (K) are averaged over the
    finite frames of the second half of the saved frames, the potential energy per atom
    (meV) over the last 10 %. The row holds the mean over runs and the sample standard
    deviation over runs (ddof = 1; NaN for a single run); runs with no finite frame in the
    window do not count (``runs_used_*``). ``frames_finite`` is summed over runs out of
    ``frames`` = runs x saved frames. ``conserved_drift_meV_per_atom_ps``: the slope over the
    whole run of (U + K - thermostat work) per atom, mean over runs. Cost: wall-clock
    seconds per simulated ns (simulated time = steps_done x dt), mean and std over runs. Returns the table; writes it to
    ``out_csv`` when given.
    """
    rows = []
    for method in order_methods(list(rolls)):
        runs = rolls[method]
        per = [gete_run_values(r) for r in runs]
        col = {k: np.array([p[k] for p in per], dtype=float) for k in ("T", "gap", "U_final", "wall_s_per_ns", "drift")}
        meta = runs[0]["meta"]
        rows.append(
            {
                "method": method,
                "runs": len(runs),
                "runs_complete": sum(p["complete"] for p in per),
                "frames": sum(len(r["time"]) for r in runs),
                "frames_finite": sum(p["frames_finite"] for p in per),
                "T_mean_K": finite_mean(col["T"]),
                "T_std_K": finite_std(col["T"]),
                "T_Ge_minus_T_Te_K": finite_mean(col["gap"]),
                "T_Ge_minus_T_Te_std_K": finite_std(col["gap"]),
                "runs_used_T": int(np.isfinite(col["gap"]).sum()),
                "U_final_meV_per_atom": finite_mean(col["U_final"]),
                "U_final_std_meV_per_atom": finite_std(col["U_final"]),
                "runs_used_U_final": int(np.isfinite(col["U_final"]).sum()),
                "conserved_drift_meV_per_atom_ps": finite_mean(col["drift"]),
                "simulated_ns_per_run": finite_mean(np.array([p["simulated_ns"] for p in per])),
                "wall_time_s_per_run": finite_mean(np.array([p["wall_time_s"] for p in per])),
                "wall_s_per_ns": finite_mean(col["wall_s_per_ns"]),
                "wall_s_per_ns_std": finite_std(col["wall_s_per_ns"]),
                "dt_fs": float(meta["dt"]),
                "target_temperature_K": float(meta["target_temperature"]),
                "potential": str(meta["potential"]),
            }
        )
    table = pd.DataFrame(rows)
    if out_csv is not None:
        write_csv(table, out_csv)
    log.info("GeTe metrics:\n%s", table.to_string(index=False))
    return table


def _over_runs(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over runs (axis 0) of the finite values; NaN where no run is finite."""
    ok = np.isfinite(stack)
    count = ok.sum(axis=0)
    safe = np.where(ok, stack, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, safe.sum(axis=0) / count, np.nan)
    lo = np.where(count > 0, np.where(ok, stack, np.inf).min(axis=0), np.nan)
    hi = np.where(count > 0, np.where(ok, stack, -np.inf).max(axis=0), np.nan)
    return mean, lo, hi


def gete_energy_zero(rolls: dict[str, list[dict[str, Any]]]) -> tuple[float, str]:
    """Common zero of the potential energy per atom (meV) and its description.

    The mean over the reference runs of the potential energy per atom at their first
    frame (the quenched liquid every method starts from); without a reference run, the
    same mean over the first frames of all runs.
    """
    source = rolls.get("reference") or [r for runs in rolls.values() for r in runs]
    values = [1e3 * float(r["potential_energy"][0]) / r["meta"]["n_atoms"] for r in source]
    what = "reference" if "reference" in rolls else "all"
    return finite_mean(np.array(values)), f"mean of {what} runs at t = 0"


def gete_plot(rolls: dict[str, list[dict[str, Any]]], pdf: str | Path, png: str | Path | None = None) -> None:
    """Fig. 3: (a) potential energy per atom vs log time, mean over runs with the min-max band over runs;
    (b) T_Ge - T_Te (K) per method over the second half of the runs, mean over runs +- std over runs."""
    methods = order_methods(list(rolls))
    colors = method_colors(methods)
    labels = method_labels(rolls["reference"][0] if "reference" in rolls else None)
    zero, zero_text = gete_energy_zero(rolls)
    fig, (ax_u, ax_g) = plt.subplots(1, 2, figsize=(11.0, 4.6), constrained_layout=True, width_ratios=(1.6, 1.0))
    gaps = []
    for method in methods:
        runs = rolls[method]
        n_atoms = runs[0]["meta"]["n_atoms"]
        t_ps = np.asarray(runs[0]["time"], dtype=float) / 1000.0
        u = np.stack([1e3 * r["potential_energy"] / n_atoms for r in runs]) - zero
        mean, lo, hi = _over_runs(u)
        keep = t_ps > 0
        style = line_style(method, colors)
        n_finite = sum(int(finite_frames(r).sum()) for r in runs)
        text = f"{label(method, labels)} ({len(runs)} runs"
        text += ")" if n_finite == u.size else f", {n_finite}/{u.size} frames finite)"
        ax_u.plot(t_ps[keep], mean[keep], label=text, **style)
        if len(runs) > 1:
            ax_u.fill_between(t_ps[keep], lo[keep], hi[keep], color=style["color"], alpha=0.2, lw=0)
        per = [gete_run_values(r)["gap"] for r in runs]
        gaps.append((method, np.array(per)))
    ax_u.set_xscale("log")
    ax_u.set_xlabel("time (ps)")
    ax_u.set_ylabel(f"(U - U$_0$) / atom (meV)\nU$_0$: {zero_text}")
    ax_u.set_title("(a) relaxation of the glass (line: mean over runs; band: min-max)", fontsize=9)
    ax_u.legend(fontsize=7)
    x = np.arange(len(gaps))
    for i, (method, per) in enumerate(gaps):
        color = colors.get(method, "gray")
        ax_g.errorbar(i, finite_mean(per), yerr=np.nan_to_num(finite_std(per)), fmt="o", color=color, ms=7, capsize=4)
        ok = np.isfinite(per)
        ax_g.plot(np.full(ok.sum(), i + 0.15), per[ok], ".", color=color, alpha=0.5, ms=5)
    ax_g.axhline(0.0, color="gray", lw=1, ls=":")
    ax_g.set_xticks(x, [label(m, labels) for m, _ in gaps], rotation=30, ha="right", fontsize=8)
    ax_g.set_xlim(-0.6, len(gaps) - 0.4)
    ax_g.set_ylabel("$T_\\mathrm{Ge} - T_\\mathrm{Te}$ (K)")
    ax_g.set_title("(b) equipartition (second half; mean +- std over runs; dots: runs)", fontsize=9)
    for ax in (ax_u, ax_g):
        ax.grid(alpha=0.3)
    meta = rolls[methods[-1]][0]["meta"]
    fig.suptitle(
        f"GeTe ({meta['n_atoms']} atoms), {meta['potential']}; NVT at {meta['target_temperature']:g} K after "
        f"a quench, long step {meta['long_step']:g} fs",
        fontsize=10,
    )
    save_figure(fig, pdf, png)
