"""Random rotations for data augmentation (paper SI I.3.1).

At every training step each sample gets its own random rotation, applied
alike to all position-like and momentum-like vectors of that sample, so the
models learn the rotational symmetry of an isotropic Hamiltonian.
"""

from __future__ import annotations

import math

import torch


def random_rotations(n: int, dim: int, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` rotation matrices (n, dim, dim), uniform (Haar) on SO(dim), for dim = 2 or 3."""
    if dim == 2:
        theta = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
        c, s = torch.cos(theta), torch.sin(theta)
        rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    elif dim == 3:
        a = torch.randn(n, 3, 3, generator=generator, dtype=torch.float64)
        qmat, rmat = torch.linalg.qr(a)
        qmat = qmat * torch.sign(torch.diagonal(rmat, dim1=-2, dim2=-1)).unsqueeze(-2)
        det = torch.linalg.det(qmat)
        qmat[:, :, 0] *= det.unsqueeze(-1)  # proper rotations only
        rot = qmat
    else:
        raise ValueError(f"rotations are implemented for 2 or 3 dimensions, not {dim}")
    return rot.to(dtype)


def rotate(vectors: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Rotate per-sample vectors (B, N, d) by per-sample matrices (B, d, d)."""
    return torch.einsum("bij,bnj->bni", rotations, vectors)
