"""The torch device a training or a rollout runs on: the code picks it (Snakemake sets no CUDA_VISIBLE_DEVICES)."""

from __future__ import annotations

import torch


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA when available and asked for ('auto' or 'cuda'), else CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device '{requested}' requested but CUDA is not available")
    return torch.device(requested)
