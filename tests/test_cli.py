"""Bad inputs stop a step with a message naming the file, and leave no output."""

import json

from actionmd.cli import main

PHYSICS = {"G": 1.0, "central_mass": 1.0, "masses": [1.0], "q0": [[1.0, 0.0]], "p0": [[0.0, 0.8]]}


def test_missing_model_names_the_file(tmp_path, caplog):
    cfg = {
        "physics": PHYSICS,
        "reference": {"dt": 0.001, "steps": 100},
        "pairing": {"lag": 64},
        "rollout": {"steps": 3},
    }
    out = tmp_path / "roll.npz"
    rc = main(
        [
            "rollout",
            "--method",
            "direct",
            "--config",
            json.dumps(cfg),
            "--direct",
            str(tmp_path / "gone.pt"),
            "--out",
            str(out),
        ]
    )
    assert rc == 2 and "gone.pt" in caplog.text and "not found" in caplog.text
    assert not out.exists()


def test_corrupt_trajectory_names_the_file_and_keeps_finished_outputs(tmp_path, caplog):
    traj = tmp_path / "reference.npz"
    traj.write_bytes(b"PK\x03\x04 truncated")
    out = tmp_path / "dataset.npz"
    out.write_bytes(b"finished earlier")
    cfg = {"pairing": {"lag": 4, "stride": 1, "validation_fraction": 0.0}}
    rc = main(
        ["dataset", "--kind", "direct", "--trajectory", str(traj), "--config", json.dumps(cfg), "--out", str(out)]
    )
    assert rc == 2 and "reference.npz" in caplog.text and "unreadable" in caplog.text
    assert out.read_bytes() == b"finished earlier"


def test_reference_step_writes_a_complete_trajectory(tmp_path):
    out = tmp_path / "ref.npz"
    cfg = {"physics": PHYSICS, "reference": {"dt": 0.001, "steps": 500}}
    assert main(["reference", "--config", json.dumps(cfg), "--out", str(out)]) == 0
    from actionmd.io import load_npz

    data = load_npz(out, required=("q", "p", "energy"))
    assert data["q"].shape == (501, 1, 2) and data["meta"]["max_rel_energy_error"] < 1e-6
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_outputs_get_the_usual_file_permissions(tmp_path):
    import os
    import stat

    from actionmd.io import save_npz

    old = os.umask(0o022)
    try:
        save_npz(tmp_path / "out.npz", x=[1.0])
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "out.npz").stat().st_mode)
    assert mode == 0o644  # not mkstemp's owner-only 0600: results on a shared cluster stay readable


def test_a_job_uses_no_more_threads_than_the_cpus_it_may_run_on():
    """--threads 4 (Snakemake's threads) on a process pinned to one CPU: torch, OpenMP and BLAS get 1."""
    import os
    import subprocess
    import sys

    code = (
        "import os; from actionmd.cli import usable_threads, _limit_threads; n = usable_threads(4); "
        "_limit_threads(n); import torch; print(n, torch.get_num_threads(), os.environ['OMP_NUM_THREADS'])"
    )
    cpu = sorted(os.sched_getaffinity(0))[0]
    pinned = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )
    assert pinned.stdout.split() == ["1", "1", "1"]
    free = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    n = min(4, len(os.sched_getaffinity(0)))
    assert free.stdout.split() == [str(n), str(n), str(n)]
