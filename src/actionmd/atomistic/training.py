"""Training the paper's two architectures with metatrain (``mtt train``, ``mtt export``).

* direct: ``experimental.flashmd``: (q, p) -> (q', p'), targets ``position``
  and ``momentum`` read from ``future_positions``/``future_momenta``.
* symplectic: ``experimental.flashmd_symplectic``: a scalar S(qbar, pbar)
  whose gradients are the targets ``position`` = dq = dS/dpbar and
  ``momentum`` = dp = -dS/dqbar, read from ``delta_q``/``delta_p``. Both
  targets are scaled by one common weight (they are derivatives of the same S;
  different weights would break the gradient structure). Their loss weights may
  differ (that does not touch the structure): by default each loss is divided by
  its target's mean square, so that position and momentum errors count alike.

The run lives in a work folder (``options.yaml``, metatrain's ``outputs/``
with per-epoch checkpoints, its logs). A rerun with the same options resumes
from the newest readable model checkpoint for the epochs left, on the whole run's
learning-rate schedule (``--restart outputs/.../model_<epoch>.ckpt``;
a run stopped before its first checkpoint starts over); a run with changed options
moves the old outputs aside (never deletes them) and starts over. The exported
model is written to its destination atomically.

Augmentation: metatrain's FlashMD trainers apply a random (possibly improper)
rotation to every sample at every step, as in the SI. Learning-rate schedule:
metatrain's (warm-up then cosine decay over ``epochs``), not the SI's
"halve on a 100-epoch plateau", which metatrain's FlashMD trainers do not offer.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ase.io
import metatomic.torch  # noqa: F401  (registers the TorchScript classes a checkpoint holds)
import numpy as np
import torch
import yaml

from actionmd.architectures import EVEN
from actionmd.atomistic.dataset import species_masses
from actionmd.core.device import pick_device
from actionmd.io import InputError, atomic_path
from actionmd.io.checkpoint import fingerprint
from actionmd.naming import long_step

log = logging.getLogger(__name__)

ARCHITECTURES = {"direct": "experimental.flashmd", "symplectic": "experimental.flashmd_symplectic"}
TARGET_KEYS = {
    "direct": {"position": "future_positions", "momentum": "future_momenta"},
    "symplectic": {"position": "delta_q", "momentum": "delta_p"},
}
UNITS = {"position": "A", "momentum": "(eV*u)^(1/2)"}
# metatrain 2026.4.1 finishes `mtt train` with an evaluation that walks the
# hypers looking for `batch_size` and fails on the integer keys of `masses`
# (AttributeError: 'int' object has no attribute 'lower'), after the model was
# trained and saved. This marker identifies that failure and nothing else.
KNOWN_FINAL_EVAL_BUG = "'int' object has no attribute 'lower'"


def target_mean_squares(dataset: str | Path, kind: str) -> dict[str, float]:
    """Mean square of each target's components over a dataset file."""
    frames = ase.io.read(dataset, ":", format="extxyz")
    return {
        name: float(np.mean(np.concatenate([a.arrays[key] for a in frames]) ** 2))
        for name, key in TARGET_KEYS[kind].items()
    }


def _target(path: str, key: str, name: str) -> dict[str, Any]:
    return {
        "quantity": name,
        "read_from": path,
        "reader": "ase",
        "key": key,
        "unit": UNITS[name],
        "type": {"cartesian": {"rank": 1}},
        "sample_kind": "atom",
        "num_subtargets": 1,
    }


def _dataset(path: Path, kind: str) -> dict[str, Any]:
    return {
        "systems": {"read_from": str(path), "reader": "ase", "length_unit": "A"},
        "targets": {name: _target(str(path), key, name) for name, key in TARGET_KEYS[kind].items()},
    }


def architecture(kind: str, training: dict[str, Any]) -> str:
    """metatrain's name of the architecture of one model kind (``training.even_action``: ours)."""
    if kind == "symplectic" and training.get("even_action", False):
        return EVEN
    return ARCHITECTURES[kind]


def make_options(
    kind: str,
    training: dict[str, Any],
    timestep: float,
    masses: dict[int, float],
    train_set: Path,
    val_set: Path,
    device: str,
) -> dict[str, Any]:
    """metatrain options for one model from the workflow's training settings.

    ``training``: epochs, batch_size, learning_rate, checkpoint_interval, seed,
    precision (32 or 64), model (architecture hypers passed through, shared by
    both kinds), ``direct_model`` (extra hypers of the direct model only, e.g.
    ``predict_momenta_as_difference``), ``symplectic_model`` (extra hypers of S only, e.g. a
    wider ``cutoff``), ``direct_training`` / ``symplectic_training`` (one model's own epochs,
    batch_size or learning_rate, over the shared ones), and for the symplectic model
    ``balance_losses`` and ``even_action`` (true: our architecture whose S is even in every
    atom's momentum by construction, :mod:`actionmd.architectures.flashmd_even`; one model
    evaluation per fixed-point iteration). ``timestep`` in fs (the long step);
    ``masses`` in u by atomic number.
    """
    if kind not in ARCHITECTURES:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {list(ARCHITECTURES)}")
    training = {**training, **training.get(f"{kind}_training", {})}
    trainer: dict[str, Any] = {
        "timestep": float(timestep),
        "masses": {int(z): float(m) for z, m in masses.items()},
        "batch_size": int(training["batch_size"]),
        "num_epochs": int(training["epochs"]),
        "learning_rate": float(training["learning_rate"]),
        "checkpoint_interval": int(training["checkpoint_interval"]),
        "log_interval": 1,
    }
    if kind == "symplectic":
        ms = target_mean_squares(train_set, kind)
        common = float(np.sqrt(ms["position"] + ms["momentum"]))
        trainer["fixed_scaling_weights"] = {"position": common, "momentum": common}
        if training.get("balance_losses", True):
            trainer["loss"] = {
                name: {"type": "mse", "weight": float(ms["momentum"] / ms[name])} for name in ("position", "momentum")
            }
    model = dict(training.get("model", {}))
    model.update(training.get(f"{kind}_model", {}))
    return {
        "device": device,
        "base_precision": int(training.get("precision", 32)),
        "seed": int(training["seed"]),
        "architecture": {"name": architecture(kind, training), "model": model, "training": trainer},
        "training_set": _dataset(train_set, kind),
        "validation_set": _dataset(val_set, kind),
        "test_set": 0.0,
    }


def _epoch(path: Path) -> int:
    """The epoch in a metatrain checkpoint name ``model_<epoch>.ckpt`` (-1 if none)."""
    suffix = path.stem.removeprefix("model_")
    return int(suffix) if suffix.isdigit() else -1


def _checkpoints(workdir: Path) -> list[Path]:
    """metatrain's per-epoch model checkpoints in ``workdir/outputs/<date>/<time>/``, oldest epoch first.

    Only ``model_<epoch>.ckpt``: the same folders hold other ``.ckpt`` files (the scaler's, the
    composition model's) from which training cannot resume; metatrain's own ``--restart auto``
    picks the newest of any kind, and a run interrupted before its first model checkpoint then
    fails on every rerun.
    """
    found = [p for p in (workdir / "outputs").glob("*/*/model_*.ckpt") if _epoch(p) >= 0]
    return sorted(found, key=lambda p: (_epoch(p), p.stat().st_mtime))


def _resume_point(workdir: Path, log) -> Path | None:
    """The newest model checkpoint that loads (a kill while metatrain wrote one leaves it truncated)."""
    for path in reversed(_checkpoints(workdir)):
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
            if not isinstance(checkpoint, dict) or "model_state_dict" not in checkpoint:
                raise ValueError("not a model checkpoint")
        except Exception as exc:
            log(f"skipping unreadable checkpoint {path} ({type(exc).__name__}: {str(exc)[:200]})")
            continue
        return path
    return None


def _prepare_workdir(workdir: Path, fingerprint: str, log) -> bool:
    """Make ``workdir`` ready; True if it holds checkpoints of these same options to resume from."""
    workdir.mkdir(parents=True, exist_ok=True)
    stamp = workdir / "fingerprint.txt"
    old = stamp.read_text().strip() if stamp.is_file() else None
    if old is not None and old != fingerprint and (workdir / "outputs").exists():
        stale = workdir / f"outputs.stale-{old}"
        if stale.exists():
            shutil.rmtree(stale)
        (workdir / "outputs").rename(stale)
        log(f"options or data changed since the last run: previous outputs moved to {stale}")
    stamp.write_text(fingerprint + "\n")
    return bool(_checkpoints(workdir)) and old == fingerprint


def _mtt(args: list[str], cwd: Path, threads: int, log, extra_env: dict[str, str] | None = None) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), **(extra_env or {})}
    # metatrain's own CLI with our architectures registered (actionmd.architectures)
    cmd = [sys.executable, "-m", "actionmd.architectures", *args]
    log("$ mtt " + " ".join(args) + f"   (in {cwd})")
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=sys.stdout, stderr=subprocess.STDOUT, check=False)
    sys.stdout.flush()
    return proc.returncode


def _latest_error(workdir: Path, since: float) -> str:
    logs = [p for p in (workdir / "outputs").glob("*/*/error.log") if p.stat().st_mtime >= since]
    return logs[-1].read_text() if logs else ""


def train(
    kind: str,
    options: dict[str, Any],
    workdir: str | Path,
    out: str | Path,
    threads: int = 1,
    log=print,
) -> None:
    """Run ``mtt train`` in ``workdir`` (resuming if possible), then ``mtt export`` to ``out``."""
    workdir = Path(workdir).resolve()
    out = Path(out).resolve()
    datasets = [Path(options[s]["systems"]["read_from"]) for s in ("training_set", "validation_set")]
    for path in datasets:
        if not path.is_file():
            raise InputError(f"{path}: dataset not found; run the workflow's dataset rule")
    resume = _prepare_workdir(workdir, fingerprint(options, datasets, 16), log)
    options_file = workdir / "options.yaml"
    with atomic_path(options_file) as tmp:
        tmp.write_text(
            f"# written by actionmd for the {kind} model; edit config.yaml, not this file\n"
            + yaml.safe_dump(options, sort_keys=False)
        )
    (workdir / "model.ckpt").unlink(missing_ok=True)
    restart = _resume_point(workdir, log) if resume else None
    if restart is None:
        log("no model checkpoint of these options yet: training from the first epoch")
    final = _train_epochs(options, workdir, threads, log, restart)
    if not final.is_file():
        raise RuntimeError(f"mtt train finished without writing {final}")
    with atomic_path(out) as tmp:
        code = _mtt(["export", str(final), "-o", str(tmp)], workdir, threads, log)
        if code != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            raise RuntimeError(f"mtt export of {final} failed with exit code {code}")
    log(f"exported {out}")


def _train_epochs(options: dict[str, Any], workdir: Path, threads: int, log, restart: Path | None) -> Path:
    """``mtt train`` from scratch, or from ``restart`` for the epochs that remain; the final checkpoint.

    metatrain's ``--restart`` trains ``num_epochs`` more epochs on a schedule rebuilt from that
    number and from step 0 (measured: a water S stopped after epoch 2 of 15 and rerun trained to
    epoch 17, its learning rate warming up again); here it gets ``num_epochs = left`` and the
    whole run's schedule from the epoch it resumes at (:func:`actionmd.architectures.schedule_over`),
    so a resumed run ends where an uninterrupted one ends, at the same learning rate. Adam's
    moments start afresh (metatrain does not load them back for these models). A restart from the
    last epoch's checkpoint has nothing left to train: that checkpoint is the final one.
    """
    final = workdir / "model.ckpt"
    args = ["train", "options.yaml", "-o", "model.pt"]
    env = {}
    if restart is not None:
        epochs = int(options["architecture"]["training"]["num_epochs"])
        left = epochs - _epoch(restart) - 1
        log(f"resuming from {restart} (epoch {_epoch(restart)} of 0..{epochs - 1}: {max(left, 0)} left)")
        if left <= 0:
            return restart
        resumed = {**options, "architecture": {**options["architecture"]}}
        resumed["architecture"]["training"] = {**options["architecture"]["training"], "num_epochs": left}
        with atomic_path(workdir / "options.resume.yaml") as tmp:
            tmp.write_text(
                "# written by actionmd: options.yaml with the epochs left after a restart\n"
                + yaml.safe_dump(resumed, sort_keys=False)
            )
        args = ["train", "options.resume.yaml", "-o", "model.pt", "--restart", str(restart)]
        env["ACTIONMD_SCHEDULE_EPOCHS"] = str(options["architecture"]["training"]["num_epochs"])
        env["ACTIONMD_SCHEDULE_FROM_EPOCH"] = str(_epoch(restart) + 1)
    start = time.time()
    code = _mtt(args, workdir, threads, log, env)
    if code != 0:
        if final.is_file() and KNOWN_FINAL_EVAL_BUG in _latest_error(workdir, start):
            log(
                "note: metatrain's final evaluation failed on the integer keys of `masses` (a known metatrain "
                "2026.4.1 bug, after training and saving); the trained checkpoint is complete: continuing"
            )
        else:
            raise RuntimeError(f"mtt train failed with exit code {code}; see the log above and {workdir}/outputs")
    return final


def train_system(
    kind: str, cfg: dict[str, Any], dataset_dir: str | Path, workdir: str | Path, out: str | Path, threads: int = 1
) -> None:
    """Train and export the ``kind`` model of an atomistic system from its ``md_dataset`` folder (resumes).

    ``cfg``: the system's resolved ``training``, ``pairing``, ``reference`` (for Dt) and ``device``.
    """
    dataset_dir = Path(dataset_dir).resolve()
    options = make_options(
        kind,
        cfg["training"],
        long_step(cfg),
        species_masses(dataset_dir / f"{kind}_train.extxyz"),
        dataset_dir / f"{kind}_train.extxyz",
        dataset_dir / f"{kind}_val.extxyz",
        pick_device(cfg["device"]).type,
    )
    train(kind, options, workdir, out, threads, log.info)
