"""Checkpoints of long loops (MD and rollouts), so an interrupted job resumes where it stopped.

A :class:`LoopCheckpoint` lives beside the output it belongs to, as a hidden file
``.<output name>.ckpt``; Snakemake neither declares nor deletes it, so it survives a
failed or killed job. The loop saves its whole state (step, positions, momenta,
random-generator states, the frames kept so far) there:

* every ``ACTIONMD_CHECKPOINT_SECONDS`` seconds of wall time (default 300: a lost
  node or a pre-empted SLURM job costs at most that), checked between steps;
* at once when the job gets SIGTERM (SLURM's pre-emption and time limit, Snakemake
  cancelling a job) or SIGINT (Ctrl-C): the signal only raises a flag, the loop
  finishes its current step, saves and stops with :class:`Interrupted`; a second
  signal stops at once.

The next run of the same job (same configuration and same input files: the
checkpoint carries a fingerprint of both, and one of another configuration is
discarded with a log line) restores the state and continues. The random generators
are restored with everything else, so a resumed run gives the same frames as an
uninterrupted one, bit for bit on the same machine and thread count; only the wall
time differs. The checkpoint is removed once the output is written.

Objects whose state a loop needs (thermostats, barostats, integrators) expose
``checkpoint_state()`` returning picklable data and ``restore_state(state)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from actionmd.io import atomic_path

log = logging.getLogger(__name__)

ENV_SECONDS = "ACTIONMD_CHECKPOINT_SECONDS"
DEFAULT_SECONDS = 300.0
FORMAT = 1
# for the tests that interrupt a job mid-way: after its N-th checkpoint the job writes
# "<checkpoint>.paused" and waits (at most PAUSE_SECONDS) for the signal the test sends
ENV_PAUSE = "ACTIONMD_PAUSE_AFTER_SAVES"
PAUSE_SECONDS = 300.0
_saves = 0


class Interrupted(KeyboardInterrupt):
    """The job was asked to stop (SIGTERM or SIGINT) and saved its checkpoint first."""


def file_digest(path: str | os.PathLike) -> bytes:
    """sha256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def fingerprint(settings: Any, inputs: Sequence[str | os.PathLike | None] = (), length: int = 20) -> str:
    """Hash (hex, ``length`` digits) of the settings (JSON-able) and of the contents of the input files given.

    Also the key of metatrain work folders (:mod:`actionmd.atomistic.training`, 16 digits).
    """
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in inputs:
        if path is not None:
            h.update(file_digest(path))
    return h.hexdigest()[:length]


def _pause_count(path: Path) -> int:
    """N of ``$ACTIONMD_PAUSE_AFTER_SAVES`` for the job whose checkpoint is ``path``: "N" for every job,
    or "out1.npz=N1,out2.extxyz=N2" per output file name."""
    value = os.environ.get(ENV_PAUSE, "").strip()
    if not value:
        return 0
    if "=" not in value:
        return int(value)
    name = path.name.removeprefix(".").removesuffix(".ckpt").removesuffix(".checkpoint.json")
    counts = dict(item.split("=") for item in value.split(","))
    return int(counts.get(name, 0))


def pause_after_save(path: Path, stopped=lambda: False) -> None:
    """Test hook (``$ACTIONMD_PAUSE_AFTER_SAVES``): after the N-th checkpoint of this job, wait for a signal.

    Writes ``<path>.paused`` so a test knows the job is mid-way with a checkpoint on disk, then
    sleeps until ``stopped()`` (a handled signal) or a signal's exception ends the wait. Unset, it
    does nothing.
    """
    global _saves
    wanted = _pause_count(path)
    if wanted <= 0:
        return
    _saves += 1
    if _saves != wanted:
        return
    path.with_name(path.name + ".paused").write_text(f"{os.getpid()}\n")
    deadline = time.monotonic() + PAUSE_SECONDS
    while not stopped() and time.monotonic() < deadline:
        time.sleep(0.05)


def state_of(obj: Any) -> Any:
    """``obj.checkpoint_state()``, or None for objects without state."""
    return obj.checkpoint_state() if hasattr(obj, "checkpoint_state") else None


def restore(obj: Any, state: Any) -> None:
    """``obj.restore_state(state)`` for objects with state."""
    if hasattr(obj, "restore_state"):
        obj.restore_state(state)


class LoopCheckpoint:
    """The checkpoint of the job writing ``output``; ``key`` is the job's :func:`fingerprint`.

    ``every`` (s) overrides ``$ACTIONMD_CHECKPOINT_SECONDS``; 0 saves at every chance.
    """

    def __init__(self, output: str | os.PathLike, key: str, every: float | None = None) -> None:
        output = Path(output)
        self.path = output.parent / f".{output.name}.ckpt"
        self.key = key
        self.every = float(os.environ.get(ENV_SECONDS, DEFAULT_SECONDS)) if every is None else float(every)
        self._last = time.monotonic()
        self._signal: int | None = None

    @classmethod
    def for_job(
        cls, output: str | os.PathLike, settings: Any, inputs: Sequence[str | os.PathLike | None] = ()
    ) -> LoopCheckpoint:
        """The checkpoint of the job writing ``output`` with these settings (JSON-able) and input files."""
        return cls(output, fingerprint(settings, inputs))

    # -- reading and writing -----------------------------------------------------------

    def load(self) -> dict[str, Any] | None:
        """The saved state of this same job, or None (no file, another configuration, unreadable)."""
        if not self.path.is_file():
            return None
        try:
            with open(self.path, "rb") as fh:
                saved = pickle.load(fh)
        except Exception as exc:  # a file from an older version or a disk error: start over, say so
            log.warning("checkpoint %s unreadable (%s): starting from the beginning", self.path, exc)
            return None
        if not isinstance(saved, dict) or saved.get("format") != FORMAT or saved.get("key") != self.key:
            log.warning("checkpoint %s belongs to other settings or inputs: starting from the beginning", self.path)
            return None
        log.info("resuming from checkpoint %s (%s)", self.path, saved.get("where", ""))
        return saved["state"]

    def save(self, state: dict[str, Any], where: str = "") -> None:
        """Write ``state`` atomically (a kill while writing leaves the previous checkpoint)."""
        with atomic_path(self.path) as tmp, open(tmp, "wb") as fh:
            pickle.dump({"format": FORMAT, "key": self.key, "where": where, "state": state}, fh, protocol=4)
        self._last = time.monotonic()
        log.info("checkpoint saved (%s)", where)
        pause_after_save(self.path, lambda: self.stop_requested)

    def remove(self) -> None:
        """Delete the checkpoint (once the output is complete)."""
        self.path.unlink(missing_ok=True)

    # -- when to save --------------------------------------------------------------------

    @property
    def stop_requested(self) -> bool:
        return self._signal is not None

    def due(self) -> bool:
        """True when the interval has passed or a stop was requested."""
        return self.stop_requested or time.monotonic() - self._last >= self.every

    def maybe_save(self, state_fn, where: str = "") -> None:
        """Save ``state_fn()`` when :meth:`due`; after a stop request, save and raise :class:`Interrupted`."""
        if not self.due():
            return
        self.save(state_fn(), where)
        if self.stop_requested:
            raise Interrupted(f"stopped by signal {self._signal} at {where}; the checkpoint {self.path} resumes it")

    @contextlib.contextmanager
    def guard(self) -> Iterator[LoopCheckpoint]:
        """Within the block, SIGTERM and SIGINT ask for a save-and-stop at the next chance.

        A second signal raises :class:`KeyboardInterrupt` at once. Outside the main thread
        (where Python cannot install handlers) the block runs without them.
        """

        def handler(signum, frame):
            if self._signal is not None:
                raise KeyboardInterrupt(f"second signal {signum}")
            self._signal = signum
            log.warning("signal %d: saving a checkpoint after this step, then stopping", signum)

        try:
            previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        except ValueError:  # not the main thread
            yield self
            return
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
