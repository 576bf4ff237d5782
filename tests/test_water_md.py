"""One q-TIP4P/f state point: Langevin thermalisation, then NVE frames usable for pairing."""

import numpy as np
import pytest
import torch

from actionmd.atomistic.dataset import run_pairs
from actionmd.dynamics.state_point import StatePointProtocol, run_state_point
from actionmd.io.trajectory import read_trajectory
from actionmd.potentials.qtip4pf import water_box


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_state_point_thermalises_and_conserves_energy(tmp_path):
    box = water_box(2, seed=3)  # 8 molecules
    proto = StatePointProtocol(temperature=300.0, nvt_steps=400, nve_steps=160, save_every=8, tau=10.0)
    frames = run_state_point(box, proto, seed=1, out=tmp_path / "sp.extxyz", progress=None)
    assert len(frames) == 21
    assert [f.info["time"] for f in frames[:3]] == [0.0, 2.0, 4.0]
    # the Langevin thermostat (tau 10 fs, 200 fs) brings the kinetic temperature near 300 K
    temperatures = np.array([f.info["temperature"] for f in frames])
    assert 150.0 < temperatures.mean() < 500.0
    energy = np.array([f.info["energy"] + f.info["kinetic_energy"] for f in frames])
    kinetic = np.array([f.info["kinetic_energy"] for f in frames])
    # NVE at 0.25 fs: total energy fluctuates far less than the kinetic energy it exchanges
    assert np.ptp(energy) < 0.05 * np.ptp(kinetic)
    traj = read_trajectory(tmp_path / "sp.extxyz")  # unwrapped, continuous, with momenta
    assert traj.n_atoms == 24 and list(traj.numbers[:3]) == [8, 1, 1]
    pairs = run_pairs(traj, lag=8, stride=16, save_every=8)  # 2 fs pairs every 4 fs
    assert len(pairs) == 10


def test_bad_protocol():
    with pytest.raises(ValueError, match="save_every"):
        StatePointProtocol(temperature=300.0, nvt_steps=10, nve_steps=10, save_every=3)
    with pytest.raises(ValueError, match="positive"):
        StatePointProtocol(temperature=-1.0, nvt_steps=10, nve_steps=10, save_every=5)
