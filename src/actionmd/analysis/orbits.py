"""Figures of the few-body experiments (paper Figs. 1 and 4).

* one body (Fig. 4): the orbit in the plane for the reference, the direct model
  and the converged symplectic model; relative total-energy error against time
  for the direct model and the symplectic model at every iteration count.
* three bodies (Fig. 1): the trajectories of the direct model, the converged
  symplectic model and velocity Verlet at the same large step over the
  reference; the energy error of each against time.
"""

from __future__ import annotations

import numpy as np

from actionmd.analysis.plotting import COLOURS, k_colour, label, plt, save_figure
from actionmd.naming import parse_method

BODY_COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]


def energy_panel(ax, rollouts: dict[str, dict]) -> None:
    """Relative energy error against time: signed and linear, or absolute and logarithmic
    when some method runs away (so that the bounded ones stay visible)."""
    ks = sorted(k for m in rollouts for mm, k in [parse_method(m)] if mm == "symplectic" and k is not None)
    order = [m for m in rollouts if m != "reference"] + (["reference"] if "reference" in rollouts else [])
    rel = {m: (r["energy"] - r["energy"][0]) / abs(r["energy"][0]) for m, r in rollouts.items()}
    logscale = max((float(np.nanmax(np.abs(v))) for v in rel.values()), default=0.0) > 1.0
    for m in order:
        y = np.maximum(np.abs(rel[m]), 1e-12) if logscale else rel[m]
        emph = m in ("direct", "symplectic_converged", "vv_large", "reference")
        ax.plot(
            rollouts[m]["time"],
            y,
            color=k_colour(m, ks),
            lw=1.6 if emph else 0.9,
            ls="--" if m == "reference" else "-",
            label=label(m),
            alpha=1.0 if emph else 0.8,
        )
    ax.set_xlabel("time (reduced units)")
    if logscale:
        ax.set_yscale("log")
        ax.set_ylabel(r"$|E(t) - E(0)|\,/\,|E(0)|$")
    else:
        ax.set_ylabel(r"$(E(t) - E(0))\,/\,|E(0)|$")
        ax.axhline(0.0, color="0.7", lw=0.5)
    # beside the axes: inside, it hides the bounded curves the figure is about
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def plot_one_body(rollouts: dict[str, dict], pdf: str, png: str | None = None) -> None:
    fig, (ax_orbit, ax_e) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1, 1.4]})
    for m in ("reference", "direct", "symplectic_converged"):
        if m not in rollouts:
            continue
        q = rollouts[m]["q"][:, 0, :]
        ax_orbit.plot(
            q[:, 0],
            q[:, 1],
            color=COLOURS[m],
            lw=1.8 if m == "reference" else 1.0,
            ls="--" if m == "reference" else "-",
            label=label(m),
            zorder=1 if m == "reference" else 2,
        )
    ax_orbit.plot([0], [0], marker="*", color="k", ms=10, ls="none", label="central mass")
    ax_orbit.set_aspect("equal", adjustable="datalim")
    ax_orbit.set_xlabel("x")
    ax_orbit.set_ylabel("y")
    ax_orbit.set_title("orbit")
    ax_orbit.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    energy_panel(ax_e, rollouts)
    ax_e.set_title("total energy")
    fig.suptitle("One body around a fixed mass (paper Fig. 4)")
    fig.tight_layout()
    save_figure(fig, pdf, png)


def plot_three_body(rollouts: dict[str, dict], pdf: str, png: str | None = None) -> None:
    panels = [m for m in ("direct", "symplectic_converged", "vv_large") if m in rollouts]
    fig = plt.figure(figsize=(4 * len(panels), 7.5))
    grid = fig.add_gridspec(2, len(panels), height_ratios=[1.1, 1])
    ref = rollouts.get("reference")
    for i, m in enumerate(panels):
        ax = fig.add_subplot(grid[0, i])
        q = rollouts[m]["q"]
        for b in range(q.shape[1]):
            if ref is not None:
                ax.plot(ref["q"][:, b, 0], ref["q"][:, b, 1], color="0.75", lw=2.5, zorder=1)
            ax.plot(q[:, b, 0], q[:, b, 1], color=BODY_COLOURS[b % 4], lw=0.5, alpha=0.8, zorder=2)
        finite = np.isfinite(q).all(axis=(1, 2))
        if not finite.all():
            ax.set_title(f"{label(m)}\n(blew up at step {int(np.argmin(finite))})", fontsize=10)
        else:
            ax.set_title(label(m), fontsize=10)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel("x")
        if i == 0:
            ax.set_ylabel("y")
        lim = 1.6 * (np.nanmax(np.abs(ref["q"])) if ref is not None else 1.5)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax_e = fig.add_subplot(grid[1, :])
    energy_panel(ax_e, rollouts)
    ax_e.set_title("total energy (grey in the panels above: the small-step reference)")
    fig.suptitle("Three bodies, figure-eight orbit (paper Fig. 1)")
    fig.tight_layout()
    save_figure(fig, pdf, png)


PLOTTERS = {"kepler": plot_one_body, "three_body": plot_three_body}  # by the system's analysis
