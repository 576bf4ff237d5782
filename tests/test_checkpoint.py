"""A loop interrupted mid-way (signal or hard kill) resumes from its checkpoint to the same frames, bit for bit."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch
from test_barostat import GaussianGas, _gas

from actionmd.dynamics.barostat import IsotropicBarostat, NPTIntegrator
from actionmd.dynamics.stepping import run_steps
from actionmd.dynamics.thermostat import OBABOIntegrator, SVRThermostat, VelocityVerletMap
from actionmd.io.checkpoint import Interrupted, LoopCheckpoint, fingerprint

STEPS, SAVE_EVERY = 60, 4


class Fault:
    """Wraps a stepper; at step ``at`` sends SIGTERM to this process (pre-emption) or dies (a lost node)."""

    def __init__(self, stepper, at: int, how: str) -> None:
        self.stepper, self.at, self.how, self.count = stepper, at, how, 0

    def __getattr__(self, name):
        return getattr(self.stepper, name)

    def step(self, q, p):
        self.count += 1
        if self.count == self.at:
            if self.how == "kill":  # no handler runs: only the periodic checkpoints survive
                raise SystemExit("node lost")
            os.kill(os.getpid(), signal.SIGTERM)
        return self.stepper.step(q, p)


def _nvt():
    q, p, masses, cell = _gas()
    gas = GaussianGas()
    vv = VelocityVerletMap(lambda x: torch.from_numpy(gas(x.numpy(), cell)[1]), masses, 2.0)
    return OBABOIntegrator(vv, SVRThermostat(300.0, 20.0, seed=7), 2.0, masses), q, p, masses


def _npt():
    q, p, masses, cell = _gas()
    gas = GaussianGas()
    baro = IsotropicBarostat(2000.0, 300.0, 100.0, 200.0, len(q), seed=3)
    return NPTIntegrator(masses, cell, gas, baro, SVRThermostat(300.0, 20.0, seed=4), 2.0), q, p, masses


def _run(make, checkpoint=None, fault=None):
    stepper, q, p, masses = make()
    if fault is not None:
        stepper = Fault(stepper, *fault)
    return run_steps(stepper, q.numpy(), p.numpy(), masses, STEPS, SAVE_EVERY, checkpoint=checkpoint)


def _same(a: dict, b: dict) -> None:
    for key in a:
        if key in ("wall_time", "meta"):
            continue
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("make", [_nvt, _npt], ids=["nvt", "npt"])
def test_a_signal_saves_and_the_rerun_resumes_bitwise(tmp_path, make):
    reference = _run(make)
    out = tmp_path / "rollout.npz"
    ckpt = LoopCheckpoint(out, "key")
    with pytest.raises(Interrupted):
        _run(make, ckpt, fault=(23, "signal"))
    assert ckpt.path.is_file()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    resumed = _run(make, LoopCheckpoint(out, "key"))
    _same(reference, resumed)
    # the thermostat really acted: without its generator state restored the frames would differ
    assert np.ptp(reference["thermostat_work"]) > 0


def test_a_hard_kill_resumes_from_the_last_periodic_checkpoint(tmp_path):
    reference = _run(_npt)
    out = tmp_path / "rollout.npz"
    with pytest.raises(SystemExit):
        _run(_npt, LoopCheckpoint(out, "key", every=0.0), fault=(31, "kill"))
    resumed = _run(_npt, LoopCheckpoint(out, "key"))
    _same(reference, resumed)


def test_a_restart_without_the_generator_states_would_differ(tmp_path):
    """The test above can fail: restoring positions and momenta alone gives other frames."""
    reference = _run(_nvt)
    out = tmp_path / "rollout.npz"
    with pytest.raises(Interrupted):
        _run(_nvt, LoopCheckpoint(out, "key"), fault=(23, "signal"))
    ckpt = LoopCheckpoint(out, "key")
    state = ckpt.load()
    state["stepper"]["thermostat"]["generator"] = torch.Generator().manual_seed(99).get_state()
    ckpt.save(state)
    resumed = _run(_nvt, LoopCheckpoint(out, "key"))
    assert not np.array_equal(reference["momenta"][-1], resumed["momenta"][-1])


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    out = tmp_path / "rollout.npz"
    with pytest.raises(Interrupted):
        _run(_nvt, LoopCheckpoint(out, fingerprint({"tau": 20})), fault=(23, "signal"))
    assert LoopCheckpoint(out, fingerprint({"tau": 20})).load() is not None
    assert LoopCheckpoint(out, fingerprint({"tau": 30})).load() is None


def test_fingerprint_follows_the_input_files(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"one")
    first = fingerprint({}, [path, None])
    path.write_bytes(b"two")
    assert fingerprint({}, [path]) != first


def test_unreadable_checkpoint_starts_over(tmp_path):
    ckpt = LoopCheckpoint(tmp_path / "x.npz", "key")
    ckpt.path.write_bytes(b"not a pickle")
    assert ckpt.load() is None
