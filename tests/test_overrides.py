"""Changing a preset's value without editing config.yaml: nested --config values and --configfile overrides.

Snakemake reads a nested ``--config`` value with YAML's base loader, so ``solver={mixing: 0.5}``
arrived as the string '0.5' and the schema refused it; a config file given with ``--configfile``
is merged over config.yaml. Both must reach the jobs typed, and a wrong value must still stop the
run naming the key.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_repo

ROOT = Path(__file__).resolve().parents[1]
TARGET = "results/one_body/rollouts/symplectic_converged.npz"
K_TARGET = "results/one_body/rollouts/symplectic_k2.npz"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    work = tmp_path_factory.mktemp("overrides")
    return copy_repo(work)


def dry_run(cwd, *args, config=("preset=test",)):
    cmd = [sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1", *args, "--config", *config]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def test_nested_config_value_reaches_the_job_typed(repo):
    code, out = dry_run(repo, TARGET, config=("preset=test", "solver={mixing: 0.5, anderson: 0}"))
    assert code == 0, out
    assert '"mixing": 0.5' in out and '"anderson": 0' in out  # numbers in the job's JSON, not strings


def test_config_file_override_is_merged_over_config_yaml(repo, tmp_path):
    override = tmp_path / "overrides.yaml"
    override.write_text("solver:\n  mixing: 0.5\n")
    code, out = dry_run(repo, TARGET, "--configfile", str(override))
    assert code == 0, out
    assert '"mixing": 0.5' in out
    assert '"max_iterations":' in out  # the rest of the solver section still comes from config.yaml


def _command(out: str) -> str:
    line = next(line for line in out.splitlines() if "actionmd rollout --method" in line)
    return line[line.index("actionmd rollout") :]


def test_converged_solver_settings_do_not_rerun_the_k_rollouts(repo):
    """A fixed K depends on the mixing only: its job is the same when the converged solve changes."""
    change = "solver={tolerance: 1.0e-6, anderson: 3, converged_mixing: 0.5, preconditioner: free_flight}"
    k2 = [_command(dry_run(repo, K_TARGET, config=("preset=test", *extra))[1]) for extra in ((), (change,))]
    assert k2[0] == k2[1] and '"mixing": 0.3' in k2[0]
    conv = [_command(dry_run(repo, TARGET, config=("preset=test", *extra))[1]) for extra in ((), (change,))]
    assert conv[0] != conv[1] and '"converged_mixing": 0.5' in conv[1]
    code, out = dry_run(repo, K_TARGET, config=("preset=test", "solver={mixing: 0.5}"))
    assert code == 0 and '"mixing": 0.5' in _command(out)


def test_a_wrong_override_still_names_the_key(repo):
    code, out = dry_run(repo, TARGET, config=("preset=test", "solver={mixing: lots}"))
    assert code != 0
    assert "mixing" in out and "lots" in out


def test_oversubscribed_cores_are_reported(repo):
    import os

    cpus = len(os.sched_getaffinity(0))
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", str(cpus + 6), TARGET, "--config", "preset=test"]
    out = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300)
    assert f"--cores {cpus + 6} is more than the {cpus} CPUs" in out.stdout + out.stderr
