"""The reference MD of Lennard-Jones argon on LAMMPS, and its trajectories read back.

:func:`run_reference`: an fcc lattice of argon atoms (plain cut Lennard-Jones,
``pair_style lj/cut``: no energy shift, no tail correction) is given
Maxwell-Boltzmann velocities, equilibrated with a Nose-Hoover NPT thermostat
and barostat, and then run at constant energy with velocity Verlet (``fix
nve``); the NVE frames are the reference trajectory, written as extxyz and
read back by :func:`load_reference`. :func:`run_nve` runs velocity Verlet from
a given state; :func:`potential_energies` evaluates the potential energy of
given frames.

LAMMPS runs in ``metal`` units (A, eV, ps, g/mol) inside :class:`LJSession`;
everything here takes and hands out ASE units: positions in A, momenta in
(eV u)^(1/2) as ``ase.Atoms.get_momenta()``, energies in eV, times and time
steps in fs, temperatures in K with 3N - 3 degrees of freedom. Positions are
unwrapped, continuous across the periodic boundary.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ase.io
import numpy as np

from actionmd.io import atomic_path
from actionmd.potentials.lammps_lj.checkpoint import ReferenceCheckpoint, run_fingerprint
from actionmd.potentials.lammps_lj.frames import (
    Progress,
    frame_atoms,
    frame_message,
    read_frames,
    report,
    stack_frames,
)
from actionmd.potentials.lammps_lj.session import LJSession, cell_lengths
from actionmd.potentials.lammps_lj.system import LJArgon, MDProtocol

_PROGRESS_PARTS = 10  # progress (and NVE checkpoints) every ~10% of a phase


# ---------------------------------------------------------------------------
# the phases of a run


def _chunk_intervals(n_intervals: int) -> int:
    """Save intervals per progress report / checkpoint: ~10% of the run, at least one."""
    return max(1, math.ceil(n_intervals / _PROGRESS_PARTS))


def _run_nve_frames(
    md: LJSession,
    frames: list[dict[str, Any]],
    n_intervals: int,
    save_every: int,
    on_chunk: Callable[[list[dict[str, Any]], bool], None],
) -> None:
    """Velocity Verlet from the state of ``frames[-1]``, appending a frame every ``save_every`` steps.

    Each chunk of ~10% of the intervals starts with a full LAMMPS setup
    (re-neighbouring), also when resuming from a restart, so a resumed run
    repeats the uninterrupted one bit for bit; ``on_chunk(frames, last)`` runs
    after each chunk.
    """
    chunk = _chunk_intervals(n_intervals)
    for i in range(len(frames) - 1, n_intervals):
        md.run(save_every, setup=i % chunk == 0)
        frames.append(md.frame())
        if (i + 1) % chunk == 0 or i + 1 == n_intervals:
            on_chunk(frames, i + 1 == n_intervals)


def _run_npt(md: LJSession, steps: int, progress: Progress) -> None:
    """NPT equilibration for ``steps`` steps with a progress line every ~10%."""
    md.start_npt()
    md.run(0)
    report(progress, _npt_message(md, 0, steps))
    done, chunk = 0, max(1, math.ceil(steps / _PROGRESS_PARTS))
    while done < steps:
        n = min(chunk, steps - done)
        md.run(n)
        done += n
        report(progress, _npt_message(md, done, steps))


def _npt_message(md: LJSession, step: int, total: int) -> str:
    volume = md.thermo("vol") / md.n
    return (
        f"npt step {step}/{total}: T = {md.thermo('temp'):.2f} K, E = {md.thermo('etotal'):.8f} eV, "
        f"P = {md.thermo('press'):.1f} bar, V = {volume:.3f} A^3/atom"
    )


# ---------------------------------------------------------------------------
# public entry points


def run_reference(
    system: LJArgon,
    protocol: MDProtocol,
    seed: int,
    out: str | os.PathLike,
    workdir: str | os.PathLike | None = None,
    progress: Progress = print,
) -> None:
    """Equilibrate LJ argon (NPT) and write its NVE trajectory to ``out`` (extxyz, ASE units).

    Every ``save_every`` NVE steps (step 0 and the last included) a frame is
    written with unwrapped positions (A), momenta, masses, cell and, in
    ``atoms.info``, ``energy`` (potential, eV; ASE moves it onto a
    SinglePointCalculator when reading, see :func:`load_reference`),
    ``kinetic_energy``, ``total_energy`` (eV), ``temperature`` (K), ``time``
    (fs since the NVE start), ``step``, ``seed``, ``run_dt`` (fs) and the LJ
    parameters. With a ``workdir``, a checkpoint is kept there after the NPT
    phase and every ~10% of the NVE phase; calling again with the same
    arguments resumes from it and gives the same frames as an uninterrupted
    run. ``seed`` (1 <= seed < 2^31) seeds the Maxwell-Boltzmann velocities.
    """
    if not (isinstance(seed, int | np.integer) and 0 < seed < 2**31):
        raise ValueError(f"seed must be an integer in [1, 2^31), got {seed!r}")
    seed, out = int(seed), Path(out)
    info = {"seed": seed, "run_dt": float(protocol.dt)}
    ckpt = None
    if workdir is not None:
        ckpt = ReferenceCheckpoint(Path(workdir), out, run_fingerprint(system, protocol, seed), info, system)
    resume = ckpt.load(progress) if ckpt is not None else None
    n_intervals = protocol.nve_steps // protocol.save_every

    def on_chunk(frames: list[dict[str, Any]], last: bool) -> None:
        if ckpt is not None and not last:
            ckpt.save(md, frames)
        report(progress, frame_message("nve", frames[-1]["step"], protocol.nve_steps, frames[-1]))

    with LJSession(system) as md:
        if resume is None:
            md.build_lattice(protocol.dt)
            md.thermalise(seed)
            _run_npt(md, protocol.npt_steps, progress)
            md.start_nve()
            md.run(0)
            frames = [md.frame()]
            if ckpt is not None:
                ckpt.save(md, frames)
            report(progress, frame_message("nve", 0, protocol.nve_steps, frames[0]))
        else:
            restart, frames = resume
            report(progress, f"resuming from {restart} at NVE step {frames[-1]['step']}")
            md.read_restart(restart, protocol.dt)
            md.nve()
        _run_nve_frames(md, frames, n_intervals, protocol.save_every, on_chunk)
    with atomic_path(out) as tmp:
        ase.io.write(tmp, [frame_atoms(f, system, info) for f in frames], format="extxyz")
    if ckpt is not None:
        ckpt.clear()


def run_nve(
    positions: np.ndarray,
    momenta: np.ndarray,
    cell: np.ndarray,
    system: LJArgon,
    dt: float,
    steps: int,
    save_every: int,
    progress: Progress = print,
    shift: bool = False,
) -> dict[str, np.ndarray]:
    """Velocity Verlet (NVE) from a state in ASE units; a frame every ``save_every`` steps, step 0 included.

    ``positions`` (N, 3) in A (unwrapped ones are fine), ``momenta`` (N, 3) in
    (eV u)^(1/2), ``cell`` orthorhombic (3,) or (3, 3) in A; ``dt`` in fs.
    Returns arrays with a leading axis of ``steps // save_every + 1`` frames:
    ``time`` fs, ``step``, unwrapped ``positions`` A, ``momenta``, ``cell`` A,
    ``potential_energy``, ``kinetic_energy``, ``total_energy`` eV and
    ``temperature`` K (3N - 3 degrees of freedom). ``shift=True`` reports the
    potential shifted to zero at the cutoff, as :func:`potential_energies` does
    (the forces, hence the trajectory, are the same).
    """
    protocol = MDProtocol(dt=dt, npt_steps=0, nve_steps=steps, save_every=save_every)  # validates
    with LJSession(system) as md:
        md.build_state(positions, cell, protocol.dt)
        if shift:
            md.shift_potential()
        md.set_momenta(momenta)
        md.nve()
        md.run(0)
        frames = [md.frame()]
        report(progress, frame_message("nve", 0, steps, frames[0]))

        def on_chunk(frames: list[dict[str, Any]], last: bool) -> None:
            report(progress, frame_message("nve", frames[-1]["step"], steps, frames[-1]))

        _run_nve_frames(md, frames, steps // save_every, save_every, on_chunk)
    return stack_frames(frames)


def potential_energies(positions: np.ndarray, cell: np.ndarray, system: LJArgon, shift: bool = False) -> np.ndarray:
    """Lennard-Jones potential energy (eV) of each frame of ``positions`` (F, N, 3) A in one periodic ``cell``.

    Positions may be unwrapped (anywhere in space); ``cell`` is orthorhombic,
    (3,) edge lengths or a (3, 3) matrix in A. One LAMMPS instance evaluates
    all frames (``run 0`` per frame). ``shift=True`` gives the energy of the
    potential shifted to zero at the cutoff (LAMMPS ``pair_modify shift yes``):
    the quantity that, with the kinetic energy, the truncated-force dynamics
    conserves; the plain cut potential jumps by -V(cutoff) whenever a pair
    crosses the cutoff.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[-1] != 3:
        raise ValueError(f"positions must have shape (F, N, 3), got {positions.shape}")
    if not np.isfinite(positions).all():
        raise ValueError("positions contain non-finite values")
    lengths = cell_lengths(cell)
    energies = np.empty(len(positions))
    if len(positions) == 0:
        return energies
    with LJSession(system) as md:
        md.build_state(positions[0], lengths, dt=1.0)
        md.lmp.command("thermo_style custom step pe")  # no virial needed
        if shift:
            md.shift_potential()
        for k, frame in enumerate(positions):
            if k:
                md.set_positions(frame, lengths)
            md.run(0)
            energies[k] = md.thermo("pe")
    return energies


def load_reference(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A trajectory written by :func:`run_reference` as arrays in ASE units.

    Keys: ``time`` (F,) fs, ``step`` (F,), unwrapped ``positions`` (F, N, 3) A,
    ``momenta`` (F, N, 3) (eV u)^(1/2), ``cell`` (F, 3) A, ``potential_energy``,
    ``kinetic_energy``, ``total_energy`` (F,) eV, ``temperature`` (F,) K.
    """
    return stack_frames(read_frames(Path(path), "delete it and rerun the workflow rule that produces it"))
