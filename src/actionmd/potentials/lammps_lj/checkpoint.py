"""The checkpoint of an interrupted reference run, so the next call resumes its NVE phase.

A checkpoint of :func:`run_reference` writing ``<out>`` lives in its
``workdir`` as three files:

* ``<out>.nve<step>.restart``: a LAMMPS binary restart of the state at that
  NVE step (box, atoms, velocities, image flags, pair coefficients; metal
  units, as LAMMPS keeps them);
* ``<out>.partial.extxyz``: the NVE frames so far, appended chunk by chunk in
  the output's own format (ASE units: A, eV, fs, (eV u)^(1/2));
* ``<out>.checkpoint.json``: the record, written last and atomically, naming
  the restart file and how many frames and bytes of the partial file belong to
  it, with the fingerprint of the arguments (system, protocol, seed) that
  determine the trajectory.

A crash at any point thus leaves a consistent checkpoint, the previous one or
the new one; one written for other arguments is ignored. The generic
:class:`actionmd.io.checkpoint.LoopCheckpoint` (one pickled Python state beside
the output) does not fit here: the state is LAMMPS' own restart file, and the
frames grow by appending rather than rewriting.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ase.io

from actionmd.io import InputError, atomic_path
from actionmd.io.checkpoint import fingerprint, pause_after_save
from actionmd.potentials.lammps_lj.frames import Progress, frame_atoms, read_frames, report
from actionmd.potentials.lammps_lj.session import LJSession
from actionmd.potentials.lammps_lj.system import LJArgon, MDProtocol

CHECKPOINT_VERSION = 1


def run_fingerprint(system: LJArgon, protocol: MDProtocol, seed: int) -> str:
    """sha256 (64 hex digits) of everything that determines the trajectory: system, protocol and seed."""
    key = {"version": CHECKPOINT_VERSION, "system": asdict(system), "protocol": asdict(protocol), "seed": seed}
    return fingerprint(key, length=64)


class ReferenceCheckpoint:
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
                report(progress, f"ignoring checkpoint {self.record}: written for other arguments")
                return None
            restart, n_frames, size = self.workdir / record["restart"], int(record["frames"]), int(record["bytes"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{self.record}: unreadable checkpoint ({exc}); {remedy}") from exc
        if not restart.is_file() or not self.frames_path.is_file() or self.frames_path.stat().st_size < size:
            raise InputError(f"{self.record}: its restart file or frames are missing or short; {remedy}")
        with open(self.frames_path, "r+b") as fh:
            fh.truncate(size)  # drop frames appended after the checkpoint
        frames = read_frames(self.frames_path, remedy)
        if len(frames) != n_frames:
            raise InputError(f"{self.frames_path}: {len(frames)} frames, checkpoint says {n_frames}; {remedy}")
        self.written = n_frames
        return restart, frames

    def save(self, md: LJSession, frames: list[dict[str, Any]]) -> None:
        """Append the new frames, write a restart of the current state, then the record naming both."""
        mode = "a" if self.written else "w"
        with open(self.frames_path, mode) as fh:
            ase.io.write(fh, [frame_atoms(f, self.system, self.info) for f in frames[self.written :]], "extxyz")
            fh.flush()
            os.fsync(fh.fileno())
        self.written = len(frames)
        restart = self.workdir / f"{self.prefix}{frames[-1]['step']}.restart"
        with atomic_path(restart) as tmp:
            md.write_restart(tmp)
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
