"""Reference molecular dynamics of Lennard-Jones argon on LAMMPS.

An fcc lattice of argon atoms interacting through a plain cut Lennard-Jones
pair potential (``pair_style lj/cut``: no energy shift, no tail correction) is
given Maxwell-Boltzmann velocities, equilibrated with a Nose-Hoover NPT
thermostat and barostat, and then run at constant energy with velocity Verlet
(``fix nve``). The NVE frames are the reference trajectory.

LAMMPS runs in ``metal`` units (A, eV, ps, g/mol). Everything this module hands
out is in ASE units: positions in A, momenta in (eV u)^(1/2) exactly as
``ase.Atoms.get_momenta()`` (p = m v_ase with v_ase = v_lammps[A/ps] / (1000
ase.units.fs)), energies in eV, times in fs. Temperatures use LAMMPS' count of
degrees of freedom, 3N - 3 (the centre-of-mass momentum is removed):
T = 2 K / ((3N - 3) k_B) with ASE's k_B.

Positions are unwrapped (x + image flags * box edge, relative to the box's
lower corner), so an atom's coordinate changes continuously along a run even
when it crosses the periodic boundary.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
from ase import Atoms, units

from actionmd.dynamics.energy import temperature_of
from actionmd.io import InputError, atomic_path
from actionmd.io.checkpoint import pause_after_save
from actionmd.potentials.lammps import new_lammps

Progress = Callable[[str], Any] | None

SYMBOL = "Ar"
# LAMMPS metal velocity (A/ps) -> ASE velocity (A per ASE time unit)
_VELOCITY_TO_ASE = 1.0 / (1000.0 * units.fs)
_CHECKPOINT_VERSION = 1
_PROGRESS_PARTS = 10  # progress (and NVE checkpoints) every ~10% of a phase
_FRAME_KEYS = ("time", "step", "positions", "momenta", "potential_energy", "kinetic_energy", "temperature")


@dataclass(frozen=True)
class LJArgon:
    """Lennard-Jones argon on an fcc lattice and its NPT equilibration conditions.

    epsilon (eV) and sigma (A) of the pair potential, cut at ``cutoff`` (A);
    ``mass`` in u (g/mol); ``lattice_constant`` (A) and ``cells`` of the
    starting fcc lattice (4 atoms per cubic cell); NPT target ``temperature``
    (K) and ``pressure`` (bar) with Nose-Hoover damping times in fs.
    """

    epsilon: float = 0.0104
    sigma: float = 3.4
    cutoff: float = 10.0
    mass: float = 39.948
    lattice_constant: float = 4.05
    cells: tuple[int, int, int] = (4, 4, 4)
    temperature: float = 80.0
    pressure: float = 1.0
    thermostat_damping: float = 100.0
    barostat_damping: float = 1000.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "cells", tuple(int(c) for c in self.cells))
        if len(self.cells) != 3 or min(self.cells) < 1:
            raise ValueError(f"cells must be three positive integers, got {self.cells}")
        for name in ("epsilon", "sigma", "cutoff", "mass", "lattice_constant", "thermostat_damping"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not (self.temperature > 0 and self.barostat_damping > 0):
            raise ValueError("temperature and barostat_damping must be positive")

    @property
    def n_atoms(self) -> int:
        """Number of atoms of the starting lattice (4 per fcc cell)."""
        return 4 * math.prod(self.cells)

    def lj_parameters(self) -> dict[str, float]:
        """The pair potential's parameters as stored with every frame (eV, A, u)."""
        return {"epsilon": self.epsilon, "sigma": self.sigma, "cutoff": self.cutoff, "mass": self.mass}


@dataclass(frozen=True)
class MDProtocol:
    """Time step ``dt`` (fs), NPT equilibration and NVE production lengths (steps), NVE save interval (steps).

    ``npt_steps`` may be 0 (start NVE from the thermalised lattice); the NVE
    run saves ``nve_steps // save_every + 1`` frames, step 0 and the last included.
    """

    dt: float = 1.0
    npt_steps: int = 20000
    nve_steps: int = 100000
    save_every: int = 10

    def __post_init__(self) -> None:
        if not self.dt > 0:
            raise ValueError(f"dt must be positive, got {self.dt}")
        for name in ("npt_steps", "nve_steps", "save_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if self.npt_steps < 0 or self.nve_steps < 1 or self.save_every < 1:
            raise ValueError(f"need npt_steps >= 0, nve_steps >= 1, save_every >= 1; got {self}")
        if self.nve_steps % self.save_every:
            raise ValueError(f"save_every={self.save_every} must divide nve_steps={self.nve_steps}")

    @property
    def n_frames(self) -> int:
        """Frames of the NVE trajectory, step 0 and the last step included."""
        return self.nve_steps // self.save_every + 1


# ---------------------------------------------------------------------------
# one LAMMPS session


def _num(x: float) -> str:
    """A float as LAMMPS reads it back exactly."""
    return repr(float(x))


def _cell_lengths(cell: np.ndarray) -> np.ndarray:
    """Edge lengths (3,) in A of an orthorhombic cell given as (3,) lengths or a (3, 3) matrix."""
    cell = np.asarray(cell, dtype=np.float64)
    if cell.shape == (3, 3):
        off = cell - np.diag(np.diag(cell))
        if np.abs(off).max() > 1e-10 * np.abs(cell).max():
            raise ValueError("only orthorhombic cells are supported; got off-diagonal cell entries")
        cell = np.diag(cell).copy()
    if cell.shape != (3,) or not np.all(cell > 0):
        raise ValueError(f"cell must be 3 positive edge lengths or a diagonal (3, 3) matrix, got {cell}")
    return cell


def _wrap(positions: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions folded into [0, L) and the integer image flags with positions = wrapped + image * L."""
    image = np.floor(positions / lengths)
    wrapped = positions - image * lengths
    over = wrapped >= lengths  # rounding can land exactly on L
    wrapped[over] -= np.broadcast_to(lengths, wrapped.shape)[over]
    image[over] += 1
    return np.clip(wrapped, 0.0, None), image.astype(np.int32)


class _LJSession:
    """One LAMMPS instance holding LJ argon in metal units; reads and writes its state in ASE units."""

    def __init__(self, system: LJArgon) -> None:
        self.system = system
        self.lmp = new_lammps()
        self.lmp.commands_string("units metal\natom_style atomic\natom_modify map array\nboundary p p p")
        self.n, self.dt = 0, 0.0

    def close(self) -> None:
        self.lmp.close()

    def __enter__(self) -> _LJSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building the system -------------------------------------------------
    def _potential(self, dt: float) -> None:
        """Pair potential, mass, neighbour list and time step (dt in fs)."""
        s = self.system
        self.lmp.commands_string(
            f"""
            mass 1 {_num(s.mass)}
            pair_style lj/cut {_num(s.cutoff)}
            pair_coeff 1 1 {_num(s.epsilon)} {_num(s.sigma)}
            """
        )
        self._settings(dt)

    def _settings(self, dt: float) -> None:
        """Settings a restart file does not keep: neighbour list and time step (fs -> ps)."""
        self.lmp.commands_string(
            f"neighbor 2.0 bin\nneigh_modify every 1 delay 0 check yes\ntimestep {_num(dt / 1000)}"
        )
        self.n, self.dt = int(self.lmp.get_natoms()), float(dt)

    def build_lattice(self, dt: float) -> None:
        """The fcc lattice of ``system.cells`` cubic cells of edge ``system.lattice_constant``."""
        nx, ny, nz = self.system.cells
        self.lmp.commands_string(
            f"""
            lattice fcc {_num(self.system.lattice_constant)}
            region box block 0 {nx} 0 {ny} 0 {nz}
            create_box 1 box
            create_atoms 1 box
            """
        )
        self._potential(dt)

    def build_state(self, positions: np.ndarray, cell: np.ndarray, dt: float) -> None:
        """Atoms at (possibly unwrapped) ``positions`` (N, 3) A in the box [0, L) of edge lengths ``cell``."""
        lengths = _cell_lengths(cell)
        positions = np.asarray(positions, dtype=np.float64)
        if positions.ndim != 2 or positions.shape[1] != 3 or len(positions) == 0:
            raise ValueError(f"positions must have shape (N, 3), got {positions.shape}")
        lx, ly, lz = (_num(x) for x in lengths)
        self.lmp.commands_string(f"region box block 0 {lx} 0 {ly} 0 {lz}\ncreate_box 1 box")
        n = len(positions)
        wrapped, image = _wrap(positions, lengths)
        self.lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, wrapped.reshape(-1).tolist())
        if self.lmp.get_natoms() != n:
            raise ValueError(f"LAMMPS created {self.lmp.get_natoms()} of {n} atoms; are positions finite?")
        self._potential(dt)
        self._scatter("image", image)

    def read_restart(self, path: Path, dt: float) -> None:
        """The system from a LAMMPS binary restart (box, atoms, velocities, image flags, pair coefficients)."""
        self.lmp.command(f'read_restart "{path}"')
        self._settings(dt)

    def set_momenta(self, momenta: np.ndarray) -> None:
        """Velocities from ASE momenta (N, 3) in (eV u)^(1/2)."""
        momenta = np.asarray(momenta, dtype=np.float64)
        if momenta.shape != (self.n, 3):
            raise ValueError(f"momenta must have shape ({self.n}, 3), got {momenta.shape}")
        self._scatter("v", momenta / (self.system.mass * _VELOCITY_TO_ASE))

    def set_positions(self, positions: np.ndarray, lengths: np.ndarray) -> None:
        """Move the atoms to ``positions`` (N, 3) A, folded into the box [0, L)."""
        wrapped, image = _wrap(np.asarray(positions, dtype=np.float64), lengths)
        self._scatter("x", wrapped)
        self._scatter("image", image)

    # -- dynamics --------------------------------------------------------------
    def thermalise(self, seed: int) -> None:
        """Maxwell-Boltzmann velocities at the system's temperature, zero total linear and angular momentum."""
        t = _num(self.system.temperature)
        self.lmp.command(f"velocity all create {t} {seed} mom yes rot yes dist gaussian")

    def start_npt(self) -> None:
        """Nose-Hoover NPT at the system's temperature and isotropic pressure (damping times fs -> ps)."""
        s = self.system
        t, p = _num(s.temperature), _num(s.pressure)
        tdamp, pdamp = _num(s.thermostat_damping / 1000), _num(s.barostat_damping / 1000)
        self.lmp.command(f"fix ensemble all npt temp {t} {t} {tdamp} iso {p} {p} {pdamp}")

    def start_nve(self) -> None:
        """Velocity Verlet from here on, with the step counter restarted at 0."""
        self.lmp.commands_string("unfix ensemble\nreset_timestep 0")
        self.nve()

    def nve(self) -> None:
        """Velocity Verlet (``fix nve``); the thermo output of each run's last step is only the potential energy."""
        self.lmp.commands_string("fix ensemble all nve\nthermo_style custom step pe")

    def run(self, steps: int, setup: bool = True) -> None:
        """Advance ``steps`` steps; ``setup=False`` continues the previous run without re-neighbouring."""
        self.lmp.command(f"run {steps} pre {'yes' if setup else 'no'} post no")

    def thermo(self, name: str) -> float:
        """A LAMMPS thermo quantity of the last step run (metal units)."""
        return float(self.lmp.get_thermo(name))

    # -- state -----------------------------------------------------------------
    def _gather(self, name: str, dtype: int) -> np.ndarray:
        data = self.lmp.gather_atoms(name, dtype, 3)
        return np.ctypeslib.as_array(data).reshape(self.n, 3).copy()

    def _scatter(self, name: str, values: np.ndarray) -> None:
        dtype = 0 if name == "image" else 1
        ctype = ctypes.c_int if dtype == 0 else ctypes.c_double
        flat = np.ascontiguousarray(values, dtype=np.int32 if dtype == 0 else np.float64).reshape(-1)
        self.lmp.scatter_atoms(name, dtype, 3, (ctype * flat.size).from_buffer_copy(flat))

    def box(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower corner and edge lengths (A) of the orthorhombic box."""
        lo, hi = self.lmp.extract_box()[:2]
        return np.array(lo), np.array(hi) - np.array(lo)

    def frame(self) -> dict[str, Any]:
        """The current state in ASE units: time (fs), unwrapped positions, momenta, cell, energies (last step run)."""
        lo, lengths = self.box()
        x, image, v = self._gather("x", 1), self._gather("image", 0), self._gather("v", 1)
        momenta = self.system.mass * _VELOCITY_TO_ASE * v
        kinetic = float(np.sum(momenta**2)) / (2 * self.system.mass)
        potential = self.thermo("pe")
        step = int(self.lmp.extract_global("ntimestep"))
        return {
            "time": step * self.dt,
            "step": step,
            "positions": x - lo + image * lengths,
            "momenta": momenta,
            "cell": lengths,
            "potential_energy": potential,
            "kinetic_energy": kinetic,
            "temperature": float(temperature_of(kinetic, self.n)),
        }


def _report(progress: Progress, message: str) -> None:
    if progress is not None:
        progress(message)


def _frame_message(phase: str, step: int, total: int, frame: dict[str, Any]) -> str:
    e = frame["potential_energy"] + frame["kinetic_energy"]
    return (
        f"{phase} step {step}/{total}: T = {frame['temperature']:.2f} K, E = {e:.8f} eV "
        f"(potential {frame['potential_energy']:.8f} eV)"
    )


def _chunk_intervals(n_intervals: int) -> int:
    """Save intervals per progress report / checkpoint: ~10% of the run, at least one."""
    return max(1, math.ceil(n_intervals / _PROGRESS_PARTS))


def _run_nve_frames(
    md: _LJSession,
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


def _run_npt(md: _LJSession, steps: int, progress: Progress) -> None:
    """NPT equilibration for ``steps`` steps with a progress line every ~10%."""
    md.start_npt()
    md.run(0)
    _report(progress, _npt_message(md, 0, steps))
    done, chunk = 0, max(1, math.ceil(steps / _PROGRESS_PARTS))
    while done < steps:
        n = min(chunk, steps - done)
        md.run(n)
        done += n
        _report(progress, _npt_message(md, done, steps))


def _npt_message(md: _LJSession, step: int, total: int) -> str:
    volume = md.thermo("vol") / md.n
    return (
        f"npt step {step}/{total}: T = {md.thermo('temp'):.2f} K, E = {md.thermo('etotal'):.8f} eV, "
        f"P = {md.thermo('press'):.1f} bar, V = {volume:.3f} A^3/atom"
    )


# ---------------------------------------------------------------------------
# frames <-> extxyz


def _frame_atoms(frame: dict[str, Any], system: LJArgon, info: dict[str, Any]) -> Atoms:
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


def _atoms_frame(atoms: Atoms) -> dict[str, Any]:
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


def _stack(frames: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Frame dicts -> arrays with a leading frame axis, plus total_energy and cell."""
    out = {k: np.array([f[k] for f in frames]) for k in (*_FRAME_KEYS, "cell")}
    out["total_energy"] = out["potential_energy"] + out["kinetic_energy"]
    return out


def load_reference(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A trajectory written by :func:`run_reference` as arrays in ASE units.

    Keys: ``time`` (F,) fs, ``step`` (F,), unwrapped ``positions`` (F, N, 3) A,
    ``momenta`` (F, N, 3) (eV u)^(1/2), ``cell`` (F, 3) A, ``potential_energy``,
    ``kinetic_energy``, ``total_energy`` (F,) eV, ``temperature`` (F,) K.
    """
    return _stack(_read_frames(Path(path), "delete it and rerun the workflow rule that produces it"))


def _read_frames(path: Path, remedy: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"{path}: file not found; {remedy}")
    try:
        return [_atoms_frame(a) for a in ase.io.read(path, index=":", format="extxyz")]
    except Exception as exc:  # parse, key and value errors alike
        raise InputError(f"{path}: not a reference trajectory ({exc}); {remedy}") from exc


# ---------------------------------------------------------------------------
# checkpoints


def _fingerprint(system: LJArgon, protocol: MDProtocol, seed: int) -> str:
    """Hash of everything that determines the trajectory."""
    key = {"version": _CHECKPOINT_VERSION, "system": asdict(system), "protocol": asdict(protocol), "seed": seed}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


class _Checkpoint:
    """Restart file, frames so far and a JSON record of them for one output file, in ``workdir``.

    The frames are appended to ``<out>.partial.extxyz``; the JSON (written last,
    atomically) names the restart file and says how many frames and bytes of
    the partial file belong to it, so a crash at any point leaves a consistent
    checkpoint: the previous one or the new one.
    """

    def __init__(self, workdir: Path, out: Path, fingerprint: str, info: dict[str, Any], system: LJArgon) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir, self.fingerprint, self.info, self.system = workdir, fingerprint, info, system
        self.record = workdir / f"{out.name}.checkpoint.json"
        self.frames_path = workdir / f"{out.name}.partial.extxyz"
        self.prefix = f"{out.name}.nve"
        self.written = 0  # frames already in the partial file

    def load(self, progress: Progress) -> tuple[Path, list[dict[str, Any]]] | None:
        """(restart file, frames so far) of a checkpoint with this fingerprint, else None."""
        if not self.record.is_file():
            return None
        remedy = "delete the checkpoint files in the workdir and rerun"
        try:
            record = json.loads(self.record.read_text())
            if record.get("fingerprint") != self.fingerprint:
                _report(progress, f"ignoring checkpoint {self.record}: written for other arguments")
                return None
            restart, n_frames, size = self.workdir / record["restart"], int(record["frames"]), int(record["bytes"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{self.record}: unreadable checkpoint ({exc}); {remedy}") from exc
        if not restart.is_file() or not self.frames_path.is_file() or self.frames_path.stat().st_size < size:
            raise InputError(f"{self.record}: its restart file or frames are missing or short; {remedy}")
        with open(self.frames_path, "r+b") as fh:
            fh.truncate(size)  # drop frames appended after the checkpoint
        frames = _read_frames(self.frames_path, remedy)
        if len(frames) != n_frames:
            raise InputError(f"{self.frames_path}: {len(frames)} frames, checkpoint says {n_frames}; {remedy}")
        self.written = n_frames
        return restart, frames

    def save(self, md: _LJSession, frames: list[dict[str, Any]]) -> None:
        """Append the new frames, write a restart of the current state, then the record naming both."""
        mode = "a" if self.written else "w"
        with open(self.frames_path, mode) as fh:
            ase.io.write(fh, [_frame_atoms(f, self.system, self.info) for f in frames[self.written :]], "extxyz")
            fh.flush()
            os.fsync(fh.fileno())
        self.written = len(frames)
        restart = self.workdir / f"{self.prefix}{frames[-1]['step']}.restart"
        with atomic_path(restart) as tmp:
            md.lmp.command(f'write_restart "{tmp}"')
        record = {
            "fingerprint": self.fingerprint,
            "restart": restart.name,
            "nve_step": frames[-1]["step"],
            "frames": len(frames),
            "bytes": self.frames_path.stat().st_size,
        }
        with atomic_path(self.record) as tmp:
            tmp.write_text(json.dumps(record, indent=1))
        self._remove_restarts(keep=restart)
        pause_after_save(self.record)  # a no-op outside the interruption tests

    def _remove_restarts(self, keep: Path | None = None) -> None:
        for path in self.workdir.glob(f"{self.prefix}*.restart"):
            if path != keep:
                path.unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove this run's checkpoint files (after the output is complete)."""
        self.record.unlink(missing_ok=True)
        self.frames_path.unlink(missing_ok=True)
        self._remove_restarts()


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
        ckpt = _Checkpoint(Path(workdir), out, _fingerprint(system, protocol, seed), info, system)
    resume = ckpt.load(progress) if ckpt is not None else None
    n_intervals = protocol.nve_steps // protocol.save_every

    def on_chunk(frames: list[dict[str, Any]], last: bool) -> None:
        if ckpt is not None and not last:
            ckpt.save(md, frames)
        _report(progress, _frame_message("nve", frames[-1]["step"], protocol.nve_steps, frames[-1]))

    with _LJSession(system) as md:
        if resume is None:
            md.build_lattice(protocol.dt)
            md.thermalise(seed)
            _run_npt(md, protocol.npt_steps, progress)
            md.start_nve()
            md.run(0)
            frames = [md.frame()]
            if ckpt is not None:
                ckpt.save(md, frames)
            _report(progress, _frame_message("nve", 0, protocol.nve_steps, frames[0]))
        else:
            restart, frames = resume
            _report(progress, f"resuming from {restart} at NVE step {frames[-1]['step']}")
            md.read_restart(restart, protocol.dt)
            md.nve()
        _run_nve_frames(md, frames, n_intervals, protocol.save_every, on_chunk)
    with atomic_path(out) as tmp:
        ase.io.write(tmp, [_frame_atoms(f, system, info) for f in frames], format="extxyz")
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
    with _LJSession(system) as md:
        md.build_state(positions, cell, protocol.dt)
        if shift:
            md.lmp.command("pair_modify shift yes")
        md.set_momenta(momenta)
        md.nve()
        md.run(0)
        frames = [md.frame()]
        _report(progress, _frame_message("nve", 0, steps, frames[0]))

        def on_chunk(frames: list[dict[str, Any]], last: bool) -> None:
            _report(progress, _frame_message("nve", frames[-1]["step"], steps, frames[-1]))

        _run_nve_frames(md, frames, steps // save_every, save_every, on_chunk)
    return _stack(frames)


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
    lengths = _cell_lengths(cell)
    energies = np.empty(len(positions))
    if len(positions) == 0:
        return energies
    with _LJSession(system) as md:
        md.build_state(positions[0], lengths, dt=1.0)
        md.lmp.command("thermo_style custom step pe")  # no virial needed
        if shift:
            md.lmp.command("pair_modify shift yes")
        for k, frame in enumerate(positions):
            if k:
                md.set_positions(frame, lengths)
            md.run(0)
            energies[k] = md.thermo("pe")
    return energies
