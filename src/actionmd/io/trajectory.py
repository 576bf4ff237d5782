"""Atomistic trajectories on disk: extended XYZ frames with momenta.

A trajectory is a sequence of frames of one periodic system: positions in A
(unwrapped, i.e. continuous in time), momenta in (eV*u)^(1/2) as in ASE, an
orthorhombic cell in A that stays fixed (NVE), atomic numbers and masses in u.
Reading checks what the rest of the pipeline relies on and raises
:class:`~actionmd.io.InputError` naming the file when a check fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np

from actionmd.io import InputError, atomic_path


@dataclass(frozen=True)
class Trajectory:
    """Frames of one system: ``positions``/``momenta`` (F, N, 3), ``time`` (F,) in fs."""

    positions: np.ndarray
    momenta: np.ndarray
    time: np.ndarray
    cell: np.ndarray
    numbers: np.ndarray
    masses: np.ndarray
    energy: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[1])


def read_trajectory(path: str | Path, require_continuous: bool = True) -> Trajectory:
    """Read and check an extxyz trajectory (at least one frame, momenta, fixed cell and atoms).

    With ``require_continuous``, no atom may move by more than half a box edge
    between consecutive frames: that would be a wrapped (folded) trajectory,
    whose pairs would jump by a box length.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: trajectory not found; run the workflow rule that produces it")
    try:
        frames = ase.io.read(path, ":", format="extxyz")
    except Exception as exc:
        raise InputError(f"{path}: unreadable extxyz ({exc}); delete it and rerun the workflow") from exc
    if not frames:
        raise InputError(f"{path}: no frames; delete it and rerun the workflow")
    first = frames[0]
    if "momenta" not in first.arrays:
        raise InputError(f"{path}: frames have no momenta; it is not an MD trajectory of this workflow")
    for i, atoms in enumerate(frames):
        if len(atoms) != len(first) or not np.array_equal(atoms.numbers, first.numbers):
            raise InputError(f"{path}: frame {i} has different atoms than frame 0")
        if not np.allclose(atoms.cell.array, first.cell.array):
            raise InputError(f"{path}: frame {i} has a different cell than frame 0 (expected NVE frames)")
    cell = first.cell.array.copy()
    if np.count_nonzero(cell - np.diag(np.diagonal(cell))):
        raise InputError(f"{path}: the cell is not orthorhombic")
    positions = np.stack([a.positions for a in frames])
    momenta = np.stack([a.get_momenta() for a in frames])
    if not (np.isfinite(positions).all() and np.isfinite(momenta).all()):
        raise InputError(f"{path}: non-finite positions or momenta; delete it and rerun the workflow")
    time = np.array([a.info.get("time", np.nan) for a in frames], dtype=float)
    energy = np.array([_potential_energy(a) for a in frames], dtype=float)
    if require_continuous and len(frames) > 1:
        jump = np.abs(np.diff(positions, axis=0)).max(axis=(0, 1))
        if np.any(jump > 0.5 * np.diagonal(cell)):
            raise InputError(
                f"{path}: atoms jump by up to {jump.max():.2f} A between frames: positions are wrapped "
                "into the box; the workflow needs unwrapped positions"
            )
    return Trajectory(positions, momenta, time, cell, first.numbers.copy(), first.get_masses().copy(), energy)


def _potential_energy(atoms) -> float:
    """The frame's potential energy (eV): ASE's extxyz reader moves info['energy'] onto a calculator."""
    if atoms.calc is not None and "energy" in atoms.calc.results:
        return float(atoms.calc.results["energy"])
    return float(atoms.info.get("energy", np.nan))


def write_frames(path: str | Path, frames: list) -> None:
    """Write ASE frames to extxyz atomically (the file appears only when complete)."""
    with atomic_path(path) as tmp:
        ase.io.write(tmp, frames, format="extxyz")
