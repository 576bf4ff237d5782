"""Pairing of trajectories at a fixed lag, time reversal and midpoint targets."""

import numpy as np
import pytest
from conftest import SIMO_P0, SIMO_Q0

from actionmd.config import load, resolve
from actionmd.core.pairing import make_pairs, split_tail, with_time_reversal
from actionmd.fewbody import steps as fewbody
from actionmd.fewbody.nbody import velocity_verlet
from actionmd.io import InputError, load_npz


def trajectory(n=100, bodies=2, dim=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, bodies, dim)), rng.normal(size=(n, bodies, dim))


@pytest.mark.parametrize("lag,stride", [(1, 1), (8, 1), (8, 3), (64, 5), (99, 1)])
def test_pair_count_and_lag(lag, stride):
    q, p = trajectory()
    pairs = make_pairs(q, p, lag, stride)
    assert len(pairs) == len(range(0, 100 - lag, stride))
    starts = np.arange(0, 100 - lag, stride)
    np.testing.assert_array_equal(pairs.q0, q[starts])
    np.testing.assert_array_equal(pairs.q1, q[starts + lag])
    np.testing.assert_array_equal(pairs.p1, p[starts + lag])


def test_no_pairs_when_shorter_than_lag():
    q, p = trajectory(n=10)
    assert len(make_pairs(q, p, 10)) == 0
    with pytest.raises(ValueError):
        make_pairs(q, p, 0)


def test_reversal_is_an_involution_and_flips_momenta():
    q, p = trajectory()
    pairs = make_pairs(q, p, 4)
    rev = pairs.reversed()
    np.testing.assert_array_equal(rev.q0, pairs.q1)
    np.testing.assert_array_equal(rev.p0, -pairs.p1)
    np.testing.assert_array_equal(rev.q1, pairs.q0)
    np.testing.assert_array_equal(rev.p1, -pairs.p0)
    for a, b in zip(rev.reversed().arrays(), pairs.arrays(), strict=False):
        np.testing.assert_array_equal(a, b)
    both = with_time_reversal(pairs)
    assert len(both) == 2 * len(pairs)


def test_midpoint_and_increments_are_exact():
    q, p = trajectory()
    pairs = make_pairs(q, p, 3)
    qbar, pbar = pairs.midpoint()
    dq, dp = pairs.increments()
    np.testing.assert_array_equal(qbar, 0.5 * (q[:-3] + q[3:]))
    np.testing.assert_array_equal(dp, p[3:] - p[:-3])
    # the two ends are recovered exactly from midpoint +- half increment (in exact binary fractions)
    qi = np.round(q * 64) / 64
    pairs = make_pairs(qi, p, 3)
    qbar, _ = pairs.midpoint()
    dq, _ = pairs.increments()
    np.testing.assert_array_equal(qbar - 0.5 * dq, pairs.q0)
    np.testing.assert_array_equal(qbar + 0.5 * dq, pairs.q1)
    # reversed pair: midpoint (qbar, -pbar), increments (-dq, dp)
    rev = pairs.reversed()
    rq, rp = rev.midpoint()
    rdq, rdp = rev.increments()
    np.testing.assert_array_equal(rq, qbar)
    np.testing.assert_array_equal(rp, -pairs.midpoint()[1])
    np.testing.assert_array_equal(rdq, -dq)
    np.testing.assert_array_equal(rdp, pairs.increments()[1])


def test_split_tail_keeps_pairs_inside_each_part():
    q, p = trajectory(n=100)
    (qt, pt), (qv, pv) = split_tail(q, p, 0.2)
    assert len(qt) == 80 and len(qv) == 20
    np.testing.assert_array_equal(qv[0], q[80])
    assert len(make_pairs(qv, pv, 8)) == 12
    with pytest.raises(ValueError):
        split_tail(q, p, 1.0)


def test_neighbouring_trajectories_add_pairs_that_never_straddle_two_of_them(tmp_path):
    cfg = resolve(load(), "three_body")
    cfg["physics"] = {**cfg["physics"], "q0": SIMO_Q0, "p0": SIMO_P0}  # the usual size, whatever the config's
    cfg["reference"] = {
        "dt": 1e-3,
        "steps": 2000,
        "neighbours": {"count": 6, "scale": 0.01, "steps": 1000, "save_every": 4, "seed": 0},
    }
    cfg["pairing"] = {"lag": 16, "stride": 8, "validation_fraction": 0.34}
    fewbody.simulate_reference(cfg, tmp_path / "ref.npz")
    ref = load_npz(tmp_path / "ref.npz")
    assert ref["neighbours_q"].shape == (251, 6, 3, 2) and ref["meta"]["neighbours"]["kept"] == 6
    fewbody.build_dataset("direct", tmp_path / "ref.npz", cfg, tmp_path / "direct.npz")
    data = load_npz(tmp_path / "direct.npz")
    main_train = len(range(0, 1321 - 16, 8))  # head of the 2001 frames: all but the 34 % tail (680)
    per_neighbour = 251 - 4
    assert len(data["train_q"]) == 2 * (main_train + 4 * per_neighbour)  # time reversal doubles
    assert len(data["valid_q"]) == 2 * (len(range(0, 680 - 16, 8)) + 2 * per_neighbour)
    # each pair joins two states of one trajectory, lag * dt apart: same energy, and a Verlet run
    # of the lag from the first state lands on the second
    system, _, _ = fewbody.make_system(cfg["physics"])
    for split in ("train", "valid"):
        q0, p0, q1, p1 = (data[f"{split}_{k}"] for k in "qpab")
        e0, e1 = system.energy(q0, p0), system.energy(q1, p1)
        assert np.max(np.abs(e1 - e0) / np.abs(e0)) < 1e-5
        q, p = velocity_verlet(system, q0, p0, 1e-3, 16)
        np.testing.assert_allclose(q[-1], q1, atol=1e-10)
        np.testing.assert_allclose(p[-1], p1, atol=1e-10)
    bad = dict(cfg, reference={**cfg["reference"], "neighbours": {**cfg["reference"]["neighbours"], "save_every": 5}})
    fewbody.simulate_reference(bad, tmp_path / "bad.npz")
    with pytest.raises(InputError, match="save_every = 5 does not divide pairing.lag = 16"):
        fewbody.build_dataset("direct", tmp_path / "bad.npz", bad, tmp_path / "x.npz")
