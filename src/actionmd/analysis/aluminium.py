"""Analyses and figures of the machine-learned-potential experiments (paper Fig. 3 and Table 1).

* GeTe glassy relaxation (Fig. 3): several independent quenches of liquid GeTe per
  method, thermostatted (NVT) at the target temperature. The glass ages: its
  potential energy keeps falling on a logarithmic time scale; a faithful long-step
  map must follow the reference's relaxation and keep equipartition between the
  species, T_Ge = T_Te (a map that is not symplectic heats one species and cools the
  other while the thermostat holds the total).
* Aluminium NPT (Table 1): one run per method at the target temperature and
  pressure; the table reports the mean kinetic temperature and cell volume with
  block-averaging errors, and the cost (wall-clock hours per 100 ps simulated).

Rollout files are .npz written by :func:`actionmd.io.save_npz`; frames after a run
blew up are NaN, so every statistic here is NaN-aware and says how many frames it
used. Units: fs in the files, ps/ns in tables and figures, eV in the files, meV/atom
in tables and figures, K, A^3, wall-clock seconds (hours where stated).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from actionmd.analysis.observables import drift
from actionmd.io import InputError, atomic_path, load_npz

if TYPE_CHECKING:
    import pandas as pd

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

FINAL_FRACTION = 0.1  # GeTe: the final potential energy is the mean over the last 10 % of the frames


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------


def _load(
    path: str | Path, required: tuple[str, ...], meta_keys: tuple[str, ...], series: tuple[str, ...], system: str
) -> dict[str, Any]:
    """One rollout file, checked: required arrays and metadata present, series as long as ``time``, system."""
    roll = load_npz(path, required=required)
    meta = roll["meta"]
    if not isinstance(meta, dict):
        raise InputError(f"{path}: 'meta' is not a dictionary; delete it and rerun the workflow")
    missing = [k for k in meta_keys if k not in meta]
    if missing:
        raise InputError(f"{path}: metadata lacks {missing}; delete it and rerun the workflow")
    if meta["system"] != system:
        raise InputError(f"{path}: a rollout of system {meta['system']!r}, expected {system!r}")
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


def _order(methods: list[str]) -> list[str]:
    from actionmd.systems.argon import _order as order

    return order(methods)


def _simulated_ps(roll: dict[str, Any]) -> float:
    """Simulated time (ps): steps done times the method's step ``meta.dt``.

    Cross-checked against the time of the last finite frame: a mismatch larger than
    one saving interval (plus one step) is logged, since it means ``steps_done`` is
    not counted in steps of ``dt``.
    """
    dt = float(roll["meta"]["dt"])
    simulated = float(roll["steps_done"]) * dt / 1000.0
    finite = _finite(roll)
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


def _finite(roll: dict[str, Any]) -> np.ndarray:
    """Frames with a finite temperature and potential energy (NaN from the first blown-up frame on)."""
    return np.isfinite(roll["temperature"]) & np.isfinite(roll["potential_energy"])


def _wall_per_ps(roll: dict[str, Any]) -> float:
    simulated = _simulated_ps(roll)
    return float(roll["wall_time"]) / simulated if simulated > 0 else float("nan")


def _colors(methods: list[str], plt: Any) -> dict[str, Any]:
    """House colours: reference black, direct red, symplectic K ascending along viridis."""
    ks = [m for m in methods if m.startswith("symplectic")]
    cmap = plt.get_cmap("viridis")
    colors: dict[str, Any] = {"reference": "black", "direct": "tab:red"}
    for i, m in enumerate(ks):
        colors[m] = cmap(0.15 + 0.7 * i / max(len(ks) - 1, 1))
    return colors


def _style(method: str, colors: dict[str, Any]) -> dict[str, Any]:
    return {
        "color": colors.get(method, "gray"),
        "lw": 1.6 if method in ("reference", "direct") else 1.2,
        "ls": "--" if method == "reference" else "-",
        "zorder": 3 if method == "reference" else 2,
    }


def _labels(ref: dict[str, Any] | None) -> dict[str, str]:
    return {"reference": f"reference VV ({ref['meta']['dt']:g} fs)" if ref else "reference", "direct": "direct"}


def _std(values: np.ndarray) -> float:
    """Sample standard deviation (ddof = 1) of the finite values; NaN for fewer than two."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.std(v, ddof=1)) if len(v) >= 2 else float("nan")


def _mean(values: np.ndarray) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.mean(v)) if len(v) else float("nan")


def _write_csv(table: pd.DataFrame, out: str | Path) -> None:
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.8g")


# --------------------------------------------------------------------------------------
# GeTe glassy relaxation (Fig. 3)
# --------------------------------------------------------------------------------------


def load_gete(paths: list[str | Path]) -> dict[str, list[dict[str, Any]]]:
    """GeTe rollouts keyed by method (reference, direct, symplectic K ascending), runs sorted by ``meta.run``.

    All runs of one method must share the saving time grid (fs); a run that blew up
    has the same grid with a NaN tail. Raises :class:`InputError` naming the file for
    missing arrays or metadata, a duplicated (method, run) or a different time grid.
    """
    rolls: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        roll = _load(path, GETE_REQUIRED, GETE_META, GETE_SERIES, "gete")
        rolls.setdefault(roll["meta"]["method"], []).append(roll)
    out = {}
    for method in _order(list(rolls)):
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
    conserved = (roll["potential_energy"] + roll["kinetic_energy"] - roll["thermostat_work"]) / n_atoms
    return {
        "drift": 1e3 * drift(np.asarray(roll["time"]) / 1e3, conserved),
        "T": _mean(_second_half(roll["temperature"])),
        "gap": _mean(_second_half(gap)),
        "U_final": _mean(_final(1e3 * roll["potential_energy"] / n_atoms)),
        "frames_finite": int(_finite(roll).sum()),
        "complete": bool(roll["meta"].get("diverged_at") is None and _finite(roll)[-1]),
        "wall_s_per_ns": 1e3 * _wall_per_ps(roll),
        "simulated_ns": _simulated_ps(roll) / 1e3,
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
    import pandas as pd

    rows = []
    for method in _order(list(rolls)):
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
                "T_mean_K": _mean(col["T"]),
                "T_std_K": _std(col["T"]),
                "T_Ge_minus_T_Te_K": _mean(col["gap"]),
                "T_Ge_minus_T_Te_std_K": _std(col["gap"]),
                "runs_used_T": int(np.isfinite(col["gap"]).sum()),
                "U_final_meV_per_atom": _mean(col["U_final"]),
                "U_final_std_meV_per_atom": _std(col["U_final"]),
                "runs_used_U_final": int(np.isfinite(col["U_final"]).sum()),
                "conserved_drift_meV_per_atom_ps": _mean(col["drift"]),
                "simulated_ns_per_run": _mean(np.array([p["simulated_ns"] for p in per])),
                "wall_time_s_per_run": _mean(np.array([p["wall_time_s"] for p in per])),
                "wall_s_per_ns": _mean(col["wall_s_per_ns"]),
                "wall_s_per_ns_std": _std(col["wall_s_per_ns"]),
                "dt_fs": float(meta["dt"]),
                "target_temperature_K": float(meta["target_temperature"]),
                "potential": str(meta["potential"]),
            }
        )
    table = pd.DataFrame(rows)
    if out_csv is not None:
        _write_csv(table, out_csv)
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
    return _mean(np.array(values)), f"mean of {what} runs at t = 0"


def gete_plot(rolls: dict[str, list[dict[str, Any]]], pdf: str | Path, png: str | Path | None = None) -> None:
    """Fig. 3: (a) potential energy per atom vs log time, mean over runs with the min-max band over runs;
    (b) T_Ge - T_Te (K) per method over the second half of the runs, mean over runs +- std over runs."""
    from actionmd.analysis.plotting import _save, label, plt

    methods = _order(list(rolls))
    colors = _colors(methods, plt)
    labels = _labels(rolls["reference"][0] if "reference" in rolls else None)
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
        style = _style(method, colors)
        n_finite = sum(int(_finite(r).sum()) for r in runs)
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
        ax_g.errorbar(i, _mean(per), yerr=np.nan_to_num(_std(per)), fmt="o", color=color, ms=7, capsize=4)
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
    _save(fig, pdf, png)


# --------------------------------------------------------------------------------------
# aluminium NPT (Table 1)
# --------------------------------------------------------------------------------------


def load_aluminium(paths: list[str | Path]) -> dict[str, dict[str, Any]]:
    """Aluminium NPT rollouts keyed by method (reference, direct, symplectic K ascending); one file per method."""
    rolls: dict[str, dict[str, Any]] = {}
    for path in paths:
        roll = _load(path, ALUMINIUM_REQUIRED, ALUMINIUM_META, ALUMINIUM_SERIES, "aluminium")
        method = roll["meta"]["method"]
        if method in rolls:
            raise InputError(f"{path}: a second rollout of {method} (first: {rolls[method]['path']})")
        rolls[method] = roll
    return {m: rolls[m] for m in _order(list(rolls))}


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
    import pandas as pd

    if not 0.0 <= discard < 1.0:
        raise ValueError(f"discard must be a fraction in [0, 1), got {discard}")
    rows = []
    for method in _order(list(rolls)):
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
        simulated = _simulated_ps(roll)
        wall_h = float(roll["wall_time"]) / 3600.0
        diverged = meta.get("diverged_at")
        finite = _finite(roll) & np.isfinite(roll["volume"])
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
        _write_csv(table, out_csv)
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
    import pandas as pd

    from actionmd.analysis.plotting import _save, label, plt

    if not isinstance(table, pd.DataFrame):
        path = Path(table)
        if not path.is_file():
            raise InputError(f"{path}: table not found; run the workflow rule that produces it")
        table = pd.read_csv(path)
    methods = _order(list(rolls))
    colors = _colors(methods, plt)
    labels = _labels(rolls.get("reference"))
    fig = plt.figure(figsize=(9.0, 8.4), constrained_layout=True)
    grid = fig.add_gridspec(3, 1, height_ratios=(1.0, 1.0, 0.22 + 0.11 * len(table)))
    ax_v = fig.add_subplot(grid[0])
    ax_t = fig.add_subplot(grid[1], sharex=ax_v)
    ax_tab = fig.add_subplot(grid[2])
    for method in methods:
        r = rolls[method]
        t = np.asarray(r["time"], dtype=float) / 1000.0
        v = r["volume"] / r["meta"]["n_atoms"]
        style = _style(method, colors)
        ax_v.plot(t, v, label=label(method, labels), **{**style, "lw": 0.9})
        ax_t.plot(t, r["temperature"], **{**style, "lw": 0.9})
        finite = _finite(r) & np.isfinite(v)
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
    _save(fig, pdf, png)
