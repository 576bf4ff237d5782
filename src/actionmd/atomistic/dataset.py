"""metatrain datasets from atomistic reference trajectories.

Each reference run (one extxyz trajectory, unwrapped positions) is paired on its
own with :func:`actionmd.core.pairing.make_pairs`: pairs (x_t, x_{t+lag}) with t
every ``stride`` MD steps. Runs are split, not frames: the first runs train,
the next ``validation_runs`` validate, and the last ``held_out_runs`` never
enter a dataset and give the rollouts' initial conditions.

Files written for metatrain's ASE reader (extxyz, one structure per sample):

* ``direct_{train,val}.extxyz``: positions and ``momenta`` of x_t, arrays
  ``future_positions``/``future_momenta`` of x_{t+lag}; every pair also enters
  time-reversed, (q_{t+lag}, -p_{t+lag}) -> (q_t, -p_t).
* ``symplectic_{train,val}.extxyz``: the midpoint (qbar, pbar) as positions and
  momenta, arrays ``delta_q``/``delta_p`` = (q' - q, p' - p); reversed pairs
  too, at (qbar, -pbar) with increments (-dq, dp).
* ``initial.extxyz``: the rollouts' initial states (:func:`write_initial`), e.g. the
  first frame of each held-out run.
"""

from __future__ import annotations

import json
from pathlib import Path

import ase
import ase.io
import numpy as np

from actionmd.core.pairing import Pairs, make_pairs, with_time_reversal
from actionmd.io import InputError, atomic_path
from actionmd.io.trajectory import Trajectory, read_trajectory, write_frames

KINDS = ("direct", "symplectic")
SPLITS = ("train", "val")


def _frames_per(steps: int, save_every: int, what: str) -> int:
    if steps % save_every:
        raise ValueError(f"pairing {what} ({steps} MD steps) is not a multiple of the saved interval ({save_every})")
    return steps // save_every


def run_pairs(traj: Trajectory, lag: int, stride: int, save_every: int) -> Pairs:
    """Pairs of one run; ``lag``/``stride`` in MD steps, frames saved every ``save_every`` steps."""
    return make_pairs(
        traj.positions,
        traj.momenta,
        _frames_per(lag, save_every, "lag"),
        _frames_per(stride, save_every, "stride"),
    )


def to_atoms(traj: Trajectory, q: np.ndarray, p: np.ndarray, arrays: dict[str, np.ndarray]):
    """ASE atoms of ``traj``'s species, masses and cell at positions ``q`` (A) and momenta ``p``, with ``arrays``."""
    atoms = ase.Atoms(numbers=traj.numbers, positions=q, cell=traj.cell, pbc=True)
    atoms.set_masses(traj.masses)
    atoms.set_momenta(p)
    for key, value in arrays.items():
        atoms.arrays[key] = np.ascontiguousarray(value)
    return atoms


def direct_frames(traj: Trajectory, pairs: Pairs) -> list:
    """Direct-model samples: x_t -> x_{t+lag}, with the time-reversed copies."""
    both = with_time_reversal(pairs)
    return [
        to_atoms(traj, q0, p0, {"future_positions": q1, "future_momenta": p1})
        for q0, p0, q1, p1 in zip(*both.arrays(), strict=True)
    ]


def symplectic_frames(traj: Trajectory, pairs: Pairs) -> list:
    """Generating-function samples: midpoint inputs, (dq, dp) targets, with reversed pairs."""
    both = with_time_reversal(pairs)
    qbar, pbar = both.midpoint()
    dq, dp = both.increments()
    return [to_atoms(traj, q, p, {"delta_q": a, "delta_p": b}) for q, p, a, b in zip(qbar, pbar, dq, dp, strict=True)]


def split_runs(n_runs: int, validation_runs: int, held_out_runs: int) -> dict[str, list[int]]:
    """Run indices of each split: train first, then validation, then held out."""
    n_train = n_runs - validation_runs - held_out_runs
    if n_train < 1 or validation_runs < 1 or held_out_runs < 1:
        raise ValueError(
            f"{n_runs} runs cannot give >= 1 training, {validation_runs} validation and {held_out_runs} held-out runs"
        )
    runs = list(range(n_runs))
    return {
        "train": runs[:n_train],
        "val": runs[n_train : n_train + validation_runs],
        "held_out": runs[n_train + validation_runs :],
    }


def build_datasets(
    trajectories: list[str | Path],
    lag: int,
    stride: int,
    save_every: int,
    splits: dict[str, list[int]],
    out_dir: str | Path,
) -> dict[str, int]:
    """Write the datasets of both models, ``splits["train"]``/``["val"]`` naming runs; returns sample counts.

    ``splits.json`` records the split (and any other entries of ``splits``, e.g. held-out runs).
    """
    out_dir = Path(out_dir)
    trajs = {run: read_trajectory(trajectories[run]) for split in SPLITS for run in splits[split]}
    counts: dict[str, int] = {}
    for split in SPLITS:
        frames: dict[str, list] = {kind: [] for kind in KINDS}
        for run in splits[split]:
            pairs = run_pairs(trajs[run], lag, stride, save_every)
            if len(pairs) == 0:
                raise ValueError(f"{trajectories[run]}: no pair at lag {lag} steps; lengthen the NVE run")
            frames["direct"] += direct_frames(trajs[run], pairs)
            frames["symplectic"] += symplectic_frames(trajs[run], pairs)
        for kind in KINDS:
            write_frames(out_dir / f"{kind}_{split}.extxyz", frames[kind])
            counts[f"{kind}_{split}"] = len(frames[kind])
    files = {split: [str(trajectories[r]) for r in runs] for split, runs in splits.items()}
    with atomic_path(out_dir / "splits.json") as tmp:
        tmp.write_text(json.dumps({"runs": splits, "files": files, "samples": counts}, indent=2))
    return counts


def write_initial(path: str | Path, states: list, sources: list[str]) -> None:
    """The rollouts' initial states (ASE atoms with momenta), each tagged with the file it came from."""
    frames = []
    for atoms, source in zip(states, sources, strict=True):
        frame = atoms.copy()
        frame.calc = None
        frame.info = {"source": source}
        frames.append(frame)
    write_frames(path, frames)


def species_masses(path: str | Path) -> dict[int, float]:
    """Atomic number -> mass (u) of the atoms in the first frame of an extxyz file."""
    atoms = ase.io.read(path, index=0, format="extxyz")
    return {int(z): float(m) for z, m in zip(atoms.numbers, atoms.get_masses(), strict=True)}


def last_frame(path: str | Path):
    """The last frame of an extxyz trajectory (checked on reading) as ASE atoms with momenta."""
    traj = read_trajectory(path, require_continuous=False)
    return to_atoms(traj, traj.positions[-1], traj.momenta[-1], {})


def split_state_points(n: int, validation_every: int) -> dict[str, list[int]]:
    """Every ``validation_every``-th state point (the last of each group) validates, the rest train."""
    val = [i for i in range(n) if i % validation_every == validation_every - 1]
    train = [i for i in range(n) if i not in val]
    if not train or not val:
        raise InputError(
            f"{n} state points with pairing.validation_every = {validation_every} leave no training or no "
            "validation state point; add state points or change validation_every"
        )
    return {"train": train, "val": val}
