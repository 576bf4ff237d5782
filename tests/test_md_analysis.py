"""Kinetic temperature and the argon metrics on synthetic rollouts with known answers."""

import numpy as np
import pytest

from actionmd.analysis.argon import rollout_metrics
from actionmd.dynamics.energy import KB, kinetic_energy, temperature

MASS = 39.948


def test_temperature_of_maxwell_boltzmann_momenta():
    rng = np.random.default_rng(1)
    n, t = 4000, 120.0
    p = rng.normal(0.0, np.sqrt(MASS * KB * t), (n, 3))
    p -= p.mean(axis=0)
    masses = np.full(n, MASS)
    assert temperature(p, masses) == pytest.approx(t, rel=0.02)
    assert kinetic_energy(p, masses) == pytest.approx(0.5 * np.sum(p**2) / MASS)


def synthetic(drift_ev_per_atom_ps: float, heating_k_per_ps: float, n_atoms=256, frames=101, long_step=16.0):
    time = long_step * 5 * np.arange(frames)  # fs
    t_ps = time / 1000
    temperature = 80.0 + heating_k_per_ps * t_ps
    kinetic = 0.5 * (3 * n_atoms - 3) * KB * temperature
    potential = -0.07 * n_atoms + n_atoms * drift_ev_per_atom_ps * t_ps - kinetic + kinetic[0]
    return {
        "time": time,
        "potential_energy": potential,
        "kinetic_energy": kinetic,
        "temperature": temperature,
        "iterations": np.full(500, 4),
        "wall_time": np.array(20.0),
        "steps_done": np.array(500),
        "meta": {"method": "symplectic_k4", "n_atoms": n_atoms, "long_step": long_step, "diverged_at": None},
    }


def test_metrics_recover_known_drifts():
    m = rollout_metrics(synthetic(2e-4, 5.0))
    assert m["energy_drift_meV_per_atom_ps"] == pytest.approx(0.2)
    assert m["temperature_drift_K_per_ps"] == pytest.approx(5.0)
    assert m["max_abs_energy_error_meV_per_atom"] == pytest.approx(0.2 * 8.0)
    assert m["mean_iterations"] == 4
    assert m["wall_time_s_per_ps"] == pytest.approx(20.0 / 8.0)  # 500 steps of 16 fs = 8 ps
    assert np.isnan(m["blew_up_at_ps"])


def test_metrics_of_a_run_that_blew_up():
    roll = synthetic(0.0, 0.0)
    roll["potential_energy"][60:] = np.nan
    roll["kinetic_energy"][60:] = np.nan
    roll["temperature"][60:] = np.nan
    roll["steps_done"] = np.array(299)
    roll["meta"]["diverged_at"] = 300
    m = rollout_metrics(roll)
    assert m["blew_up_at_ps"] == pytest.approx(300 * 16 / 1000)
    assert m["energy_drift_meV_per_atom_ps"] == pytest.approx(0.0, abs=1e-9)
    assert m["wall_time_s_per_ps"] == pytest.approx(20.0 / (299 * 0.016))


def harmonic_wells(n=64, mass=16.0, period_fs=100.0):
    """n independent atoms in isotropic harmonic wells around the origin (ASE units)."""
    from ase import units

    omega = 2 * np.pi / (period_fs * units.fs)
    k = mass * omega**2  # eV/A^2
    masses = np.full(n, mass)
    return masses, (lambda q: -k * q), k


def test_nvt_rollout_reaches_the_thermostat_temperature_and_keeps_its_conserved_quantity():
    from actionmd.dynamics.ensemble import stepper
    from actionmd.dynamics.stepping import run_steps
    from actionmd.dynamics.thermostat import SVRThermostat, VelocityVerletMap

    masses, forces, k = harmonic_wells()
    vv = VelocityVerletMap(forces, masses, dt_fs=4.0, substeps=4)
    rng = np.random.default_rng(0)
    q0 = rng.normal(0.0, 0.05, (64, 3))
    p0 = np.zeros((64, 3))
    thermostat = SVRThermostat(300.0, tau_fs=100.0, n_dof=3 * 64, seed=1)
    roll = run_steps(stepper(vv, masses, 4.0, thermostat), q0, p0, masses, 3000, 10)
    temps = temperature(roll["momenta"], masses) * (3 * 64 - 3) / (3 * 64)  # all 3N dof are free here
    assert np.mean(temps[100:]) == pytest.approx(300.0, rel=0.05)
    h = kinetic_energy(roll["momenta"], masses) + 0.5 * k * np.sum(roll["positions"] ** 2, axis=(1, 2))
    conserved = h - roll["thermostat_work"]
    assert np.ptp(conserved) < 0.02 * np.ptp(h)  # H itself changes by the thermostat's work
    # tau = infinity: exactly the NVE rollout, no work
    nve = run_steps(stepper(VelocityVerletMap(forces, masses, 4.0, 4), masses), q0, p0 + 1.0, masses, 50, 10)
    off_thermostat = SVRThermostat(300.0, tau_fs=float("inf"), seed=1)
    off = run_steps(
        stepper(VelocityVerletMap(forces, masses, 4.0, 4), masses, 4.0, off_thermostat), q0, p0 + 1.0, masses, 50, 10
    )
    np.testing.assert_array_equal(off["positions"], nve["positions"])
    assert not off["thermostat_work"].any() and "thermostat_work" not in nve
    with pytest.raises(ValueError, match="long step"):
        stepper(vv, masses, None, thermostat)
