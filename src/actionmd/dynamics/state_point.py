"""Reference MD of q-TIP4P/f water at one state point (SI I.2.3), with ASE's integrators.

One state point: a box of water (atoms O H H, orthorhombic cell, A) is
thermalised with Langevin dynamics at ``temperature`` (time constant ``tau``,
step ``nvt_dt``), then run at constant energy with velocity Verlet (step
``nve_dt``), and every ``save_every``-th NVE state is kept. Positions stay
unwrapped (ASE's integrators never fold them back into the cell), momenta are
ASE's ((eV*u)^(1/2)), energies eV, times fs. The frames feed the same pairing
and datasets as argon (:mod:`actionmd.atomistic.dataset`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import units
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet

from actionmd.io.checkpoint import LoopCheckpoint
from actionmd.io.trajectory import write_frames
from actionmd.potentials.qtip4pf import QTIP4PFCalculator

try:  # ASE >= 3.28
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # pragma: no cover
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

CHUNK = 200  # Langevin steps between chances to checkpoint


@dataclass(frozen=True)
class StatePointProtocol:
    """Langevin NVT then NVE velocity Verlet; times in fs, temperature in K."""

    temperature: float
    nvt_steps: int
    nve_steps: int
    save_every: int
    nvt_dt: float = 0.5
    nve_dt: float = 0.25
    tau: float = 10.0

    @classmethod
    def from_reference(cls, reference: dict[str, Any], temperature: float, tau: float) -> StatePointProtocol:
        """The protocol of one state point from a config ``reference`` section (nvt/nve steps, steps, saving)."""
        return cls(
            temperature=float(temperature),
            nvt_steps=reference["nvt_steps"],
            nve_steps=reference["nve_steps"],
            save_every=reference["save_every"],
            nvt_dt=reference["nvt_dt"],
            nve_dt=reference["dt"],
            tau=tau,
        )

    def __post_init__(self) -> None:
        if self.temperature <= 0 or self.tau <= 0 or self.nvt_dt <= 0 or self.nve_dt <= 0:
            raise ValueError("temperature, tau and time steps must be positive")
        if self.nvt_steps < 0 or self.nve_steps < 1 or self.save_every < 1 or self.nve_steps % self.save_every:
            raise ValueError("need nvt_steps >= 0, nve_steps >= 1 and save_every dividing nve_steps")


def _frame(atoms, time: float, step: int, meta: dict[str, Any]):
    frame = atoms.copy()
    frame.calc = None
    frame.set_constraint()
    frame.info.update(
        energy=float(atoms.get_potential_energy()),
        kinetic_energy=float(atoms.get_kinetic_energy()),
        temperature=float(atoms.get_temperature()),
        time=time,
        step=step,
        **meta,
    )
    return frame


def run_state_point(
    atoms,
    protocol: StatePointProtocol,
    seed: int,
    out: str | Path | None = None,
    calculator=None,
    progress: Callable[[str], Any] | None = print,
    checkpoint: LoopCheckpoint | None = None,
) -> list:
    """Thermalise ``atoms`` (copied) and return (and write to ``out``, extxyz) its NVE frames.

    ``checkpoint``: positions, momenta, the Langevin random generator's state and the frames
    so far are saved there every few hundred steps (and on SIGTERM/SIGINT), and a saved state
    of the same job is resumed: the frames are those of an uninterrupted run, bit for bit.
    """
    atoms = atoms.copy()
    atoms.calc = calculator or QTIP4PFCalculator()
    rng = np.random.default_rng(seed)
    thermalize_momenta(atoms, temperature_K=protocol.temperature, rng=rng)
    Stationary(atoms)
    atoms.set_constraint(FixCom())  # the centre of mass stays at rest in both phases
    meta = {"seed": seed, "target_temperature": protocol.temperature, "nve_dt": protocol.nve_dt}
    nvt = Langevin(
        atoms,
        timestep=protocol.nvt_dt * units.fs,
        temperature_K=protocol.temperature,
        friction=1.0 / (protocol.tau * units.fs),
        fixcm=False,
        rng=rng,
    )
    done, frames = 0, []
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        atoms.set_positions(saved["positions"], apply_constraint=False)
        atoms.set_momenta(saved["momenta"], apply_constraint=False)
        rng.bit_generator.state = saved["rng"]
        done, frames = saved["done"], saved["frames"]

    def state() -> dict[str, Any]:
        return {
            "positions": atoms.get_positions(),
            "momenta": atoms.get_momenta(),
            "rng": rng.bit_generator.state,
            "done": done,
            "frames": frames,
        }

    report = max(1, protocol.nvt_steps // 10)
    chunk = max(1, min(report, CHUNK))
    nve_chunks = protocol.nve_steps // protocol.save_every
    with checkpoint.guard() if checkpoint is not None else contextlib.nullcontext():
        while done < protocol.nvt_steps:
            n = min(chunk, protocol.nvt_steps - done)
            nvt.run(n)
            done += n
            if progress and (done % report == 0 or done == protocol.nvt_steps):
                progress(f"nvt step {done}/{protocol.nvt_steps}: T = {atoms.get_temperature():.1f} K")
            if checkpoint is not None:
                checkpoint.maybe_save(state, f"nvt step {done}")
        nve = VelocityVerlet(atoms, timestep=protocol.nve_dt * units.fs)
        if not frames:
            frames.append(_frame(atoms, 0.0, 0, meta))
        for k in range(len(frames), nve_chunks + 1):
            nve.run(protocol.save_every)
            step = k * protocol.save_every
            frames.append(_frame(atoms, step * protocol.nve_dt, step, meta))
            if checkpoint is not None and k < nve_chunks:
                checkpoint.maybe_save(state, f"nve step {step}")
    if progress:
        e = np.array([f.info["energy"] + f.info["kinetic_energy"] for f in frames])
        progress(f"nve: {len(frames)} frames, total energy spread {np.ptp(e):.2e} eV")
    if out is not None:
        write_frames(out, frames)
    return frames
