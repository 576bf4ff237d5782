"""Frames of the argon reference MD: as extxyz, as arrays, and as progress lines.

A frame is a dict in ASE units, as :meth:`LJSession.frame` returns it:
``time`` (fs), ``step``, unwrapped ``positions`` (N, 3) A, ``momenta`` (N, 3)
(eV u)^(1/2), ``cell`` (3,) edge lengths A, ``potential_energy`` and
``kinetic_energy`` (eV), ``temperature`` (K, 3N - 3 degrees of freedom).

In extxyz a frame is one ``ase.Atoms`` of argon with positions, momenta,
masses (u), the periodic cell and, in ``atoms.info``, ``energy`` (potential,
eV; ASE moves it onto a SinglePointCalculator when reading),
``kinetic_energy``, ``total_energy`` (eV), ``temperature`` (K), ``time`` (fs),
``step``, the caller's extra keys and the LJ parameters (eV, A, u).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
from ase import Atoms

from actionmd.io import InputError
from actionmd.potentials.lammps_lj.system import LJArgon

Progress = Callable[[str], Any] | None

SYMBOL = "Ar"
FRAME_KEYS = ("time", "step", "positions", "momenta", "potential_energy", "kinetic_energy", "temperature")


def report(progress: Progress, message: str) -> None:
    """Hand ``message`` to ``progress``, unless that is None (quiet)."""
    if progress is not None:
        progress(message)


def frame_message(phase: str, step: int, total: int, frame: dict[str, Any]) -> str:
    """The progress line of a frame: temperature (K), total and potential energy (eV)."""
    e = frame["potential_energy"] + frame["kinetic_energy"]
    return (
        f"{phase} step {step}/{total}: T = {frame['temperature']:.2f} K, E = {e:.8f} eV "
        f"(potential {frame['potential_energy']:.8f} eV)"
    )


def frame_atoms(frame: dict[str, Any], system: LJArgon, info: dict[str, Any]) -> Atoms:
    """One frame as ASE Atoms with momenta, masses, cell and energies in ``info``."""
    n = len(frame["positions"])
    atoms = Atoms([SYMBOL] * n, positions=frame["positions"], cell=frame["cell"], pbc=True)
    atoms.set_masses(np.full(n, system.mass))
    atoms.set_momenta(frame["momenta"])
    atoms.info.update(
        energy=frame["potential_energy"],
        kinetic_energy=frame["kinetic_energy"],
        total_energy=frame["potential_energy"] + frame["kinetic_energy"],
        temperature=frame["temperature"],
        time=frame["time"],
        step=frame["step"],
        **info,
        **system.lj_parameters(),
    )
    return atoms


def atoms_frame(atoms: Atoms) -> dict[str, Any]:
    """A frame dict from Atoms read back from extxyz (ASE moves ``energy`` onto a calculator)."""
    energy = atoms.info.get("energy")
    if energy is None and atoms.calc is not None:
        energy = atoms.calc.results.get("energy")
    return {
        "time": float(atoms.info["time"]),
        "step": int(atoms.info["step"]),
        "positions": atoms.get_positions(),
        "momenta": atoms.get_momenta(),
        "cell": atoms.cell.lengths(),
        "potential_energy": float(energy),
        "kinetic_energy": float(atoms.info["kinetic_energy"]),
        "temperature": float(atoms.info["temperature"]),
    }


def stack_frames(frames: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Frame dicts -> arrays with a leading frame axis, plus total_energy and cell."""
    out = {k: np.array([f[k] for f in frames]) for k in (*FRAME_KEYS, "cell")}
    out["total_energy"] = out["potential_energy"] + out["kinetic_energy"]
    return out


def read_frames(path: Path, remedy: str) -> list[dict[str, Any]]:
    """The frames of an extxyz file written by :func:`frame_atoms`; :class:`InputError` naming ``remedy`` if not."""
    if not path.is_file():
        raise InputError(f"{path}: file not found; {remedy}")
    try:
        return [atoms_frame(a) for a in ase.io.read(path, index=":", format="extxyz")]
    except Exception as exc:  # parse, key and value errors alike
        raise InputError(f"{path}: not a reference trajectory ({exc}); {remedy}") from exc
