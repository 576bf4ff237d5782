"""Rollouts and their metrics, with untrained models (fast) and velocity Verlet."""

import numpy as np
import torch

from actionmd.core.fixed_point import SolverSettings
from actionmd.fewbody.metrics import closest_approach, metrics_table, orbit_shape_error
from actionmd.fewbody.mlp import DirectMLP, GeneratingFunctionMLP
from actionmd.fewbody.nbody import GravitationalSystem
from actionmd.fewbody.rollout import run_model_rollout, run_verlet_rollout
from actionmd.naming import parse_method

KEPLER = GravitationalSystem(masses=np.array([1.0]), central_mass=1.0)
Q0, P0 = np.array([[1.0, 0.0]]), np.array([[0.0, 0.8]])


def models():
    torch.manual_seed(0)
    direct = DirectMLP(1, 2, (16, 16), dq_scale=0.01, dp_scale=0.01).double()
    gf = GeneratingFunctionMLP(1, 2, (16, 16), action_scale=0.01).double()
    return direct, gf


def test_parse_method_round_trip():
    assert parse_method("direct") == ("direct", 0)
    assert parse_method("symplectic_k12") == ("symplectic", 12)
    assert parse_method("symplectic_converged") == ("symplectic", None)
    for bad in ("symplectic_kx", "direkt", "symplectic_k"):
        try:
            parse_method(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_model_rollouts_record_iterations_and_residuals():
    direct, gf = models()
    k3 = run_model_rollout(KEPLER, Q0, P0, 0.064, 10, direct, gf, SolverSettings(iterations=3), "symplectic_k3")
    assert k3.q.shape == (11, 1, 2) and (k3.iterations == 3).all()
    hist = k3.residual_history
    assert hist.shape == (10, 3) and (np.diff(hist, axis=1) < 0).all()  # the mixing contracts
    conv = run_model_rollout(
        KEPLER, Q0, P0, 0.064, 10, direct, gf, SolverSettings(iterations=None, tolerance=1e-12), "symplectic_converged"
    )
    assert (conv.residual < 1e-12).all() and conv.meta["unconverged_steps"] == 0
    assert (conv.iterations > 3).all()
    np.testing.assert_allclose(conv.energy, KEPLER.energy(conv.q, conv.p))
    plain = run_model_rollout(KEPLER, Q0, P0, 0.064, 10, direct, method="direct")
    k0 = run_model_rollout(KEPLER, Q0, P0, 0.064, 10, direct, gf, SolverSettings(iterations=0), "symplectic_k0")
    np.testing.assert_array_equal(plain.q, k0.q)


def test_verlet_rollout_matches_substeps_and_blowup_is_flagged():
    ref = run_verlet_rollout(KEPLER, Q0, P0, 0.064, 50, substeps=64)
    coarse = run_verlet_rollout(KEPLER, Q0, P0, 0.064, 50, substeps=1, method="vv_large")
    assert np.abs(ref.energy / ref.energy[0] - 1).max() < 1e-5
    # a plunging orbit (almost no angular momentum) makes large-step Verlet blow up
    plunge = run_verlet_rollout(KEPLER, Q0, np.array([[0.0, 0.01]]), 0.3, 200, substeps=1, method="vv_large")
    assert plunge.meta["diverged_at"] is not None
    table = metrics_table([r.arrays() for r in (coarse, ref)], ref.arrays()).set_index("method")
    assert table.loc["reference", "final_position_error"] == 0.0
    assert 0 < table.loc["vv_large", "final_position_error"] < 0.5
    assert np.isnan(plunge.q[plunge.meta["diverged_at"] :]).all()  # nothing made up after the blow-up
    same_grid = run_verlet_rollout(KEPLER, Q0, P0, 0.3, 200, substeps=10)
    bad = metrics_table([plunge.arrays()], same_grid.arrays()).iloc[0]
    assert np.isinf(bad["max_rel_energy_error"]) and np.isinf(bad["final_position_error"])


def test_orbit_shape_error_sees_precession_but_not_a_phase_lag():
    """A Kepler ellipse run 20 steps late is on the orbit; the same ellipse turned by 20 degrees is not."""
    q = run_verlet_rollout(KEPLER, Q0, P0, 0.064, 420, substeps=64).q
    ref, late = q[20:], q[:-20]  # the same orbit, 20 steps behind
    assert np.linalg.norm(late[-1] - ref[-1], axis=-1).max() > 0.1  # the final-position error says "far"
    assert orbit_shape_error(late, ref) < 0.02 * np.abs(ref).max()
    assert orbit_shape_error(ref, ref) == 0.0
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    turned = ref @ np.array([[c, s], [-s, c]])
    assert orbit_shape_error(turned, ref) > 0.05 * np.abs(ref).max()


def test_closest_approach_is_the_perihelion_and_ignores_frames_after_a_blow_up():
    """Kepler (GM = 1) from aphelion r = 1 at speed 0.8: a = 1 / (2 * 0.68), perihelion 2a - 1."""
    ref = run_verlet_rollout(KEPLER, Q0, P0, 0.016, 400, substeps=64)
    perihelion = 2 / (2 * (1 - 0.5 * 0.8**2)) - 1
    assert perihelion - 1e-6 <= closest_approach(ref.q) < perihelion + 2e-3
    row = metrics_table([ref.arrays()], ref.arrays()).iloc[0]
    assert row["closest_approach"] == closest_approach(ref.q)
    # three bodies: the smallest of the pair distances; NaN frames (after a blow-up) do not count
    q = np.array([[[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]], [[0.0, 0.0], [0.0, 0.5], [2.0, 0.0]], [[np.nan] * 2] * 3])
    assert closest_approach(q) == 0.5
    assert np.isnan(closest_approach(q[2:]))
