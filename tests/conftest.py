import os
import signal
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


@pytest.fixture(autouse=True)
def _float64_and_seed():
    torch.manual_seed(1234)
    yield


REPO_FILES = ("Snakefile", "config.yaml", "workflow", "envs", "src", "profiles")

# Simo's initial conditions of the Chenciner-Montgomery figure eight (period 6.32591398, E = -1.2871):
# the configured three-body orbit is this one at some size, and tests that need the orbit at its
# usual size take it from here
SIMO_Q0 = [[0.97000436, -0.24308753], [-0.97000436, 0.24308753], [0.0, 0.0]]
SIMO_P0 = [[0.466203685, 0.43236573], [0.466203685, 0.43236573], [-0.93240737, -0.86473146]]


def copy_repo(dest: Path) -> Path:
    """A copy of the workflow (what `snakemake` needs, no results) in ``dest``, for end-to-end tests."""
    import shutil

    for name in REPO_FILES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


def terminate_group(proc, sig=signal.SIGTERM):
    """Stop a process started with start_new_session=True and its children (by its group id)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
