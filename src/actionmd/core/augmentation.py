"""Random rotations for data augmentation (paper SI I.3.1), and their numpy version for water boxes.

At every training step each sample gets its own random rotation, applied
alike to all position-like and momentum-like vectors of that sample, so the
models learn the rotational symmetry of an isotropic Hamiltonian
(:func:`random_rotations`, torch). :func:`random_rotation_matrices` draws
rotations of SO(3) in numpy from a ``numpy.random.Generator``; it orients
the molecules of :func:`actionmd.potentials.qtip4pf.water_box`. Rotations
are dimensionless orthogonal matrices with determinant +1.
"""

from __future__ import annotations

import math

import numpy as np
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


def random_rotation_matrices(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rotation matrices (n, 3, 3), uniform (Haar) on SO(3), from random unit quaternions (numpy).

    The numpy counterpart of :func:`random_rotations` (dim = 3), used to orient the molecules
    of :func:`actionmd.potentials.qtip4pf.water_box`: the quaternion is drawn as ``rng.normal``
    of shape (n, 4) and normalised, so a given ``rng`` state always gives the same box.
    """
    q = rng.normal(size=(n, 4))
    w, x, y, z = (q / np.linalg.norm(q, axis=1, keepdims=True)).T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], axis=-1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], axis=-1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=-1),
        ],
        axis=1,
    )


def rotate(vectors: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Rotate per-sample vectors (B, N, d) by per-sample matrices (B, d, d)."""
    return torch.einsum("bij,bnj->bni", rotations, vectors)
