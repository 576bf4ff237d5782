"""Fig. 2 of liquid water: the metrics table and the figure from the rollouts.

Per rollout: drift of the conserved quantity H - (energy added by the thermostat)
(meV/atom/ps), mean kinetic temperatures of O and H (K), the O-O radial
distribution function's first peak (A, height) and the O diffusion coefficient from
the mean-square displacement (A^2/ps, :mod:`actionmd.analysis.observables`), and the
cost (wall s per simulated ps). A run is cut at its first broken molecule (an O-H
distance beyond :data:`BOND_LIMIT`): under a thermostat, a failing map need not heat
the system past the rollout's temperature limit, it breaks molecules.
``analysis``: the resolved ``analysis`` section (``rdf_r_max``, ``rdf_bins``, ``msd_fit``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from actionmd.analysis.observables import drift, mean_square_displacement, radial_distribution
from actionmd.analysis.plotting import label, line_style, method_colors, plt, save_figure
from actionmd.dynamics.energy import conserved_quantity as conserved
from actionmd.io import InputError, atomic_path, read_rollouts
from actionmd.naming import order_methods

log = logging.getLogger(__name__)


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
    return {m: cut_at_broken_molecule(r) for m, r in read_rollouts(paths, REQUIRED).items()}


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
    return conserved(roll["potential_energy"], roll["kinetic_energy"], roll["meta"]["n_atoms"], roll["thermostat_work"])


def _finite(roll: dict[str, Any]) -> np.ndarray:
    return np.isfinite(roll["positions"]).all(axis=(1, 2))


def rdf_oo(roll: dict[str, Any], r_max: float, bins: int):
    """g_OO(r) over the finite frames (r_max capped below half the box edge)."""
    cell = np.asarray(roll["cell"])
    r_max = min(r_max, 0.5 * float(np.diagonal(cell).min()) - 1e-6)
    oxygens = np.flatnonzero(roll["numbers"] == 8)
    return radial_distribution(roll["positions"][_finite(roll)], cell, oxygens, r_max=r_max, bins=bins)


def msd_o(roll: dict[str, Any]):
    """Mean-square displacement of the O atoms (A^2) against lag (ps), over the finite frames."""
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


def _settings(analysis: dict[str, Any] | None) -> dict[str, Any]:
    if analysis is None:
        raise InputError("water metrics and figure need --config with the resolved 'analysis' section")
    return analysis


def write_metrics(paths: list[str | Path], out: str | Path, analysis: dict[str, Any] | None) -> None:
    analysis = _settings(analysis)
    rollouts = load_rollouts(paths)
    table = pd.DataFrame([rollout_metrics(rollouts[m], analysis) for m in order_methods(list(rollouts))])
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    log.info("metrics:\n%s", table.to_string(index=False))


def plot(paths: list[str | Path], pdf: str | Path, png: str | Path | None, analysis: dict[str, Any] | None) -> None:
    """Fig. 2: (a) conserved quantity, (b) T_O and T_H, (c) g_OO(r), (d) O mean-square displacement."""
    analysis = _settings(analysis)
    rollouts = load_rollouts(paths)
    methods = order_methods(list(rollouts))
    colors = method_colors(methods)
    ref = rollouts.get("reference")
    labels = {"reference": f"reference VV ({ref['meta']['dt']:g} fs)" if ref else "reference", "direct": "direct"}
    fig, axes = plt.subplots(2, 2, figsize=(9.6, 8.2), constrained_layout=True)
    (ax_e, ax_t), (ax_g, ax_m) = axes
    top, bottom = 0.0, 0.0
    for m in methods:
        r = rollouts[m]
        style = line_style(m, colors)
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
    # below the axes: inside, it hides the reference's curve (the drifts fill the whole height)
    ax_e.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
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
    save_figure(fig, pdf, png)
