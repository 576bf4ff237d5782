"""Fixed-point solution of the implicit midpoint equation of a generating function.

A type-3 generating function S defines the step x -> x' implicitly through the
midpoint xbar = (x + x') / 2:

    xbar = x + D(xbar) / 2,    D(xbar) = (dS/dpbar, -dS/dqbar),    x' = 2 xbar - x.

The solver starts from a guess of x' (the direct model's prediction), so
xbar_0 = (x + guess) / 2, and iterates with linear mixing beta

    xbar_{k+1} = (1 - beta) xbar_k + beta (x + D(xbar_k) / 2),

either a fixed number K of times (a correction of the direct model; K = 0
returns the guess itself) or until the residual r_k = x + D(xbar_k)/2 - xbar_k
falls below a tolerance, optionally with Anderson acceleration. The code works
on any tensor shapes (few-body batches or atoms x 3) and is differentiable, so
the Jacobian of the converged map can be taken by autograd.

Free-flight preconditioning (converged mode). Whatever S is, its position
increment contains the free flight of the atoms, dS/dpbar = Dt pbar / m + ...,
so a change of pbar by rp moves the midpoint position by (Dt / 2m) rp. Plain
mixing sees that coupling only one iteration later; the preconditioned update
takes it at once,

    qbar += beta (rq + (Dt / 2m) rp),    pbar += beta rp,

which is Newton's step for a free particle (and the map's Jacobian with the
forces left out). What is left for the iteration is the force's response,
of order (omega Dt / 2)^2 for a mode of frequency omega instead of
omega Dt / 2. The fixed point, hence the converged map, is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

Increment = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
PRECONDITIONERS = ("none", "free_flight")


@dataclass(frozen=True)
class SolverSettings:
    """How the midpoint equation is solved.

    ``iterations``: K, or None to converge to ``tolerance`` (max-abs residual, in
    the units of q and p) within ``max_iterations``. ``anderson``: history depth
    of Anderson acceleration in the converged mode (0 = plain linear mixing).
    ``converged_mixing``: beta of the converged solve, linear or Anderson (None: ``mixing``), so
    that it can mix harder than the paper's K iterations. ``preconditioner``: 'free_flight'
    (converged mode; the solver is then given Dt / 2m, see the module's docstring) or 'none'.
    A fixed K always mixes plainly at ``mixing``, as in the paper.
    """

    iterations: int | None = None
    mixing: float = 0.3
    tolerance: float = 1e-10
    max_iterations: int = 1000
    anderson: int = 0
    preconditioner: str = "none"
    converged_mixing: float | None = None

    @classmethod
    def from_config(cls, solver: dict, iterations: int | None) -> SolverSettings:
        """Settings from config.yaml's ``solver`` block, with K (None: converge to tolerance)."""
        keys = ("mixing", "tolerance", "max_iterations", "anderson", "preconditioner", "converged_mixing")
        return cls(iterations=iterations, **{k: solver[k] for k in keys if k in solver})

    @staticmethod
    def keys_used(solver: dict, iterations: int | None) -> dict:
        """The entries of a ``solver`` config block that a run at K = ``iterations`` depends on.

        A fixed K mixes plainly at ``mixing``: tolerance, Anderson and the preconditioner belong
        to the converged solve, so changing them does not rerun the K rollouts.
        """
        return dict(solver) if iterations is None else {"mixing": solver["mixing"]}

    def __post_init__(self) -> None:
        if self.iterations is not None and self.iterations < 0:
            raise ValueError(f"iterations must be >= 0 or None, got {self.iterations}")
        for name in ("mixing", "converged_mixing"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if self.tolerance <= 0 or self.max_iterations < 1 or self.anderson < 0:
            raise ValueError("tolerance and max_iterations must be positive, anderson >= 0")
        if self.preconditioner not in PRECONDITIONERS:
            raise ValueError(f"preconditioner must be one of {PRECONDITIONERS}, got {self.preconditioner!r}")

    @property
    def beta(self) -> float:
        """The mixing of this solve: ``converged_mixing`` when converging (if set), else ``mixing``."""
        if self.iterations is None and self.converged_mixing is not None:
            return self.converged_mixing
        return self.mixing

    @property
    def free_flight(self) -> bool:
        """Whether the solve uses the free-flight preconditioner (converged mode only)."""
        return self.iterations is None and self.preconditioner == "free_flight"


@dataclass
class MidpointSolution:
    """The new state and how the solve went (residual max-abs norm of each iteration)."""

    q: torch.Tensor
    p: torch.Tensor
    residuals: list[float] = field(default_factory=list)
    converged: bool = False

    @property
    def iterations(self) -> int:
        return len(self.residuals)


def solve_midpoint(
    q: torch.Tensor,
    p: torch.Tensor,
    increment: Increment,
    q_guess: torch.Tensor,
    p_guess: torch.Tensor,
    settings: SolverSettings,
    half_step_over_mass: torch.Tensor | float | None = None,
) -> MidpointSolution:
    """One step of the map generated by S, from (q, p) and a guess of (q', p').

    ``half_step_over_mass``: Dt / 2m, broadcastable to q (A per (eV*u)^(1/2) for atoms), needed
    by the free-flight preconditioner.
    """
    if settings.free_flight and half_step_over_mass is None:
        raise ValueError("the free-flight preconditioner needs Dt / 2m (half_step_over_mass)")
    if settings.iterations == 0:
        return MidpointSolution(q_guess, p_guess, [], False)
    qbar = 0.5 * (q + q_guess)
    pbar = 0.5 * (p + p_guess)
    n_max = settings.iterations if settings.iterations is not None else settings.max_iterations
    use_anderson = settings.iterations is None and settings.anderson > 0
    residuals: list[float] = []
    history: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (z_k, r_k, P r_k) flattened
    converged = False
    for _ in range(n_max):
        dq, dp = increment(qbar, pbar)
        rq = q + 0.5 * dq - qbar
        rp = p + 0.5 * dp - pbar
        norm = float(torch.maximum(rq.detach().abs().max(), rp.detach().abs().max()))
        residuals.append(norm)
        if settings.free_flight:  # step = P r (module docstring)
            sq, sp = rq + half_step_over_mass * rp, rp
        else:
            sq, sp = rq, rp
        if use_anderson:
            qbar, pbar = _anderson_update(qbar, pbar, rq, rp, sq, sp, history, settings)
        else:
            qbar = qbar + settings.beta * sq
            pbar = pbar + settings.beta * sp
        if settings.iterations is None and norm < settings.tolerance:
            converged = True
            break
        if not torch.isfinite(torch.tensor(norm)):
            break
    return MidpointSolution(2.0 * qbar - q, 2.0 * pbar - p, residuals, converged)


def _anderson_update(
    qbar: torch.Tensor,
    pbar: torch.Tensor,
    rq: torch.Tensor,
    rp: torch.Tensor,
    sq: torch.Tensor,
    sp: torch.Tensor,
    history: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    settings: SolverSettings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anderson (type II) mixing over the last ``settings.anderson`` iterates.

    gamma minimises |r - dR gamma| over the differences dR of the last residuals; the
    new iterate is z + beta s - (dZ + beta dS) gamma, with s = P r the (preconditioned)
    step of the residual r (s = r without a preconditioner).
    """
    z = torch.cat([qbar.reshape(-1), pbar.reshape(-1)])
    r = torch.cat([rq.reshape(-1), rp.reshape(-1)])
    step = torch.cat([sq.reshape(-1), sp.reshape(-1)])
    history.append((z, r, step))
    del history[: -(settings.anderson + 1)]
    beta = settings.beta
    z_new = z + beta * step
    if len(history) > 1:
        pairs = list(zip(history[:-1], history[1:], strict=False))
        dr = [b[1] - a[1] for a, b in pairs]
        gamma = _least_squares(dr, r)
        for (a, b), g in zip(pairs, gamma, strict=True):
            if g != 0.0:
                z_new = z_new - g * ((b[0] - a[0]) + beta * (b[2] - a[2]))
    n = qbar.numel()
    return z_new[:n].reshape(qbar.shape), z_new[n:].reshape(pbar.shape)


def _least_squares(columns: list[torch.Tensor], r: torch.Tensor, rcond: float = 1e-12) -> list[float]:
    """Coefficients gamma minimising |r - sum_j gamma_j columns_j| (a handful of long columns).

    Modified Gram-Schmidt QR in float64 with elementwise products and sums only, so that
    the result depends on the numbers and the thread count, never on the memory layout
    or the BLAS/LAPACK code path a process happens to take (LAPACK's least squares made
    two runs of one rollout differ in the last digits). Columns whose remaining norm is
    below ``rcond`` times their own are dropped (gamma_j = 0): a rank-deficient history
    gives a minimum-norm-like, finite answer.
    """
    m = len(columns)
    q_cols: list[torch.Tensor | None] = []
    rr = [[0.0] * m for _ in range(m)]
    for j, col in enumerate(columns):
        v = col.to(torch.float64)
        scale = float(torch.sqrt(torch.sum(v * v)))
        for i, qi in enumerate(q_cols):
            if qi is None:
                continue
            rr[i][j] = float(torch.sum(qi * v))
            v = v - rr[i][j] * qi
        norm = float(torch.sqrt(torch.sum(v * v)))
        if scale == 0.0 or not norm > rcond * scale:
            q_cols.append(None)
            continue
        rr[j][j] = norm
        q_cols.append(v / norm)
    r64 = r.to(torch.float64)
    rhs = [0.0 if qi is None else float(torch.sum(qi * r64)) for qi in q_cols]
    gamma = [0.0] * m
    for j in reversed(range(m)):
        if q_cols[j] is None:
            continue
        acc = rhs[j] - sum(rr[j][k] * gamma[k] for k in range(j + 1, m))
        gamma[j] = acc / rr[j][j]
    return gamma


def solver_record(histories: list[list[float]], steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From the residual history of each step: the NaN-padded (steps, max iterations) array,
    the iteration count of each step and its final residual (steps not taken count 0)."""
    history = _pad(histories, steps)
    counts = np.zeros(steps, dtype=np.int64)
    counts[: len(histories)] = [len(h) for h in histories]
    return history, counts, _last_residual(history, counts)


def _pad(histories: list[list[float]], steps: int) -> np.ndarray:
    """Residual histories of every step as a (steps, max iterations) array, NaN-padded."""
    width = max((len(h) for h in histories), default=0)
    out = np.full((steps, width), np.nan)
    for i, h in enumerate(histories):
        out[i, : len(h)] = h
    return out


def _last_residual(history: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Final residual of each step (NaN for steps without iterations)."""
    out = np.full(len(history), np.nan)
    has = counts > 0
    out[has] = history[has, counts[has] - 1]
    return out
