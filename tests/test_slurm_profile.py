"""profiles/slurm places every job that asks for a GPU on the GPU partition (fast, no SLURM needed).

Finds every rule of the workflow whose resources declare `gpu` (a number, or an input function
that returns 0 or 1), makes the job the profile turns it into (default-resources, the rule's
resources, set-resources, threads) and asks the SLURM executor plugin itself where it submits
it: `Executor.get_partition_arg` with the profile's partition file, as `sbatch` gets it. A job
with gpu=1 must land on the GPU partition whatever its rule, so the next GPU rule cannot be
forgotten; with gpu=0 (an MLIP rule with the EAM, a reference rollout) on the CPU partition.
Partition names: those of the test cluster (tests/slurm_cluster.py), which must be the profile's.
"""

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import copy_repo
from slurm_cluster import CPU_PARTITION, GPU_PARTITION, ROOT
from snakemake_executor_plugin_slurm import Executor
from snakemake_executor_plugin_slurm.partitions import read_partition_file
from snakemake_executor_plugin_slurm.submit_string import get_submit_command
from snakemake_executor_plugin_slurm.utils import set_gres_string

# ACTIONMD_SLURM_PROFILE: check another profile directory (e.g. an older one) with the same tests
PROFILE = Path(os.environ.get("ACTIONMD_SLURM_PROFILE", ROOT / "profiles" / "slurm"))
RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]


def rules():
    """name -> {"threads": int, "resources": {key: literal int or the name of an input function}}."""
    found = {}
    for path in RULE_FILES:
        text = path.read_text()
        starts = list(re.finditer(r"^rule (\w+):", text, re.M))
        ends = [m.start() for m in starts[1:]] + [len(text)] * bool(starts)
        for match, end in zip(starts, ends, strict=True):
            block = text[match.end() : end]
            threads = re.search(r"^ {4}threads: (\d+)", block, re.M)
            resources = re.search(r"^ {4}resources:\n((?: {8}.*\n)+)", block, re.M)
            items = re.findall(r"^ {8}(\w+)=(.+?),?$", resources.group(1), re.M) if resources else []
            found[match.group(1)] = {
                "threads": int(threads.group(1)) if threads else 1,
                "resources": {k: int(v) if v.isdigit() else v for k, v in items},
                "mentions_gpu": bool(re.search(r"\bgpu\s*=", block)),
            }
    return found


RULES = rules()
GPU_RULES = sorted(name for name, rule in RULES.items() if "gpu" in rule["resources"])


class Resources(dict):
    """job.resources as the plugin reads it: .get() and attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def profile():
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def job(rule, gpu):
    """The job the profile makes of `rule` when its gpu resource evaluates to `gpu`."""
    config = profile()
    declared = {**RULES[rule]["resources"], "gpu": gpu}
    # Snakemake's precedence: default-resources < the rule's resources < set-resources
    resources = Resources(
        {**config.get("default-resources", {}), **declared, **config.get("set-resources", {}).get(rule, {})}
    )
    return SimpleNamespace(
        name=rule, rule=SimpleNamespace(name=rule), threads=RULES[rule]["threads"], resources=resources, wildcards={}
    )


def executor():
    """What Executor.get_partition_arg reads of the plugin's executor, set up from this profile."""
    partition_file = profile().get("slurm-partition-config")
    return SimpleNamespace(
        _partitions=read_partition_file(PROFILE / partition_file) if partition_file else None,
        # a cluster's default partition (what the plugin's `sinfo` fallback finds): the CPU one
        _fallback_partition=CPU_PARTITION,
        logger=logging.getLogger("slurm-profile-test"),
    )


def partition_of(job):
    """The partition the plugin passes to sbatch (`-p <name>`) for this job."""
    arg = Executor.get_partition_arg(executor(), job)
    return arg.split("-p", 1)[1].strip().strip("'") if arg else None


def test_the_workflow_has_gpu_rules():
    # a check on the rule parser: the rules known to ask for a GPU are found, and no rule
    # mentions `gpu=` in a form the parser missed
    assert {"train", "md_train", "rollout", "md_rollout", "mlip_rollout", "mlip_ramp"} <= set(GPU_RULES)
    assert sorted(name for name, rule in RULES.items() if rule["mentions_gpu"]) == GPU_RULES


@pytest.mark.parametrize("rule", GPU_RULES)
def test_a_job_asking_for_a_gpu_goes_to_the_gpu_partition(rule):
    assert partition_of(job(rule, 1)) == GPU_PARTITION, (
        f"rule {rule} declares gpu; with gpu=1 the profile {PROFILE} submits it to partition "
        f"{partition_of(job(rule, 1))!r}, not {GPU_PARTITION!r}"
    )


@pytest.mark.parametrize("rule", sorted(name for name in GPU_RULES if isinstance(RULES[name]["resources"]["gpu"], str)))
def test_a_job_asking_for_no_gpu_stays_on_the_cpu_partition(rule):
    # rules whose gpu is an input function (MLIP rules with the EAM, VV reference rollouts: 0)
    assert partition_of(job(rule, 0)) == CPU_PARTITION


@pytest.mark.parametrize("rule", sorted(set(RULES) - set(GPU_RULES)))
def test_rules_without_gpu_stay_on_the_cpu_partition(rule):
    assert partition_of(job(rule, 0)) == CPU_PARTITION


def test_the_sbatch_call_of_a_gpu_job():
    # the whole submission the plugin builds for a GPU job of an MLIP rule (PET-MAD: gpu=1)
    gpu_job = job("mlip_ramp", 1)
    params = {
        "run_uuid": "run",
        "slurm_logfile": "log",
        "comment_str": "rule_mlip_ramp",
        "account": "",
        "partition": Executor.get_partition_arg(executor(), gpu_job),
        "workdir": "/work",
    }
    settings = SimpleNamespace(requeue=False, no_requeue=False, qos=None, reservation=None)
    call = get_submit_command(gpu_job, params, settings=settings) + set_gres_string(gpu_job)
    assert f"-p {GPU_PARTITION}" in call and "--gpus=1" in call
    assert "--mem 4000" in call and "-t 1440" in call


def test_the_partition_file_names_the_test_clusters_partitions():
    """The profile's partitions are the ones tests/slurm_cluster.py starts (rename both together)."""
    config = profile()
    assert "slurm_partition" not in config.get("default-resources", {}), (
        "a default slurm_partition overrides the plugin's choice by resources: GPU jobs would go there"
    )
    partitions = yaml.safe_load((PROFILE / config["slurm-partition-config"]).read_text())["partitions"]
    assert partitions[CPU_PARTITION].get("max_gpu", 0) == 0
    assert partitions[GPU_PARTITION]["max_gpu"] >= 1


def test_the_workflow_profile_has_the_same_default_resources():
    """Snakemake loads profiles/default (the workflow profile) on top of `--profile profiles/slurm`, and
    its default-resources replace the profile's whole block: the account and the defaults the rules
    leave out (mem_mb, runtime) must be the same in both, or a SLURM run would not get this profile's."""
    workflow_profile = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    defaults = profile().get("default-resources", {})
    assert {"mem_mb", "runtime", "slurm_account"} <= set(defaults)
    assert workflow_profile.get("default-resources") == defaults


def test_snakemake_loads_the_profile_from_another_directory(tmp_path):
    """The partition file is found relative to the profile (a dry run validates the plugin's settings)."""
    copy_repo(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--profile", str(PROFILE), "figures/one_body.pdf"]
        + ["--config", "preset=test"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "gpu=1" in out and "gpu=0" in out
