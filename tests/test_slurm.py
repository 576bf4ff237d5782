"""The SLURM profile on a real SLURM: a single-node cluster started here runs the test preset.

tests/slurm_cluster.py starts munged, slurmctld and slurmd on this host (one node, a CPU
partition, the default, and a GPU partition named as in profiles/slurm; the node declares two
fake GPUs so `--gpus=1` is schedulable). In a copy of the repository,
`snakemake --profile profiles/slurm` then runs a few-body figure (one body, Fig. 4) and an
atomistic table (aluminium's Table 1 with the EAM, and its figure) of the `test` preset through
sbatch; aluminium is the cheaper atomistic target here, and its MLIP rules ask for no GPU with
the EAM while its model rollouts do. While it works, one model rollout is cancelled with
scancel, and so is the retry the profile's `retries: 1` submits: the first run fails; the
same command again completes. Checked from the jobs SLURM ran (`scontrol show job`) and from
Snakemake's own record of each job (rule, wildcards, resources, SLURM job id): every job went
through sbatch with its memory, time and CPUs; every job that asked for a GPU ran on the GPU
partition with a GPU allocated, every other one on the CPU partition; the plugin's per-job
SLURM logs and the rules' logs exist.

Skipped where SLURM is not installed or not run as root; CI installs it (.ci/run).
"""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import slurm_cluster
from conftest import copy_repo, terminate_group
from slurm_cluster import CPU_PARTITION, GPU_PARTITION

pytestmark = pytest.mark.slurm

FEW_BODY = ("figures/one_body.pdf", "figures/one_body.png")
ATOMISTIC = ("results/aluminium/table1.csv", "figures/aluminium.pdf", "figures/aluminium.png")
TARGETS = (FEW_BODY[0], ATOMISTIC[0], ATOMISTIC[1])  # Table 1 and its figure are separate rules
# cancelled while it runs, and again when retried: the first run fails, the second finishes it
CANCELLED_RULE, CANCELLED_WILDCARDS = "rollout", "one_body_symplectic_k2"
CANCELLED_OUTPUT = "results/one_body/rollouts/symplectic_k2.npz"
# What this cluster needs on top of the profile: no accounting here, so job states come from
# squeue; keep the SLURM logs of successful jobs to check them; poll every second at first.
SLURM_FLAGS = (
    "--slurm-status-command",
    "squeue",
    "--slurm-keep-successful-logs",
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--keep-going",
)


def command(cluster, *extra):
    """The profile's command; targets and options before --config (it swallows what follows)."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        "profiles/slurm",
        *TARGETS,
        *SLURM_FLAGS,
        # md_train asks for 4 threads; this node may have fewer CPUs (a site's nodes have more)
        "--max-threads",
        str(cluster.cpus),
        *extra,
        "--config",
        "preset=test",
    ]


def parse_run(text):
    """Snakemake's record of a run: its SLURM run id, each job (rule, wildcards, log, resources), submissions."""
    run_id = re.search(r"SLURM run ID: (\S+)", text)
    assert run_id, f"snakemake did not start the SLURM executor:\n{text[-4000:]}"
    run_id = run_id.group(1)
    jobs = {}
    for match in re.finditer(r"^(local)?rule (\w+):\n((?: {4}.*\n)+)", text, re.M):
        fields = dict(re.findall(r"^ {4}(\w+): (.*)$", match.group(3), re.M))
        resources = dict(item.split("=", 1) for item in fields.get("resources", "").split(", ") if "=" in item)
        jobs[fields["jobid"]] = {
            "rule": match.group(2),
            "local": bool(match.group(1)),
            "wildcards": fields.get("wildcards", ""),
            "rule_log": fields.get("log"),
            "resources": resources,
        }
    submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.$", text, re.M)
    return {
        "run_id": run_id,
        "jobs": jobs,
        "submitted": [{"slurm_id": s, "slurm_log": Path(log), **jobs[j]} for j, s, log in submitted],
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = slurm_cluster.unavailable()
    if reason:
        pytest.skip(reason)
    cluster = slurm_cluster.Cluster(tmp_path_factory.mktemp("slurm_cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    work = copy_repo(tmp_path_factory.mktemp("slurm_workflow"))
    comment = f"rule_{CANCELLED_RULE}_wildcards_{CANCELLED_WILDCARDS}"
    started = time.monotonic()
    log = open(work / "first_run.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(command(cluster), cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    cancelled, output_seen = [], False
    try:
        deadline = time.monotonic() + 600
        while len(cancelled) < 2 and proc.poll() is None and time.monotonic() < deadline:
            for job_id, job in cluster.jobs().items():
                # mid-way: running for at least 2 s (its output is written only at the end)
                if job.get("Comment") == comment and job["JobState"] == "RUNNING" and job_id not in cancelled:
                    if job["RunTime"] >= "00:00:02":
                        output_seen |= (work / CANCELLED_OUTPUT).exists()
                        slurm_cluster.cancel(job_id)
                        cancelled.append(job_id)
            time.sleep(0.5)
        first_rc = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            terminate_group(proc)
            proc.wait(timeout=60)
        log.close()
    first_wall = time.monotonic() - started
    output_after_first = (work / CANCELLED_OUTPUT).exists()
    second = subprocess.run(command(cluster), cwd=work, capture_output=True, text=True, timeout=600)
    (work / "second_run.log").write_text(second.stdout + second.stderr)
    total_wall = time.monotonic() - started
    dry = subprocess.run(command(cluster, "-n"), cwd=work, capture_output=True, text=True, timeout=300)
    first_text = (work / "first_run.log").read_text()
    print(f"\nslurm test: first run {first_wall:.0f} s, both runs {total_wall:.0f} s")
    return {
        "work": work,
        "first_rc": first_rc,
        "first_text": first_text,
        "first": parse_run(first_text),
        "second_rc": second.returncode,
        "second_text": second.stdout + second.stderr,
        "second": parse_run(second.stdout + second.stderr),
        "dry": dry.stdout + dry.stderr,
        "cancelled": cancelled,
        "output_seen_before_cancel": output_seen,
        "output_after_first": output_after_first,
        "slurm_jobs": cluster.jobs(),
        "cluster": cluster,
    }


def submitted(runs):
    return runs["first"]["submitted"] + runs["second"]["submitted"]


def test_the_same_command_finishes_the_figures(runs):
    assert runs["second_rc"] == 0, runs["second_text"][-4000:]
    for path in FEW_BODY + ATOMISTIC:
        assert (runs["work"] / path).stat().st_size > 0, path
    assert "Nothing to be done" in runs["dry"], runs["dry"][-2000:]


def test_every_job_went_through_sbatch_with_its_logs(runs):
    slurm_jobs = runs["slurm_jobs"]
    for run in ("first", "second"):
        record = runs[run]
        remote = {job["rule"] for job in record["jobs"].values() if not job["local"]}
        assert remote, f"the {run} run had no job for SLURM"
        # every job of a rule that is not a local rule was submitted, as a job of this run
        assert {job["rule"] for job in record["submitted"]} == remote
        assert {slurm_jobs[job["slurm_id"]]["JobName"] for job in record["submitted"]} == {record["run_id"]}
    for job in submitted(runs):
        slurm = slurm_jobs[job["slurm_id"]]
        # the plugin's per-job log (kept with --slurm-keep-successful-logs), under the rule's name
        assert Path(slurm["StdOut"]) == job["slurm_log"] and job["slurm_log"].is_file(), job
        assert job["slurm_log"].parent.parent.name == f"rule_{job['rule']}"
        if slurm["JobState"] == "COMPLETED":
            # and the rule's own log
            assert (runs["work"] / job["rule_log"]).is_file(), job


def test_gpu_jobs_ran_on_the_gpu_partition_and_the_others_on_the_cpu_one(runs):
    placed = {GPU_PARTITION: set(), CPU_PARTITION: set()}
    for job in submitted(runs):
        slurm = runs["slurm_jobs"][job["slurm_id"]]
        gpu = int(job["resources"].get("gpu", 0))
        where = f"{job['rule']} {job['wildcards']} (gpu={gpu}, SLURM job {job['slurm_id']})"
        if gpu:
            assert slurm["Partition"] == GPU_PARTITION, where
            assert slurm.get("TresPerJob") == f"gres:gpu:{gpu}", where
        else:
            assert slurm["Partition"] == CPU_PARTITION, where
            assert "gpu" not in slurm.get("TresPerJob", ""), where
        placed[slurm["Partition"]].add(job["rule"])
    # the few-body and the atomistic chain both: training and model rollouts on the GPU partition
    assert {"train", "md_train", "rollout", "mlip_rollout"} <= placed[GPU_PARTITION], placed
    assert {"reference", "dataset", "md_dataset"} <= placed[CPU_PARTITION], placed
    # rules that ask for a GPU only sometimes, on the CPU partition when they do not: VV reference
    # rollouts, and the MLIP rules with the EAM (with PET-MAD they ask for one)
    assert {"rollout", "mlip_rollout", "mlip_ramp", "mlip_structure"} <= placed[CPU_PARTITION], placed


def slurm_time(minutes):
    days, rest = divmod(int(minutes), 24 * 60)
    clock = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{clock}" if days else clock


def test_resources_reach_slurm(runs):
    cpus = runs["cluster"].cpus
    seen = set()
    for job in submitted(runs):
        slurm = runs["slurm_jobs"][job["slurm_id"]]
        where = f"{job['rule']} {job['wildcards']}"
        assert slurm["MinMemoryNode"] == f"{job['resources']['mem_mb']}M", where
        assert slurm["TimeLimit"] == slurm_time(job["resources"]["runtime"]), where
        seen.add((job["rule"], slurm["MinMemoryNode"], slurm["TimeLimit"], slurm["NumCPUs"]))
    # the rules' own numbers: md_train asks for 4 threads (capped by --max-threads to this node), 8 GB, 12 h
    assert ("md_train", "8000M", "12:00:00", str(min(4, cpus))) in seen, seen
    assert ("train", "4000M", "04:00:00", "1") in seen, seen


def test_a_cancelled_job_is_retried_then_resumed_by_the_same_command(runs):
    comment = f"rule_{CANCELLED_RULE}_wildcards_{CANCELLED_WILDCARDS}"
    jobs = runs["slurm_jobs"]
    assert len(runs["cancelled"]) == 2, runs["first_text"][-4000:]
    first_id, retry_id = runs["cancelled"]
    for job_id in runs["cancelled"]:
        assert jobs[job_id]["JobState"] == "CANCELLED" and jobs[job_id]["Comment"] == comment
        assert jobs[job_id]["JobName"] == runs["first"]["run_id"]
        # SLURM's log of a failed job is kept
        assert Path(jobs[job_id]["StdOut"]).is_file()
    # the retry (profile: retries 1) was submitted by Snakemake itself, for the same job
    first_run = {job["slurm_id"]: job for job in runs["first"]["submitted"]}
    assert first_run[first_id]["wildcards"] == first_run[retry_id]["wildcards"]
    assert not runs["output_seen_before_cancel"] and not runs["output_after_first"]
    assert runs["first_rc"] != 0
    assert f"SLURM-job '{retry_id}' failed, SLURM status is: 'CANCELLED'" in runs["first_text"]
    # the second run ran that job once more, and only what depends on it was left to do
    done = [job for job in runs["second"]["submitted"] if job["rule"] == CANCELLED_RULE]
    assert [jobs[job["slurm_id"]]["JobState"] for job in done] == ["COMPLETED"]
    assert (runs["work"] / CANCELLED_OUTPUT).stat().st_size > 0
