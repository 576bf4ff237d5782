"""Multi-layer perceptrons for the few-body experiments (paper SI I.1.1).

Both models see the flattened phase-space point of all bodies. Inputs are
divided by one position scale and one momentum scale (scalars, so that a rigid
rotation of the input commutes with the normalisation).

* :class:`DirectMLP` predicts the state one long step ahead,
  x' = x + scale * MLP(x), sizes [2n, hidden..., 2n] (n = N * d).
* :class:`GeneratingFunctionMLP` is the scalar S(qbar, pbar), sizes
  [2n, hidden..., 1], symmetrised in the momenta so that the map it generates
  is time-reversible; its gradients give the increments of the step.
"""

from __future__ import annotations

from collections.abc import Sequence

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


class _PhaseSpaceMLP(nn.Module):
    """Shared part: an MLP over normalised (q, p) with batch shape (B, N, d)."""

    def __init__(
        self,
        n_bodies: int,
        dim: int,
        hidden: Sequence[int],
        n_out: int,
        q_scale: float,
        p_scale: float,
    ) -> None:
        super().__init__()
        self.n_bodies, self.dim, self.hidden = n_bodies, dim, list(hidden)
        self.n_dof = n_bodies * dim
        self.net = build_mlp(2 * self.n_dof, hidden, n_out)
        self.register_buffer("q_scale", torch.tensor(float(q_scale)))
        self.register_buffer("p_scale", torch.tensor(float(p_scale)))

    def features(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        b = q.shape[0]
        return torch.cat([q.reshape(b, -1) / self.q_scale, p.reshape(b, -1) / self.p_scale], dim=1)


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


class GeneratingFunctionMLP(_PhaseSpaceMLP):
    """Type-3 generating function S(qbar, pbar) of a symplectic long-step map.

    The map is q' = q + dS/dpbar, p' = p - dS/dqbar at the midpoint. With
    ``symmetric=True`` the network is S(q, p) = [f(q, p) + f(q, -p)] / 2, even in
    p for any weights, which makes the map time-reversible. ``action_scale``
    sets the units of S (energy x time).
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
    ) -> None:
        super().__init__(n_bodies, dim, hidden, 1, q_scale, p_scale)
        self.symmetric = symmetric
        self.register_buffer("action_scale", torch.tensor(float(action_scale)))

    def forward(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """S(q, p) for a batch, shape (B,)."""
        if not self.symmetric:
            return self.action_scale * self.net(self.features(q, p))[:, 0]
        both = self.net(self.features(torch.cat([q, q]), torch.cat([p, -p])))[:, 0]
        return 0.5 * self.action_scale * (both[: q.shape[0]] + both[q.shape[0] :])

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
