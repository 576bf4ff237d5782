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


def copy_repo(dest: Path) -> Path:
    """A copy of the workflow (what `snakemake` needs, no results) in ``dest``, for end-to-end tests."""
    import shutil

    for name in REPO_FILES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest
