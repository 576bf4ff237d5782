"""What every figure shares: matplotlib without a display, method labels and colours, saving.

Methods are labelled and coloured alike in every figure: the reference, the direct
model, velocity Verlet at the large step, and the symplectic map at each K on the
viridis scale (converged last).
"""

from __future__ import annotations

import os
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from actionmd.io import atomic_path  # noqa: E402
from actionmd.naming import parse_method  # noqa: E402

LABELS = {"reference": "reference (small-step VV)", "direct": "direct", "vv_large": "VV at the large step"}
COLOURS = {"reference": "0.2", "direct": "tab:red", "vv_large": "tab:orange", "symplectic_converged": "tab:blue"}


def label(method: str, names: dict[str, str] = LABELS) -> str:
    """Legend text of a rollout method; ``names`` for the methods that are not the symplectic map."""
    _, k = parse_method(method)
    if method in names:
        return names[method]
    return "symplectic, converged" if k is None else f"symplectic, K = {k}"


def k_colour(method: str, all_k: list[int]) -> str:
    """The colour of a method; the symplectic map's by its place among the iteration counts ``all_k``."""
    if method in COLOURS:
        return COLOURS[method]
    _, k = parse_method(method)
    frac = all_k.index(k) / max(len(all_k) - 1, 1) if k in all_k else 0.5
    return matplotlib.colormaps["viridis"](0.15 + 0.7 * frac)


def save_figure(fig, pdf: str | os.PathLike, png: str | os.PathLike | None) -> None:
    """Write ``fig`` to ``pdf`` (and ``png`` if given), each atomically, and close it."""
    for path, fmt in ((pdf, "pdf"), (png, "png")):
        if path is None:
            continue
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
    plt.close(fig)


def method_colors(methods: list[str]) -> dict[str, Any]:
    """House colours: reference black, direct red, symplectic K ascending along viridis."""
    ks = [m for m in methods if m.startswith("symplectic")]
    cmap = plt.get_cmap("viridis")
    colors: dict[str, Any] = {"reference": "black", "direct": "tab:red"}
    for i, m in enumerate(ks):
        colors[m] = cmap(0.15 + 0.7 * i / max(len(ks) - 1, 1))
    return colors


def line_style(method: str, colors: dict[str, Any]) -> dict[str, Any]:
    """Line keywords of a method: its colour (gray if unknown), the reference dashed and on top."""
    return {
        "color": colors.get(method, "gray"),
        "lw": 1.6 if method in ("reference", "direct") else 1.2,
        "ls": "--" if method == "reference" else "-",
        "zorder": 3 if method == "reference" else 2,
    }
