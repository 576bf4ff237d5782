"""Aluminium NPT: paper Table 1 and its figure.

One run per method at the target temperature (K) and pressure (bar), driven by a
reference ML potential. Table 1 reports the mean kinetic temperature (K) and cell
volume (A^3, and A^3 per atom) with block-averaging errors after an equilibration
(ps) that is discarded, the drift of the NPT conserved quantity (meV/atom/ps) and the
cost (wall-clock hours per 100 ps simulated, and the speed-up over the reference).
The figure: volume per atom (A^3) and temperature (K) against time (ps) per method,
with the table below. Rollout files are read and checked by
:mod:`actionmd.analysis.runs` (fs and eV in the files); frames after a run blew up are
NaN, so every statistic here is NaN-aware and says how many frames it used.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from actionmd.analysis.observables import drift
from actionmd.analysis.plotting import label, line_style, method_colors, plt, save_figure
from actionmd.analysis.runs import (
    finite_frames,
    load_rollout,
    method_labels,
    simulated_ps,
    write_csv,
)
from actionmd.io import InputError
from actionmd.naming import order_methods

log = logging.getLogger(__name__)

ALUMINIUM_REQUIRED = ("time", "potential_energy", "temperature", "volume", "wall_time", "steps_done", "numbers", "meta")
ALUMINIUM_META = (
    "method",
    "system",
    "dt",
    "long_step",
    "potential",
    "target_temperature",
    "target_pressure",
    "n_atoms",
)
ALUMINIUM_SERIES = ("potential_energy", "temperature", "volume")


def load_aluminium(paths: list[str | Path]) -> dict[str, dict[str, Any]]:
    """Aluminium NPT rollouts keyed by method (reference, direct, symplectic K ascending); one file per method."""
    rolls: dict[str, dict[str, Any]] = {}
    for path in paths:
        roll = load_rollout(path, ALUMINIUM_REQUIRED, ALUMINIUM_META, ALUMINIUM_SERIES, "aluminium")
        method = roll["meta"]["method"]
        if method in rolls:
            raise InputError(f"{path}: a second rollout of {method} (first: {rolls[method]['path']})")
        rolls[method] = roll
    return {m: rolls[m] for m in order_methods(list(rolls))}


def block_average(x: np.ndarray, blocks: int = 10) -> tuple[float, float]:
    """Mean of the finite values of a time series and its standard error by block averaging.

    The finite values, in order, are cut into ``blocks`` contiguous blocks of equal
    length (the first ``n mod blocks`` values are dropped from the blocks only); the
    standard error is the standard deviation (ddof = 1) of the block means divided by
    sqrt(blocks). For blocks much longer than the autocorrelation time the block means
    are independent and this is the standard error of the mean of correlated data
    (for iid data it tends to sigma / sqrt(n)). The mean returned is that of all finite
    values. With fewer than 2 x ``blocks`` finite values the number of blocks drops to
    n // 2 (at least 2) with a warning; fewer than 4 finite values raise ValueError.
    """
    v = np.asarray(x, dtype=float).ravel()
    v = v[np.isfinite(v)]
    n = len(v)
    if n < 4:
        raise ValueError(f"block averaging needs at least 4 finite values, got {n}")
    if blocks < 2:
        raise ValueError(f"block averaging needs at least 2 blocks, got {blocks}")
    if n < 2 * blocks:
        reduced = max(n // 2, 2)
        warnings.warn(
            f"{n} finite values are too few for {blocks} blocks; using {reduced}", RuntimeWarning, stacklevel=2
        )
        blocks = reduced
    length = n // blocks
    means = v[n - blocks * length :].reshape(blocks, length).mean(axis=1)
    return float(np.mean(v)), float(np.std(means, ddof=1) / np.sqrt(blocks))


def _safe_block_average(x: np.ndarray, blocks: int) -> tuple[float, float]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return block_average(x, blocks)
    except ValueError:
        return float("nan"), float("nan")


def aluminium_table(
    rolls: dict[str, dict[str, Any]], out_csv: str | Path | None = None, discard: float = 0.2, blocks: int = 10
) -> pd.DataFrame:
    """Table 1: mean T (K) and V (A^3) with block-averaging errors, and the cost, one row per method.

    The first ``discard`` fraction of the saved frames is equilibration and excluded;
    of the rest, the finite frames are used (``frames_used``). Simulated time is
    steps_done x dt (fs -> ps); ``wall_h_per_100ps`` is the wall-clock time in hours per
    100 ps simulated; ``speedup_vs_reference`` is the reference's wall_h_per_100ps over
    this row's (1 for the reference, NaN without one). A run that blew up (``meta.diverged_at``
    set, or a NaN tail) keeps its row, with ``complete`` false; ``last_finite_ps`` is the time
    of its last finite frame. ``conserved_drift_meV_per_atom_ps``: slope over the run of the
    NPT conserved quantity per atom (NaN where the rollouts did not save it). Rows: reference, direct,
    symplectic K ascending. Returns the table; writes it to ``out_csv`` when given.
    """
    if not 0.0 <= discard < 1.0:
        raise ValueError(f"discard must be a fraction in [0, 1), got {discard}")
    rows = []
    for method in order_methods(list(rolls)):
        roll = rolls[method]
        meta = roll["meta"]
        n_frames = len(roll["time"])
        start = int(round(discard * n_frames))
        t_mean, t_err = _safe_block_average(roll["temperature"][start:], blocks)
        v_mean, v_err = _safe_block_average(roll["volume"][start:], blocks)
        conserved = roll.get("conserved")
        slope = (
            1e3 * drift(np.asarray(roll["time"]) / 1e3, np.asarray(conserved) / meta["n_atoms"])
            if conserved is not None
            else float("nan")
        )
        used = np.isfinite(roll["temperature"][start:]) & np.isfinite(roll["volume"][start:])
        simulated = simulated_ps(roll)
        wall_h = float(roll["wall_time"]) / 3600.0
        diverged = meta.get("diverged_at")
        finite = finite_frames(roll) & np.isfinite(roll["volume"])
        complete = diverged is None and bool(finite[-1])
        rows.append(
            {
                "method": method,
                "potential": str(meta["potential"]),
                "dt_fs": float(meta["dt"]),
                "simulated_ps": simulated,
                "complete": complete,
                "last_finite_ps": float(roll["time"][finite][-1]) / 1000.0 if finite.any() else float("nan"),
                "T_mean_K": t_mean,
                "T_err_K": t_err,
                "V_mean_A3": v_mean,
                "V_err_A3": v_err,
                "V_per_atom_A3": v_mean / meta["n_atoms"],
                "V_per_atom_err_A3": v_err / meta["n_atoms"],
                "wall_h_per_100ps": wall_h / simulated * 100.0 if simulated > 0 else float("nan"),
                "conserved_drift_meV_per_atom_ps": slope,
                "frames_used": int(used.sum()),
                "frames": n_frames,
                "equilibration_ps": float(roll["time"][start]) / 1000.0 if start < n_frames else float("nan"),
                "target_temperature_K": float(meta["target_temperature"]),
                "target_pressure_bar": float(meta["target_pressure"]),
                "n_atoms": int(meta["n_atoms"]),
            }
        )
        if not complete:
            log.warning("%s: blew up (steps_done %d); row flagged incomplete", method, int(roll["steps_done"]))
    table = pd.DataFrame(rows)
    ref = table.loc[table["method"] == "reference", "wall_h_per_100ps"]
    ref_cost = float(ref.iloc[0]) if len(ref) else float("nan")
    table.insert(
        table.columns.get_loc("wall_h_per_100ps") + 1, "speedup_vs_reference", ref_cost / table["wall_h_per_100ps"]
    )
    if out_csv is not None:
        write_csv(table, out_csv)
    log.info("aluminium table:\n%s", table.to_string(index=False))
    return table


def _pm(mean: float, err: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} \u00b1 {err:.{digits}f}" if np.isfinite(err) else f"{mean:.{digits}f}"


def aluminium_plot(
    rolls: dict[str, dict[str, Any]], table: pd.DataFrame | str | Path, pdf: str | Path, png: str | Path | None = None
) -> None:
    """Table 1 as a figure: V per atom (A^3) and T (K) against time (ps) per method, the table below.

    ``table`` is the DataFrame of :func:`aluminium_table` or the path of its CSV. The
    discarded equilibration is shaded; the target temperature is a dotted line; an x
    marks the last finite frame of a run that blew up.
    """
    if not isinstance(table, pd.DataFrame):
        path = Path(table)
        if not path.is_file():
            raise InputError(f"{path}: table not found; run the workflow rule that produces it")
        table = pd.read_csv(path)
    methods = order_methods(list(rolls))
    colors = method_colors(methods)
    labels = method_labels(rolls.get("reference"))
    fig = plt.figure(figsize=(9.0, 8.4), constrained_layout=True)
    grid = fig.add_gridspec(3, 1, height_ratios=(1.0, 1.0, 0.22 + 0.11 * len(table)))
    ax_v = fig.add_subplot(grid[0])
    ax_t = fig.add_subplot(grid[1], sharex=ax_v)
    ax_tab = fig.add_subplot(grid[2])
    for method in methods:
        r = rolls[method]
        t = np.asarray(r["time"], dtype=float) / 1000.0
        v = r["volume"] / r["meta"]["n_atoms"]
        style = line_style(method, colors)
        ax_v.plot(t, v, label=label(method, labels), **{**style, "lw": 0.9})
        ax_t.plot(t, r["temperature"], **{**style, "lw": 0.9})
        finite = finite_frames(r) & np.isfinite(v)
        if not finite[-1] and finite.any():
            last = int(np.flatnonzero(finite)[-1])
            ax_v.plot(t[last], v[last], "x", color=style["color"], ms=8, mew=2, zorder=4)
            ax_t.plot(t[last], r["temperature"][last], "x", color=style["color"], ms=8, mew=2, zorder=4)
    if "equilibration_ps" in table and np.isfinite(table["equilibration_ps"]).any():
        t_eq = float(np.nanmax(table["equilibration_ps"]))
        for ax in (ax_v, ax_t):
            ax.axvspan(0.0, t_eq, color="0.85", zorder=0, lw=0)
    meta = rolls[methods[-1]]["meta"]
    ax_t.axhline(meta["target_temperature"], color="gray", lw=1, ls=":", label="target")
    ax_v.set_ylabel("volume / atom (A$^3$)")
    ax_t.set_ylabel("kinetic temperature (K)")
    ax_t.set_xlabel("time (ps)")
    ax_v.set_title(
        f"Aluminium ({meta['n_atoms']} atoms), {meta['potential']}; NPT at {meta['target_temperature']:g} K, "
        f"{meta['target_pressure']:g} bar (shaded: equilibration, not averaged)",
        fontsize=9,
    )
    ax_v.legend(fontsize=7, ncols=2)
    ax_t.legend(fontsize=7)
    for ax in (ax_v, ax_t):
        ax.grid(alpha=0.3)
    ax_tab.axis("off")
    header = ["method", "dt (fs)", "simulated (ps)", "T (K)", "V / atom (A$^3$)", "wall h / 100 ps", "speedup"]
    cells = []
    any_incomplete = False
    for _, row in table.iterrows():
        name = label(row["method"], labels) + ("" if bool(row["complete"]) else " (blew up)")
        any_incomplete = any_incomplete or not bool(row["complete"])
        cells.append(
            [
                name,
                f"{row['dt_fs']:g}",
                f"{row['simulated_ps']:.1f}",
                _pm(row["T_mean_K"], row["T_err_K"], 1),
                _pm(row["V_per_atom_A3"], row["V_per_atom_err_A3"], 3),
                f"{row['wall_h_per_100ps']:.3g}",
                f"{row['speedup_vs_reference']:.3g}",
            ]
        )
    widths = [0.25, 0.08, 0.11, 0.15, 0.17, 0.13, 0.09]
    tab = ax_tab.table(cellText=cells, colLabels=header, colWidths=widths, loc="center", cellLoc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    tab.scale(1.0, 1.3)
    note = "mean \u00b1 block-averaging standard error after the shaded equilibration"
    if any_incomplete:
        note += "; a run that blew up: statistics and cost over its finite part"
    ax_tab.set_title(note, fontsize=8, loc="left")
    save_figure(fig, pdf, png)
