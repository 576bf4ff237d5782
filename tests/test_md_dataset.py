"""Atomistic trajectories, pairing across periodic boundaries, metatrain datasets and options."""

import ase
import ase.io
import numpy as np
import pytest
import torch

from actionmd.atomistic.dataset import run_pairs, split_runs
from actionmd.atomistic.training import make_options, target_mean_squares
from actionmd.io import InputError
from actionmd.io.trajectory import read_trajectory, write_frames
from actionmd.systems import argon

BOX = 6.0
MASS = 39.948


def drifting_trajectory(path, frames=41, velocity=(0.37, -0.21, 0.05), seed=0, wrap=False, save_every=4):
    """Atoms moving at constant velocity (A per saved frame), crossing the box many times."""
    rng = np.random.default_rng(seed)
    q0 = rng.uniform(0, BOX, (5, 3))
    v = np.asarray(velocity) * (1 + 0.1 * rng.normal(size=(5, 1)))
    out = []
    for k in range(frames):
        q = q0 + k * v
        atoms = ase.Atoms("Ar5", positions=q % BOX if wrap else q, cell=[BOX] * 3, pbc=True)
        atoms.set_momenta(MASS * v + 0.01 * k)  # momenta change in time, so pairs differ
        atoms.info.update(time=float(k * save_every), energy=-0.1 * k)
        out.append(atoms)
    write_frames(path, out)
    return q0, v


def test_pairs_of_an_unwrapped_trajectory_never_jump_by_a_box_length(tmp_path):
    q0, v = drifting_trajectory(tmp_path / "run.extxyz")
    traj = read_trajectory(tmp_path / "run.extxyz")
    assert (traj.positions.max() > BOX) or (traj.positions.min() < 0)  # atoms did leave the box
    pairs = run_pairs(traj, lag=16, stride=8, save_every=4)  # lag 4 frames, stride 2 frames
    assert len(pairs) == len(range(0, 41 - 4, 2))
    dq, dp = pairs.increments()
    np.testing.assert_allclose(dq, np.broadcast_to(4 * v, dq.shape), atol=1e-9)
    np.testing.assert_allclose(dp, 0.04, atol=1e-9)


def test_a_wrapped_trajectory_is_refused(tmp_path):
    drifting_trajectory(tmp_path / "wrapped.extxyz", wrap=True)
    with pytest.raises(InputError, match="unwrapped"):
        read_trajectory(tmp_path / "wrapped.extxyz")


def test_bad_trajectory_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_trajectory(tmp_path / "missing.extxyz")
    (tmp_path / "corrupt.extxyz").write_text("5\nLattice=\n garbage\n")
    with pytest.raises(InputError, match="corrupt.extxyz"):
        read_trajectory(tmp_path / "corrupt.extxyz")
    ase.io.write(tmp_path / "nomomenta.extxyz", ase.Atoms("Ar", cell=[BOX] * 3, pbc=True))
    with pytest.raises(InputError, match="momenta"):
        read_trajectory(tmp_path / "nomomenta.extxyz")


def test_lag_must_be_a_multiple_of_the_saved_interval(tmp_path):
    drifting_trajectory(tmp_path / "run.extxyz")
    with pytest.raises(ValueError, match="multiple"):
        run_pairs(read_trajectory(tmp_path / "run.extxyz"), lag=6, stride=8, save_every=4)


def test_split_by_run():
    assert split_runs(12, 1, 1) == {"train": list(range(10)), "val": [10], "held_out": [11]}
    with pytest.raises(ValueError):
        split_runs(2, 1, 1)


@pytest.fixture
def datasets(tmp_path):
    runs = []
    for i in range(4):
        path = tmp_path / f"run{i}.extxyz"
        drifting_trajectory(path, seed=i)
        runs.append(path)
    out = tmp_path / "datasets"
    cfg = {
        "pairing": {"lag": 16, "stride": 40, "validation_runs": 1, "held_out_runs": 1},
        "reference": {"save_every": 4},
    }
    counts = argon.build_dataset(cfg, runs, out)
    return runs, out, counts


def test_datasets_split_by_run_with_time_reversal(datasets):
    runs, out, counts = datasets
    per_run = len(range(0, 41 - 4, 10))
    assert counts == {
        "direct_train": 2 * 2 * per_run,
        "direct_val": 2 * per_run,
        "symplectic_train": 2 * 2 * per_run,
        "symplectic_val": 2 * per_run,
    }
    direct = ase.io.read(out / "direct_train.extxyz", ":")
    run0 = read_trajectory(runs[0])
    first, reversed_first = direct[0], direct[per_run]  # run 0: its pairs, then their reversals
    np.testing.assert_allclose(first.positions, run0.positions[0], atol=1e-8)
    np.testing.assert_allclose(first.arrays["future_positions"], run0.positions[4], atol=1e-8)
    # the time-reversed copy: (q', -p') -> (q, -p)
    np.testing.assert_allclose(reversed_first.positions, run0.positions[4], atol=1e-8)
    np.testing.assert_allclose(reversed_first.get_momenta(), -run0.momenta[4], atol=1e-8)
    np.testing.assert_allclose(reversed_first.arrays["future_momenta"], -run0.momenta[0], atol=1e-8)
    sym = ase.io.read(out / "symplectic_train.extxyz", ":")
    np.testing.assert_allclose(sym[0].positions, 0.5 * (run0.positions[0] + run0.positions[4]), atol=1e-8)
    np.testing.assert_allclose(sym[0].arrays["delta_q"], run0.positions[4] - run0.positions[0], atol=1e-8)
    np.testing.assert_allclose(sym[per_run].get_momenta(), -sym[0].get_momenta(), atol=1e-8)
    np.testing.assert_allclose(sym[per_run].arrays["delta_q"], -sym[0].arrays["delta_q"], atol=1e-8)
    np.testing.assert_allclose(sym[per_run].arrays["delta_p"], sym[0].arrays["delta_p"], atol=1e-8)
    # the held-out run gives the initial state and no sample
    initial = ase.io.read(out / "initial.extxyz", ":")
    np.testing.assert_allclose(initial[0].positions, read_trajectory(runs[3]).positions[0], atol=1e-8)
    val = ase.io.read(out / "direct_val.extxyz", ":")
    np.testing.assert_allclose(val[0].positions, read_trajectory(runs[2]).positions[0], atol=1e-8)


def test_metatrain_reads_the_datasets_with_momenta(datasets):
    from metatrain.utils.data.readers.ase import read_systems

    _, out, _ = datasets
    systems = read_systems(str(out / "symplectic_train.extxyz"))
    frames = ase.io.read(out / "symplectic_train.extxyz", ":")
    values = systems[3].get_data("momentum").block().values[..., 0].numpy()
    np.testing.assert_allclose(values, frames[3].get_momenta(), atol=1e-10)


def test_metatrain_options(datasets):
    _, out, _ = datasets
    training = {
        "epochs": 3,
        "batch_size": 2,
        "learning_rate": 1e-3,
        "checkpoint_interval": 1,
        "seed": 0,
        "precision": 32,
        "model": {"cutoff": 4.0},
        "direct_model": {"predict_momenta_as_difference": True},
        "symplectic_model": {"cutoff": 5.0},
        "direct_training": {"epochs": 9, "learning_rate": 2e-3},
    }
    args = (training, 16.0, {18: MASS}, out / "x_train.extxyz", out / "x_val.extxyz", "cpu")
    direct = make_options("direct", *args[:3], out / "direct_train.extxyz", out / "direct_val.extxyz", "cpu")
    assert direct["architecture"]["name"] == "experimental.flashmd"
    assert direct["architecture"]["training"]["timestep"] == 16.0
    assert direct["architecture"]["training"]["masses"] == {18: MASS}
    assert direct["training_set"]["targets"]["position"]["key"] == "future_positions"
    assert "fixed_scaling_weights" not in direct["architecture"]["training"]
    assert direct["architecture"]["training"]["num_epochs"] == 9  # its own epochs and learning rate
    assert direct["architecture"]["training"]["learning_rate"] == 2e-3
    assert direct["architecture"]["training"]["batch_size"] == 2
    assert direct["architecture"]["model"] == {"cutoff": 4.0, "predict_momenta_as_difference": True}
    sym = make_options("symplectic", *args[:3], out / "symplectic_train.extxyz", out / "symplectic_val.extxyz", "cpu")
    assert sym["architecture"]["name"] == "experimental.flashmd_symplectic"
    assert sym["architecture"]["model"] == {"cutoff": 5.0}  # its own cutoff; it rejects the direct model's key
    assert sym["architecture"]["training"]["num_epochs"] == 3  # the shared epochs: direct_training is not its
    assert sym["architecture"]["training"]["learning_rate"] == 1e-3
    weights = sym["architecture"]["training"]["fixed_scaling_weights"]
    assert weights["position"] == weights["momentum"] > 0  # one scale: both targets are gradients of S
    ms = target_mean_squares(out / "symplectic_train.extxyz", "symplectic")
    loss = sym["architecture"]["training"]["loss"]
    assert loss["position"]["weight"] * ms["position"] == pytest.approx(loss["momentum"]["weight"] * ms["momentum"])
    assert sym["validation_set"]["targets"]["momentum"]["key"] == "delta_p"
    with pytest.raises(ValueError, match="unknown model kind"):
        make_options("other", *args)


def test_training_resumes_only_from_a_model_checkpoint_that_loads(tmp_path):
    """metatrain's --restart auto took scaler.ckpt (newest) after an early interruption: every rerun failed."""
    import time as _time

    from actionmd.atomistic.training import _resume_point

    run = tmp_path / "outputs" / "2026-01-01" / "10-00-00"
    run.mkdir(parents=True)
    torch.save({"model_state_dict": {}, "epoch": 2}, run / "model_2.ckpt")
    assert _resume_point(tmp_path, print) == run / "model_2.ckpt"
    (run / "model_4.ckpt").write_bytes(b"truncated by a kill")
    _time.sleep(0.01)
    torch.save({"scaler": 1}, run / "scaler.ckpt")  # newest file, not a model checkpoint
    later = tmp_path / "outputs" / "2026-01-01" / "10-05-00"
    later.mkdir()
    torch.save({"scaler": 1}, later / "scaler.ckpt")  # a run stopped before its first checkpoint
    assert _resume_point(tmp_path, print) == run / "model_2.ckpt"
    (run / "model_2.ckpt").unlink()
    assert _resume_point(tmp_path, print) is None  # start over
