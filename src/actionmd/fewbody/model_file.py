"""The few-body models' file: what a trained MLP is made of, and how it is rebuilt.

A model file (written by :meth:`actionmd.fewbody.training.Trainer.save`, format
``MODEL_FORMAT``) holds the kind (``direct`` or ``symplectic``), the shapes, the
normalisation scales, the prior's parameters, the features, the relabellings S
is averaged over, the weights, the training history and the settings: all that
:func:`build_model` needs to make the same function again, in float64 for rollouts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from actionmd.fewbody.mlp import DirectMLP, GeneratingFunctionMLP
from actionmd.io import InputError

KINDS = ("direct", "symplectic")
MODEL_FORMAT = "actionmd-fewbody-mlp/1"


def build_model(
    kind: str,
    n_bodies: int,
    dim: int,
    hidden: tuple[int, ...],
    scales: dict[str, float],
    prior: dict[str, Any] | None = None,
    features: str = "cartesian",
    permutations: list[tuple[int, ...]] | None = None,
) -> nn.Module:
    if kind == "direct":
        return DirectMLP(n_bodies, dim, hidden, **scales)
    if kind == "symplectic":
        return GeneratingFunctionMLP(
            n_bodies, dim, hidden, **scales, prior=prior, features=features, permutations=permutations
        )
    raise ValueError(f"model kind must be one of {KINDS}, got {kind!r}")


def load_model(path: str | Path, dtype: torch.dtype = torch.float64) -> tuple[nn.Module, dict[str, Any]]:
    """Load a model written by :meth:`Trainer.save`; returns (model in eval mode, payload)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: model file not found; run the training rule that produces it")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
        if payload.get("format") != MODEL_FORMAT:
            raise ValueError(f"format {payload.get('format')!r}, expected {MODEL_FORMAT!r}")
        model = build_model(
            payload["kind"],
            payload["n_bodies"],
            payload["dim"],
            tuple(payload["hidden"]),
            payload["scales"],
            payload.get("prior"),
            payload.get("features", "cartesian"),
            payload.get("permutations"),
        )
        model.load_state_dict(payload["state_dict"])
    except Exception as exc:
        raise InputError(f"{path}: not a readable actionmd model ({exc}); delete it and retrain") from exc
    return model.to(dtype).eval(), payload
