"""Crash-safe file output and clear errors for unreadable inputs.

Every result file is written to a temporary name beside its destination and
renamed into place only when complete, so a killed job never leaves a
half-written output that looks finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


class InputError(RuntimeError):
    """An input file is missing or unreadable; the message names it and what to do."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the destination's folder; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or "".join(path.suffixes), dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates the file readable by its owner only; give it the permissions of a
        # file created normally (0666 minus the umask) so results can be shared
        if os.path.exists(tmp):
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_npz(path: str | os.PathLike, **arrays: Any) -> None:
    """Write arrays (and JSON-able metadata under ``meta``) atomically to an .npz file."""
    if "meta" in arrays:
        arrays["meta"] = np.array(json.dumps(arrays["meta"]))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def load_npz(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read an .npz written by :func:`save_npz`; a missing or corrupt file raises :class:`InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; run the workflow rule that produces it")
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {k: data[k] for k in data.files}
    except Exception as exc:  # zipfile, pickle and value errors alike
        raise InputError(f"{path}: unreadable ({exc}); delete it and rerun the workflow") from exc
    missing = [k for k in required if k not in out]
    if missing:
        raise InputError(f"{path}: missing arrays {missing}; delete it and rerun the workflow")
    if "meta" in out:
        out["meta"] = json.loads(str(out["meta"]))
    return out


def read_rollouts(paths: list[str | os.PathLike], required: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Rollout files (:func:`save_npz`, method name in ``meta``) keyed by method."""
    out = {}
    for path in paths:
        roll = load_npz(path, required=required)
        out[roll["meta"]["method"]] = roll
    return out
