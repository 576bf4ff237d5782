"""Structural and dynamical observables of atomistic trajectories, computed with freud.

* Radial distribution function g_AB(r) between two sets of atoms (e.g. O-O in
  water), averaged over frames, with its first peak (located between bins) and
  the running coordination number.
* Mean-square displacement of a set of atoms as a function of the time lag
  (all time origins, FFT "window" algorithm), from unwrapped positions, and
  the self-diffusion coefficient D = slope / 6 of its linear regime.

Units: A, fs for inputs; lags in ps, MSD in A^2, D in A^2/ps (1 A^2/ps =
1e-8 m^2/s). The cell is orthorhombic, (3,) edge lengths or a (3, 3) matrix.
freud (https://freud.readthedocs.io) does the pair and time-correlation sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import freud
import numpy as np


def drift(t: np.ndarray, y: np.ndarray) -> float:
    """Slope dy/dt of the least-squares line through the finite points (NaN with fewer than two).

    The drift of a conserved quantity over a run: a run that blew up counts up to its last
    finite frame.
    """
    t, y = np.asarray(t, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(y) & np.isfinite(t)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(t[ok], y[ok], 1)[0])


def _box(cell: np.ndarray):
    cell = np.asarray(cell, dtype=float)
    lengths = np.diagonal(cell) if cell.ndim == 2 else cell
    if cell.ndim == 2 and np.count_nonzero(cell - np.diag(lengths)):
        raise ValueError("only orthorhombic cells are supported")
    return freud.box.Box(Lx=float(lengths[0]), Ly=float(lengths[1]), Lz=float(lengths[2])), lengths


def _centred(positions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Positions wrapped into freud's box convention [-L/2, L/2)."""
    return (positions - lengths * np.floor(positions / lengths) - 0.5 * lengths).astype(np.float32)


@dataclass(frozen=True)
class RDF:
    """g(r) at bin centres ``r`` (A) and the coordination number n(r) of B around A."""

    r: np.ndarray
    g: np.ndarray
    coordination: np.ndarray

    def first_peak(self, r_min: float = 0.0) -> tuple[float, float]:
        """Position (A) and height of the first maximum of g beyond ``r_min`` (before g falls below 1 again).

        The highest bin and its two neighbours fix a parabola whose vertex is the peak, to a
        fraction of a bin: the bin centre alone is off by up to half a bin (0.025 A in the water
        demo, whose bins of 0.051 A are as wide as the tolerance its peak is compared with).
        A bin with no rise on one side (a delta-like peak) is taken as it is.
        """
        mask = self.r >= r_min
        r, g = self.r[mask], self.g[mask]
        above = np.flatnonzero(g > 1.0)
        if not len(above):
            return float("nan"), float("nan")
        start = above[0]
        after = np.flatnonzero(g[start:] < 1.0)
        stop = start + (after[0] if len(after) else len(g) - start)
        i = start + int(np.argmax(g[start:stop]))
        if 0 < i < len(g) - 1:
            left, top, right = float(g[i - 1]), float(g[i]), float(g[i + 1])
            curvature = left - 2.0 * top + right
            if curvature < 0.0:
                shift = 0.5 * (left - right) / curvature  # in bins, |shift| <= 1/2 as g[i] is the highest
                return float(r[i] + shift * (r[i + 1] - r[i])), top - 0.25 * (left - right) * shift
        return float(r[i]), float(g[i])


def radial_distribution(
    positions: np.ndarray,
    cell: np.ndarray,
    a: np.ndarray,
    b: np.ndarray | None = None,
    r_max: float = 8.0,
    bins: int = 160,
) -> RDF:
    """g_AB(r) averaged over frames. ``positions`` (F, N, 3) or (N, 3) in A; ``a``, ``b``: atom indices.

    With ``b`` None (or equal to ``a``) it is the A-A function; an atom is never
    its own neighbour. ``r_max`` must stay below half the shortest cell edge.
    """
    positions = np.asarray(positions, dtype=float)
    if positions.ndim == 2:
        positions = positions[None]
    box, lengths = _box(cell)
    if r_max >= 0.5 * lengths.min():
        raise ValueError(f"r_max = {r_max} A must be below half the shortest cell edge ({0.5 * lengths.min():.3f} A)")
    a = np.asarray(a)
    same = b is None or np.array_equal(np.asarray(b), a)
    b = a if b is None else np.asarray(b)
    rdf = freud.density.RDF(bins=bins, r_max=r_max)
    for frame in positions:
        wrapped = _centred(frame, lengths)
        if same:
            rdf.compute(system=(box, wrapped[a]), reset=False)
        else:
            rdf.compute(system=(box, wrapped[b]), query_points=wrapped[a], reset=False)
    return RDF(np.asarray(rdf.bin_centers), np.asarray(rdf.rdf), np.asarray(rdf.n_r))


@dataclass(frozen=True)
class MSD:
    """Mean-square displacement ``msd`` (A^2) at time lags ``lag`` (ps)."""

    lag: np.ndarray
    msd: np.ndarray

    def diffusion_coefficient(self, fit_from: float, fit_to: float) -> float:
        """D (A^2/ps) from a linear fit MSD = 6 D t + c over lags in [fit_from, fit_to] ps."""
        mask = (self.lag >= fit_from) & (self.lag <= fit_to) & np.isfinite(self.msd)
        if mask.sum() < 2:
            raise ValueError(f"fewer than two lags in [{fit_from}, {fit_to}] ps to fit the MSD")
        return float(np.polyfit(self.lag[mask], self.msd[mask], 1)[0] / 6.0)


def mean_square_displacement(positions: np.ndarray, dt_fs: float, atoms: np.ndarray | None = None) -> MSD:
    """MSD over all time origins of unwrapped ``positions`` (F, N, 3) A saved every ``dt_fs``, atoms ``atoms``."""
    positions = np.asarray(positions, dtype=float)
    if atoms is not None:
        positions = positions[:, np.asarray(atoms)]
    # unwrapped positions and no box: freud takes the displacements as they are; positions
    # relative to the first frame keep the FFT's round-off at the scale of the displacements
    msd = freud.msd.MSD(mode="window")
    msd.compute(positions - positions[0])
    values = np.asarray(msd.msd, dtype=float)
    return MSD(dt_fs * np.arange(len(values)) / 1000.0, values)
