"""The cost-accuracy frontier of one atomistic system: what each method buys for its wall time.

One point per method (reference MD at its small step, direct, each K, converged), drawn
from the metrics table the workflow already writes for the system:

* x: wall-clock seconds per simulated picosecond (log scale), as measured in the rollouts;
* y, panel (a): |drift| of the conserved quantity, meV/atom/ps (log scale): the total
  energy for NVE (argon), H minus the thermostat's (and barostat's) work for NVT/NPT;
* y, panel (b): the equipartition error, K: water |T_H - T_O|, GeTe |T_Ge - T_Te|,
  argon and aluminium |T - T_reference| (one species, so the error is the temperature's).

A run that blew up keeps its point, drawn hollow and labelled with the time it broke, so a
cheap method that fails is visibly not on the frontier.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from actionmd.analysis.plotting import k_colour, label, plt
from actionmd.io import InputError
from actionmd.naming import SYSTEMS, analysis, parse_method

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Columns:
    """Where a system's metrics table keeps the frontier's three numbers."""

    wall_s_per_ps: str
    drift: str
    equipartition: str
    equipartition_label: str
    wall_scale: float = 1.0  # multiplies the wall-time column into s per ps
    against_reference: bool = False  # equipartition = |column - reference's column|
    blew_up: str | None = None  # column of the time (ps) a run broke, NaN if it did not
    complete: str | None = None  # boolean column: the run finished


COLUMNS: dict[str, Columns] = {  # by the system's analysis (actionmd.naming)
    "water": Columns(
        "wall_time_s_per_ps",
        "conserved_drift_meV_per_atom_ps",
        "temperature_gap_K",
        r"$|T_\mathrm{H} - T_\mathrm{O}|$ (K)",
        blew_up="blew_up_at_ps",
    ),
    "argon": Columns(
        "wall_time_s_per_ps",
        "energy_drift_meV_per_atom_ps",
        "mean_temperature_K",
        r"$|T - T_\mathrm{reference}|$ (K)",
        against_reference=True,
        blew_up="blew_up_at_ps",
    ),
    "gete": Columns(
        "wall_s_per_ns",
        "conserved_drift_meV_per_atom_ps",
        "T_Ge_minus_T_Te_K",
        r"$|T_\mathrm{Ge} - T_\mathrm{Te}|$ (K)",
        wall_scale=1e-3,
    ),
    "aluminium": Columns(
        "wall_h_per_100ps",
        "conserved_drift_meV_per_atom_ps",
        "T_mean_K",
        r"$|T - T_\mathrm{reference}|$ (K)",
        wall_scale=36.0,
        against_reference=True,
        complete="complete",
    ),
}


def frontier_systems() -> list[str]:
    """Registered systems whose analysis has a frontier (the atomistic ones)."""
    return [s for s in SYSTEMS if analysis(s) in COLUMNS]


NAMES = {"reference": "reference MD", "direct": "direct"}  # legend text of the methods that are not S's map


def points(system: str, table: pd.DataFrame) -> pd.DataFrame:
    """Columns method, wall_s_per_ps, drift (|meV/atom/ps|), equipartition (K), broke (bool), note."""
    if system not in SYSTEMS or analysis(system) not in COLUMNS:
        raise InputError(f"no frontier for system '{system}': systems with one are {sorted(frontier_systems())}")
    cols = COLUMNS[analysis(system)]
    missing = [c for c in (cols.wall_s_per_ps, cols.drift, cols.equipartition) if c not in table]
    if missing or "method" not in table:
        raise InputError(f"{system} metrics lack columns {missing or ['method']}; rerun the system's analysis rule")
    eq = table[cols.equipartition].astype(float)
    if cols.against_reference:
        ref = table.loc[table["method"] == "reference", cols.equipartition]
        if ref.empty:
            raise InputError(f"{system} metrics have no reference row; the temperature error needs one")
        eq = eq - float(ref.iloc[0])
    out = pd.DataFrame(
        {
            "method": table["method"],
            "wall_s_per_ps": table[cols.wall_s_per_ps].astype(float) * cols.wall_scale,
            "drift": table[cols.drift].astype(float).abs(),
            "equipartition": eq.abs(),
        }
    )
    broke = np.zeros(len(table), dtype=bool)
    note = [""] * len(table)
    if cols.blew_up and cols.blew_up in table:
        at = table[cols.blew_up].astype(float).to_numpy()
        broke = np.isfinite(at)
        note = [f"broke at {t:.2g} ps" if np.isfinite(t) else "" for t in at]
    if cols.complete and cols.complete in table:
        broke = ~table[cols.complete].astype(bool).to_numpy()
        note = ["did not finish" if b else "" for b in broke]
    out["broke"] = broke
    out["note"] = note
    return out


def plot(system: str, pts: pd.DataFrame, pdf: str | Path, png: str | Path | None = None) -> None:
    """Two panels sharing x (wall s per simulated ps, log): |drift| (log) and equipartition error."""
    ks = sorted(k for m in pts["method"] for kind, k in [parse_method(m)] if kind == "symplectic" and k is not None)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    panels = (
        ("drift", "|conserved-quantity drift| (meV/atom/ps)", "log"),
        ("equipartition", COLUMNS[analysis(system)].equipartition_label, "linear"),
    )
    for ax, (key, ylabel, yscale) in zip(axes, panels, strict=True):
        for row in pts.itertuples():
            x, y = row.wall_s_per_ps, getattr(row, key)
            if not (np.isfinite(x) and np.isfinite(y)):
                continue
            color = k_colour(row.method, ks)
            face = "none" if row.broke else color
            ax.plot([x], [max(y, 1e-6) if yscale == "log" else y], "o", ms=8, mfc=face, mec=color, ls="none")
            text = label(row.method, NAMES) + (f" ({row.note})" if row.note else "")
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8, color=color)
        ax.set_xscale("log")
        ax.set_yscale(yscale)
        ax.set_xlabel("wall time per simulated ps (s)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_title(f"(a) {system}: energy conservation vs cost", fontsize=10)
    axes[1].set_title("(b) equipartition vs cost; hollow: the run broke", fontsize=10)
    fig.savefig(pdf)
    if png is not None:
        fig.savefig(png, dpi=130)
    plt.close(fig)


def make(system: str, metrics: str | Path, pdf: str | Path, png: str | Path | None = None) -> pd.DataFrame:
    """Read the system's metrics table, draw its frontier; returns the points (logged too)."""
    path = Path(metrics)
    if not path.is_file():
        raise InputError(f"{path}: metrics table not found; run the workflow's analysis rule for {system}")
    pts = points(system, pd.read_csv(path))
    log.info("%s frontier:\n%s", system, pts.to_string(index=False))
    plot(system, pts, pdf, png)
    return pts
