"""Multi-layer perceptrons for the few-body experiments (paper SI I.1.1).

Both models see the flattened phase-space point of all bodies. Inputs are
divided by one position scale and one momentum scale (scalars, so that a rigid
rotation of the input commutes with the normalisation).

* :class:`DirectMLP` predicts the state one long step ahead,
  x' = x + scale * MLP(x), sizes [2n, hidden..., 2n] (n = N * d).
* :class:`GeneratingFunctionMLP` is the scalar S(qbar, pbar), sizes
  [2n, hidden..., 1], symmetrised in the momenta so that the map it generates
  is time-reversible; its gradients give the increments of the step. It can
  carry a known leading part, :class:`ActionPrior` (S = S_0 + network, S_0 of
  order Dt H), so that the network learns only what S_0 misses.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def build_mlp(n_in: int, hidden: Sequence[int], n_out: int) -> nn.Sequential:
    """Linear layers of the given widths with SiLU activations in between."""
    widths = [n_in, *hidden, n_out]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


FEATURES = ("cartesian", "invariants", "relative_invariants")


def identical_body_permutations(masses: Sequence[float]) -> list[tuple[int, ...]]:
    """Every permutation of the bodies that maps each body onto one of equal mass (identity first).

    The Hamiltonian of bodies interacting by pair forces is invariant under these
    relabellings, so its flow, and the generating function of the flow's long step, are too.
    """
    n = len(masses)
    return [perm for perm in itertools.permutations(range(n)) if all(masses[perm[i]] == masses[i] for i in range(n))]


class _PhaseSpaceMLP(nn.Module):
    """Shared part: an MLP over normalised (q, p) with batch shape (B, N, d).

    ``features``: what the MLP sees.

    * ``cartesian``: the flattened coordinates (the SI's models).
    * ``invariants``: every dot product among the positions and momenta of the bodies and the
      inverse distances from the origin, in units of the scales; a scalar of them is invariant
      under rotations and reflections about the origin (a fixed central mass).
    * ``relative_invariants``: the same with the pair separations q_i - q_j (i < j) in place of
      the positions, so translations change nothing either (free bodies).

    A generating function of invariant features generates a map that commutes with these
    symmetries; the midpoint map then conserves their momenta exactly (angular momentum, and
    with relative invariants the total momentum: -sum_i dS/dq_i = 0).
    """

    def __init__(
        self,
        n_bodies: int,
        dim: int,
        hidden: Sequence[int],
        n_out: int,
        q_scale: float,
        p_scale: float,
        features: str = "cartesian",
    ) -> None:
        super().__init__()
        if features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
        self.n_bodies, self.dim, self.hidden, self.feature_kind = n_bodies, dim, list(hidden), features
        self.n_dof = n_bodies * dim
        if features == "cartesian":
            n_in = 2 * self.n_dof
        else:
            i, j = torch.triu_indices(n_bodies, n_bodies, offset=1)
            self.register_buffer("pair_i", i, persistent=False)
            self.register_buffer("pair_j", j, persistent=False)
            n_pos = len(i) if features == "relative_invariants" else n_bodies
            n_vec = n_pos + n_bodies
            n_in = n_vec * (n_vec + 1) // 2 + n_pos
            self.register_buffer("gram_index", torch.triu_indices(n_vec, n_vec), persistent=False)
        self.net = build_mlp(n_in, hidden, n_out)
        self.register_buffer("q_scale", torch.tensor(float(q_scale)))
        self.register_buffer("p_scale", torch.tensor(float(p_scale)))

    def features(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        b = q.shape[0]
        if self.feature_kind == "cartesian":
            return torch.cat([q.reshape(b, -1) / self.q_scale, p.reshape(b, -1) / self.p_scale], dim=1)
        pos = q[:, self.pair_i] - q[:, self.pair_j] if self.feature_kind == "relative_invariants" else q
        vectors = torch.cat([pos / self.q_scale, p / self.p_scale], dim=1)
        gram = vectors @ vectors.transpose(1, 2)
        inverse = 1.0 / torch.linalg.vector_norm(vectors[:, : pos.shape[1]], dim=-1)
        return torch.cat([gram[:, self.gram_index[0], self.gram_index[1]], inverse], dim=1)


class DirectMLP(_PhaseSpaceMLP):
    """Direct long-step predictor F: (q, p) -> (q', p'); preserves no structure."""

    def __init__(
        self,
        n_bodies: int,
        dim: int,
        hidden: Sequence[int] = (128, 128),
        q_scale: float = 1.0,
        p_scale: float = 1.0,
        dq_scale: float = 1.0,
        dp_scale: float = 1.0,
    ) -> None:
        super().__init__(n_bodies, dim, hidden, 2 * n_bodies * dim, q_scale, p_scale)
        self.register_buffer("dq_scale", torch.tensor(float(dq_scale)))
        self.register_buffer("dp_scale", torch.tensor(float(dp_scale)))

    def forward(self, q: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.net(self.features(q, p))
        dq, dp = y[:, : self.n_dof], y[:, self.n_dof :]
        return q + self.dq_scale * dq.reshape(q.shape), p + self.dp_scale * dp.reshape(p.shape)


class ActionPrior(nn.Module):
    """A known leading part S_0(qbar, pbar) of the type-3 generating function, to learn S - S_0.

    To leading order in the step, S = Dt H(qbar, pbar). The rules (all even in
    pbar, so a map generated by S_0 + an even network stays time-reversible):

    * ``free_flight``: S_0 = Dt T(pbar); q' = q + Dt pbar / m, p' = p.
    * ``midpoint``: S_0 = Dt H(qbar, pbar), the implicit midpoint rule
      (p' = p - Dt dV/dq(qbar)). On a curved orbit the chord's midpoint cuts
      inside a close encounter, where this force is far too large.
    * ``trapezoid``: S_0 = Dt [T(pbar) + (V(q-) + V(q+)) / 2] with the free-flight
      end points q-+ = qbar -+ Dt pbar / 2m: the potential is taken at (estimates
      of) the step's ends, as velocity Verlet does.

    H is the gravitational Hamiltonian of
    :class:`actionmd.fewbody.nbody.GravitationalSystem` (reduced units) in torch,
    so that its gradients flow; pairs i < j only, so no zero distance enters a
    square root.
    """

    RULES = ("free_flight", "midpoint", "trapezoid")

    def __init__(
        self,
        dt: float,
        masses: Sequence[float],
        G: float = 1.0,
        central_mass: float = 0.0,
        rule: str = "midpoint",
    ) -> None:
        super().__init__()
        if rule not in self.RULES:
            raise ValueError(f"prior rule must be one of {self.RULES}, got {rule!r}")
        # plain floats, not buffers: exact in a float64 rollout of a model trained in float32
        self.rule, self.dt, self.G, self.central_mass = rule, float(dt), float(G), float(central_mass)
        self.masses = tuple(float(x) for x in masses)
        i, j = torch.triu_indices(len(self.masses), len(self.masses), offset=1)
        self.register_buffer("pair_i", i, persistent=False)
        self.register_buffer("pair_j", j, persistent=False)

    def potential(self, q: torch.Tensor) -> torch.Tensor:
        """V(q) for a batch (B, N, d), shape (B,)."""
        m = torch.tensor(self.masses, dtype=q.dtype, device=q.device)
        r = torch.linalg.vector_norm(q[:, self.pair_i] - q[:, self.pair_j], dim=-1)
        v = -self.G * torch.sum(m[self.pair_i] * m[self.pair_j] / r, dim=-1)
        if self.central_mass > 0:
            v = v - self.G * self.central_mass * torch.sum(m / torch.linalg.vector_norm(q, dim=-1), dim=-1)
        return v

    def forward(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """S_0(q, p) for a batch (B, N, d), shape (B,)."""
        m = torch.tensor(self.masses, dtype=q.dtype, device=q.device)[:, None]
        s = 0.5 * torch.sum(p.pow(2) / m, dim=(-1, -2))
        if self.rule == "midpoint":
            s = s + self.potential(q)
        elif self.rule == "trapezoid":
            half = 0.5 * self.dt * p / m
            s = s + 0.5 * (self.potential(q - half) + self.potential(q + half))
        return self.dt * s


class GeneratingFunctionMLP(_PhaseSpaceMLP):
    """Type-3 generating function S(qbar, pbar) of a symplectic long-step map.

    The map is q' = q + dS/dpbar, p' = p - dS/dqbar at the midpoint. With
    ``symmetric=True`` the network is S(q, p) = [f(q, p) + f(q, -p)] / 2, even in
    p for any weights, which makes the map time-reversible. ``action_scale``
    sets the units of S (energy x time). With ``prior`` (the keyword arguments
    of :class:`ActionPrior`) S = S_0 + network: the network learns what the
    prior misses; the prior is even in p, so the map stays reversible.
    """

    def __init__(
        self,
        n_bodies: int,
        dim: int,
        hidden: Sequence[int] = (128, 128),
        q_scale: float = 1.0,
        p_scale: float = 1.0,
        action_scale: float = 1.0,
        symmetric: bool = True,
        prior: dict[str, Any] | None = None,
        features: str = "cartesian",
        permutations: Sequence[Sequence[int]] | None = None,
    ) -> None:
        super().__init__(n_bodies, dim, hidden, 1, q_scale, p_scale, features)
        self.symmetric = symmetric
        self.register_buffer("action_scale", torch.tensor(float(action_scale)))
        self.prior = ActionPrior(**prior) if prior else None
        perms = [tuple(int(i) for i in perm) for perm in (permutations or [tuple(range(n_bodies))])]
        if any(sorted(perm) != list(range(n_bodies)) for perm in perms):
            raise ValueError(f"permutations must reorder range({n_bodies}), got {perms}")
        self.permutations = perms
        self.average_permutations = True
        self.register_buffer("perm_index", torch.tensor(perms, dtype=torch.long), persistent=False)

    @contextmanager
    def one_labelling(self) -> Iterator[None]:
        """Within the block S is the network alone, without the average over relabellings."""
        before, self.average_permutations = self.average_permutations, False
        try:
            yield
        finally:
            self.average_permutations = before

    def forward(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """S(q, p) for a batch, shape (B,): the network averaged over the relabellings and,
        with ``symmetric``, over p -> -p (one pass of the network over all copies)."""
        b, k = q.shape[0], len(self.permutations)
        if k > 1 and self.average_permutations:  # (k * B, N, d): copy j holds every state relabelled by permutation j
            q_all = q[:, self.perm_index].transpose(0, 1).reshape(k * b, *q.shape[1:])
            p_all = p[:, self.perm_index].transpose(0, 1).reshape(k * b, *p.shape[1:])
        else:
            q_all, p_all = q, p
        if self.symmetric:
            q_all, p_all = torch.cat([q_all, q_all]), torch.cat([p_all, -p_all])
        copies = self.net(self.features(q_all, p_all))[:, 0]
        s = self.action_scale * copies.reshape(-1, b).mean(dim=0)
        return s if self.prior is None else s + self.prior(q, p)

    def increment(
        self, qbar: torch.Tensor, pbar: torch.Tensor, create_graph: bool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(dq, dp) = (dS/dpbar, -dS/dqbar) at the midpoint.

        The result is itself differentiable (w.r.t. weights and inputs) with
        ``create_graph=True``, as training needs; by default it is when the
        inputs are already part of an autograd graph (e.g. a Jacobian).
        """
        if create_graph is None:
            create_graph = torch.is_grad_enabled() and (qbar.requires_grad or pbar.requires_grad)
        with torch.enable_grad():
            if not qbar.requires_grad:
                qbar = qbar.detach().requires_grad_(True)
            if not pbar.requires_grad:
                pbar = pbar.detach().requires_grad_(True)
            s = self(qbar, pbar).sum()
            ds_dq, ds_dp = torch.autograd.grad(s, (qbar, pbar), create_graph=create_graph)
        return ds_dp, -ds_dq
