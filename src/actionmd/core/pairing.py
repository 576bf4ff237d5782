"""Pairing of reference trajectories into training sets for the two learned maps.

A trajectory is a sequence of phase-space points x_t = (q_t, p_t) saved every
``dt`` (positions in A or reduced units, momenta in (eV*u)^(1/2) or reduced
units). A pair is (x_t, x_{t+lag}): the model learns the map over the long step
Dt = lag * dt.

* Direct model: input x_t, target x_{t+lag}. Time reversal gives a second pair
  per pair: input (q_{t+lag}, -p_{t+lag}), target (q_t, -p_t).
* Generating-function model: input is the midpoint
  (qbar, pbar) = ((q_t + q_{t+lag}) / 2, (p_t + p_{t+lag}) / 2), targets are the
  increments (dq, dp) = (q_{t+lag} - q_t, p_{t+lag} - p_t). The reversed pair has
  midpoint (qbar, -pbar) and increments (-dq, dp).

Positions must be unwrapped (continuous in time) for periodic systems, so that
q_{t+lag} - q_t is a physical displacement and never a box jump.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pairs:
    """Pairs of states one long step apart: (q0, p0) -> (q1, p1), arrays of shape (n, ...)."""

    q0: np.ndarray
    p0: np.ndarray
    q1: np.ndarray
    p1: np.ndarray

    def __len__(self) -> int:
        return int(self.q0.shape[0])

    def reversed(self) -> Pairs:
        """Time-reversed pairs: (q1, -p1) -> (q0, -p0). Reversing twice is the identity."""
        return Pairs(self.q1, -self.p1, self.q0, -self.p0)

    def concatenate(self, other: Pairs) -> Pairs:
        return Pairs(*(np.concatenate([a, b]) for a, b in zip(self.arrays(), other.arrays(), strict=True)))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.q0, self.p0, self.q1, self.p1

    def midpoint(self) -> tuple[np.ndarray, np.ndarray]:
        """Midpoint (qbar, pbar) of each pair: the generating function's argument."""
        return 0.5 * (self.q0 + self.q1), 0.5 * (self.p0 + self.p1)

    def increments(self) -> tuple[np.ndarray, np.ndarray]:
        """Increments (dq, dp) = (q1 - q0, p1 - p0): the generating-function targets."""
        return self.q1 - self.q0, self.p1 - self.p0


def make_pairs(q: np.ndarray, p: np.ndarray, lag: int, stride: int = 1) -> Pairs:
    """All pairs (x_t, x_{t+lag}) with t = 0, stride, 2 stride, ... along axis 0.

    ``lag`` and ``stride`` are in saved frames. There are
    ``ceil((n_frames - lag) / stride)`` pairs, none if the trajectory is shorter
    than the lag.
    """
    if lag < 1 or stride < 1:
        raise ValueError(f"lag and stride must be >= 1, got lag={lag}, stride={stride}")
    q = np.asarray(q)
    p = np.asarray(p)
    if q.shape != p.shape:
        raise ValueError(f"positions {q.shape} and momenta {p.shape} differ in shape")
    n = q.shape[0] - lag
    if n <= 0:
        empty = q[:0]
        return Pairs(empty, p[:0], empty, p[:0])
    start = np.arange(0, n, stride)
    return Pairs(q[start], p[start], q[start + lag], p[start + lag])


def with_time_reversal(pairs: Pairs) -> Pairs:
    """The pairs followed by their time-reversed copies (twice as many)."""
    return pairs.concatenate(pairs.reversed())


def split_tail(
    q: np.ndarray, p: np.ndarray, validation_fraction: float
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Split one trajectory in time: a training head and a validation tail.

    Each part is paired on its own, so no pair straddles the boundary. With
    several trajectories, split by trajectory instead.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    cut = q.shape[0] - int(round(validation_fraction * q.shape[0]))
    return (q[:cut], p[:cut]), (q[cut:], p[cut:])
