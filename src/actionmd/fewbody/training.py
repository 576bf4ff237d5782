"""Training of the few-body direct and generating-function MLPs (paper SI I.3.1).

Adam with a step learning-rate schedule (factor ``lr_decay`` every
``lr_decay_steps`` optimiser steps), mini-batches drawn in a seeded random
order, and a fresh random rotation of every sample at every step.

* ``direct``: input x = (q, p), target x' one long step later; loss is the
  mean squared error of (q' - q) and (p' - p) in units of their own rms.
* ``symplectic``: input the midpoint (qbar, pbar), targets the increments
  (dq, dp) = (dS/dpbar, -dS/dqbar). Both targets are derivatives of one S, so
  the loss measures them in one shared unit (the rms of all increments), as
  in the SI; with ``balance_losses`` each in its own rms instead, so that the
  position increments are learned as well as the momentum increments when the
  two differ in size (the small figure eight: rms dq 0.037, dp 0.64).
  With ``prior`` (a rule of :class:`ActionPrior`) S = S_0 + network:
  the loss is unchanged (total increments against the data) but its units,
  and the network's scale, are those of what the prior misses.
  With ``body_permutations`` the saved S is the mean of the network over the
  relabellings of bodies of equal mass (:func:`identical_body_permutations`), so
  the map commutes with exchanging identical bodies for any weights, as the exact
  flow does. The network is trained alone (the optimiser steps see one labelling,
  as without the option: the average would cost 4x per step for three bodies)
  and the validation loss is that of the average, the S the rollouts use. The
  exact S is invariant, so the average is the network's error projected onto
  invariant functions: never larger in a norm over relabelling-symmetric states
  (measured on the small figure eight: validation loss 5.6e-7 -> 3.1e-7).

Training is deterministic on CPU for a given seed, and resumable: after every
epoch a checkpoint (weights, optimiser, scheduler, history) is written
atomically and a rerun with the same settings continues from it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from actionmd.core.augmentation import random_rotations, rotate
from actionmd.core.device import pick_device
from actionmd.fewbody.mlp import ActionPrior, identical_body_permutations
from actionmd.fewbody.model_file import KINDS, MODEL_FORMAT, build_model
from actionmd.io import atomic_path
from actionmd.io.checkpoint import fingerprint

log = logging.getLogger(__name__)

PRIORS = ("none", *ActionPrior.RULES)


@dataclass(frozen=True)
class TrainingSettings:
    """Hyperparameters; defaults are the paper's (SI I.3.1)."""

    epochs: int = 20
    batch_size: int = 8
    learning_rate: float = 1e-3
    lr_decay: float = 0.7
    lr_decay_steps: int = 10000
    hidden: tuple[int, ...] = (128, 128)
    rotations: bool = True
    balance_losses: bool = False
    prior: str = "none"
    features: str = "cartesian"
    body_permutations: bool = False
    seed: int = 0
    device: str = "auto"
    threads: int = 1

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingSettings:
        d = dict(d)
        if "hidden" in d:
            d["hidden"] = tuple(int(h) for h in d["hidden"])
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}")
        if d.get("features", "cartesian") not in ("cartesian", "invariants"):
            raise ValueError(f"training.features must be cartesian or invariants, got {d['features']!r}")
        if d.get("prior", "none") not in PRIORS:
            raise ValueError(f"training.prior must be one of {PRIORS}, got {d['prior']!r}")
        return cls(**d)

    def fingerprint(self, extra: dict[str, Any]) -> str:
        """Hash of what determines the result (device and threads excluded)."""
        d = asdict(self)
        d.pop("device")
        d.pop("threads")
        for key, default in (("prior", "none"), ("features", "cartesian"), ("body_permutations", False)):
            if d[key] == default:  # checkpoints from before the option resume
                d.pop(key)
        d.update(extra)
        return fingerprint(d, length=16)


def _rms(*arrays: np.ndarray) -> float:
    x = np.concatenate([np.ravel(a) for a in arrays])
    value = float(np.sqrt(np.mean(x**2)))
    return value if value > 0 else 1.0


@dataclass
class FewBodyData:
    """Model-ready tensors: inputs (q, p) and targets (a, b), each (n, N, d)."""

    q: torch.Tensor
    p: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor

    def __len__(self) -> int:
        return int(self.q.shape[0])


def residual_targets(data: FewBodyData, prior: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """The symplectic targets (dq, dp) less the prior's increments at the same midpoints (float64)."""
    a, b = data.a.double(), data.b.double()
    if prior:
        model = ActionPrior(**prior).double()
        q = data.q.double().requires_grad_(True)
        p = data.p.double().requires_grad_(True)
        ds_dq, ds_dp = torch.autograd.grad(model(q, p).sum(), (q, p), allow_unused=True)
        a = a - ds_dp
        if ds_dq is not None:  # None: a free-flight prior, no force
            b = b + ds_dq
    return a.detach().numpy(), b.detach().numpy()


def model_scales(
    kind: str, data: FewBodyData, increments: tuple[np.ndarray, np.ndarray] | None = None
) -> dict[str, float]:
    """Normalisation from the training data (scalars, so rotations commute with it).

    ``increments``: the symplectic targets the network learns (:func:`residual_targets`);
    by default the data's own.
    """
    q = data.q.numpy()
    p = data.p.numpy()
    scales = {"q_scale": _rms(q), "p_scale": _rms(p)}
    if kind == "direct":
        scales["dq_scale"] = _rms(data.a.numpy() - q)
        scales["dp_scale"] = _rms(data.b.numpy() - p)
    else:
        if increments is None:
            increments = residual_targets(data, None)
        dq, dp = (_rms(t) for t in increments)
        # dS/dp ~ action_scale / p_scale should match dq, dS/dq ~ action_scale / q_scale match dp
        scales["action_scale"] = float(np.sqrt(dq * scales["p_scale"] * dp * scales["q_scale"]))
    return scales


@dataclass
class Trainer:
    """One model's training run; see the module docstring."""

    kind: str
    settings: TrainingSettings
    train: FewBodyData
    valid: FewBodyData
    checkpoint: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    prior: dict[str, Any] | None = None
    translation_invariant: bool = True
    masses: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"model kind must be one of {KINDS}, got {self.kind!r}")
        if len(self.train) == 0:
            raise ValueError("the training set is empty: lengthen the reference run or shorten the lag")
        if self.kind == "direct" or self.settings.prior == "none":
            self.prior = None
        elif not self.prior:
            raise ValueError(f"training.prior = {self.settings.prior!r} needs the prior's parameters")
        self.device = pick_device(self.settings.device)
        torch.manual_seed(self.settings.seed)
        _, n_bodies, dim = self.train.q.shape
        # what the network learns: computed once (an autograd pass over the data with a prior)
        increments = residual_targets(self.train, self.prior) if self.kind == "symplectic" else None
        self.scales = model_scales(self.kind, self.train, increments)
        self.feature_kind = self.settings.features
        if self.kind == "direct":
            self.feature_kind = "cartesian"
        elif self.feature_kind == "invariants" and self.translation_invariant:
            self.feature_kind = "relative_invariants"
        self.permutations = None
        if self.kind == "symplectic" and self.settings.body_permutations:
            if self.masses is None or len(self.masses) != n_bodies:
                raise ValueError(f"training.body_permutations needs the masses of the {n_bodies} bodies")
            self.permutations = identical_body_permutations(self.masses)
        self.model = build_model(
            self.kind,
            n_bodies,
            dim,
            self.settings.hidden,
            self.scales,
            self.prior,
            self.feature_kind,
            self.permutations,
        )
        self.model = self.model.to(self.device)
        if self.kind == "direct":
            self.loss_units = (self.scales["dq_scale"], self.scales["dp_scale"])
        elif self.settings.balance_losses:
            self.loss_units = tuple(_rms(t) for t in increments)
        else:
            shared = _rms(*increments)
            self.loss_units = (shared, shared)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.settings.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=self.settings.lr_decay_steps, gamma=self.settings.lr_decay
        )
        self.history: list[dict[str, float]] = []
        # the direct model ignores the options of S: changing them does not restart its training
        own = self.settings
        if self.kind == "direct":
            own = replace(own, prior="none", features="cartesian", body_permutations=False)
        self.fingerprint = own.fingerprint(
            {"kind": self.kind, "n_train": len(self.train), "scales": self.scales}
            | ({"prior": self.prior} if self.prior else {})
        )

    def loss(self, q: torch.Tensor, p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        uq, up = self.loss_units
        if self.kind == "direct":
            qp, pp = self.model(q, p)
        else:
            qp, pp = self.model.increment(q, p, create_graph=self.model.training)
        return 0.5 * (((qp - a) / uq).pow(2).mean() + ((pp - b) / up).pow(2).mean())

    def _batch(self, data: FewBodyData, idx: torch.Tensor, gen: torch.Generator | None):
        q, p, a, b = (t[idx].to(self.device) for t in (data.q, data.p, data.a, data.b))
        if gen is not None:
            rot = random_rotations(len(idx), q.shape[-1], gen, q.dtype).to(self.device)
            q, p, a, b = (rotate(t, rot) for t in (q, p, a, b))
        return q, p, a, b

    def validate(self) -> float:
        if len(self.valid) == 0:
            return float("nan")
        self.model.eval()
        total, n = 0.0, 0
        for idx in torch.arange(len(self.valid)).split(1024):
            loss = self.loss(*self._batch(self.valid, idx, None))
            total += float(loss.detach()) * len(idx)
            n += len(idx)
        self.model.train()
        return total / n

    def _resume(self) -> int:
        if self.checkpoint is None or not self.checkpoint.is_file():
            return 0
        try:
            state = torch.load(self.checkpoint, map_location=self.device, weights_only=False)
        except Exception as exc:
            log.warning("ignoring unreadable checkpoint %s (%s)", self.checkpoint, exc)
            return 0
        if state.get("fingerprint") != self.fingerprint:
            log.info("checkpoint %s is from other settings; starting afresh", self.checkpoint)
            return 0
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = state["history"]
        log.info("resuming from %s after epoch %d", self.checkpoint, state["epoch"])
        return int(state["epoch"])

    def _save_checkpoint(self, epoch: int) -> None:
        if self.checkpoint is None:
            return
        state = {
            "fingerprint": self.fingerprint,
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history,
        }
        with atomic_path(self.checkpoint) as tmp:
            torch.save(state, tmp)

    def run(self, stop_after: int | None = None) -> nn.Module:
        """Train for the configured epochs (or only up to epoch ``stop_after``, for tests)."""
        torch.set_num_threads(self.settings.threads)
        s = self.settings
        start = self._resume()
        self.model.train()
        n = len(self.train)
        log.info(
            "training %s model: %d samples, batch %d, %d epochs, device %s",
            self.kind,
            n,
            s.batch_size,
            s.epochs,
            self.device,
        )
        for epoch in range(start + 1, (stop_after or s.epochs) + 1):
            t0 = time.perf_counter()
            gen = torch.Generator().manual_seed(s.seed * 100_003 + epoch)
            order = torch.randperm(n, generator=gen)
            total = 0.0
            # the optimiser steps train the network alone; validation sees the average (the saved S)
            with self.model.one_labelling() if self.permutations else contextlib.nullcontext():
                for idx in order.split(s.batch_size):
                    batch = self._batch(self.train, idx, gen if s.rotations else None)
                    loss = self.loss(*batch)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
                    self.scheduler.step()
                    total += float(loss.detach()) * len(idx)
            record = {
                "epoch": epoch,
                "train_loss": total / n,
                "valid_loss": self.validate(),
                "learning_rate": self.optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - t0,
            }
            self.history.append(record)
            log.info(
                "epoch %3d/%d  train %.3e  valid %.3e  lr %.2e  (%.1f s)",
                epoch,
                s.epochs,
                record["train_loss"],
                record["valid_loss"],
                record["learning_rate"],
                record["seconds"],
            )
            self._save_checkpoint(epoch)
        return self.model

    def save(self, path: str | Path) -> None:
        """Write the trained model (weights, shapes, scales, history, metadata) atomically."""
        _, n_bodies, dim = self.train.q.shape
        payload = {
            "format": MODEL_FORMAT,
            "kind": self.kind,
            "n_bodies": n_bodies,
            "dim": dim,
            "hidden": list(self.settings.hidden),
            "scales": self.scales,
            "prior": self.prior,
            "features": self.feature_kind,
            "permutations": self.permutations,
            "state_dict": {k: v.cpu() for k, v in self.model.state_dict().items()},
            "history": self.history,
            "settings": asdict(self.settings),
            "metadata": self.metadata,
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
