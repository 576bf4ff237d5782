"""Fig. 5 of liquid argon: the metrics table and the figure from the NVE rollouts.

Per rollout: drift of the total energy per atom (meV/atom/ps) and of the kinetic
temperature (K/ps) from linear fits over the run, the largest energy excursion, the
mean number of fixed-point iterations and the cost (wall s per simulated ps).
Energies are those of the potential shifted to zero at the cutoff, which dynamics
with truncated forces conserves.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from actionmd.analysis.observables import drift
from actionmd.analysis.plotting import label, line_style, method_colors, plt, save_figure
from actionmd.dynamics.energy import conserved_quantity
from actionmd.io import atomic_path, read_rollouts
from actionmd.naming import order_methods

log = logging.getLogger(__name__)


ENERGY_AXIS_LIMIT = 1e4  # meV/atom: energies of blown-up runs are clipped here in the figure

REQUIRED = ("time", "potential_energy", "kinetic_energy", "temperature", "wall_time", "meta")


def load_rollouts(paths: list[str | Path]) -> dict[str, dict[str, Any]]:
    return read_rollouts(paths, REQUIRED)


def rollout_metrics(roll: dict[str, Any]) -> dict[str, Any]:
    """Energy and temperature drift (linear fits over the run), extremes and cost of one rollout."""
    n = roll["meta"]["n_atoms"]
    t_ps = roll["time"] / 1000.0
    e = conserved_quantity(roll["potential_energy"], roll["kinetic_energy"], n)
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


def write_metrics(paths: list[str | Path], out: str | Path, analysis: dict[str, Any] | None = None) -> None:
    """The metrics table (CSV), one row per rollout in method order (``analysis``: unused, argon has no settings)."""
    rollouts = load_rollouts(paths)
    table = pd.DataFrame([rollout_metrics(rollouts[m]) for m in order_methods(list(rollouts))])
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    log.info("metrics:\n%s", table.to_string(index=False))


_order = order_methods  # until analysis.crystals imports naming.order_methods


LABELS = {"reference": "reference VV (1 fs)", "direct": "direct"}


def plot(
    paths: list[str | Path], pdf: str | Path, png: str | Path | None = None, analysis: dict[str, Any] | None = None
) -> None:
    """Fig. 5: total energy per atom minus its initial value, and kinetic temperature, vs time."""
    rollouts = load_rollouts(paths)
    methods = order_methods(list(rollouts))
    colors = method_colors(methods)
    fig, (ax_e, ax_t) = plt.subplots(2, 1, figsize=(6.4, 6.8), sharex=True, constrained_layout=True)
    top, bottom = 0.0, 0.0
    for m in methods:
        r = rollouts[m]
        n = r["meta"]["n_atoms"]
        e = 1e3 * conserved_quantity(r["potential_energy"], r["kinetic_energy"], n)
        t = r["time"] / 1000.0
        de = np.clip(e - e[0], -ENERGY_AXIS_LIMIT, ENERGY_AXIS_LIMIT)
        style = {**line_style(m, colors), "label": label(m, LABELS)}
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
    save_figure(fig, pdf, png)
