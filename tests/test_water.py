"""The water workflow's own steps: state-point grid, cell rescaling, NVT reference rollout, metrics."""

import numpy as np
import pytest
from ase import units
from ase.data import atomic_masses

from actionmd import naming
from actionmd.analysis import water as water_analysis
from actionmd.atomistic.dataset import split_state_points
from actionmd.io import InputError, load_npz
from actionmd.io.trajectory import write_frames
from actionmd.potentials.qtip4pf import water_box
from actionmd.systems import water

PHYSICS = {
    "ewald_cutoff": 9.0,
    "smearing": 1.7,
    "lr_wavelength": 2.1,
    "density": 0.997,
    "temperature": 300.0,
    "langevin_tau": 10.0,
    "thermostat_tau": 10.0,
}


def test_state_point_grid_and_split():
    ref = {"volume_scales": [0.9, 1.0, 1.1], "temperatures": {"start": 20, "stop": 1000, "step": 20}}
    points = naming.state_points(ref)
    assert len(points) == 150 and points[0] == ("0.90", 20) and points[-1] == ("1.10", 1000)
    split = split_state_points(12, 3)
    assert split == {"train": [0, 1, 3, 4, 6, 7, 9, 10], "val": [2, 5, 8, 11]}
    with pytest.raises(InputError, match="validation_every"):
        split_state_points(2, 3)


def test_rescaled_cell_keeps_molecules_rigid():
    atoms = water_box(2, seed=3)
    atoms.positions += np.random.default_rng(0).normal(scale=0.05, size=atoms.positions.shape)
    big = water.scaled(atoms, 1.1)
    assert big.get_volume() == pytest.approx(1.1 * atoms.get_volume(), rel=1e-12)
    for a, b in zip(atoms.positions.reshape(-1, 3, 3), big.positions.reshape(-1, 3, 3), strict=True):
        # intramolecular geometry unchanged, centre of mass scaled by 1.1^(1/3)
        np.testing.assert_allclose(np.linalg.norm(b[1:] - b[0], axis=1), np.linalg.norm(a[1:] - a[0], axis=1))
    com = lambda x: (x.get_masses().reshape(-1, 3, 1) * x.positions.reshape(-1, 3, 3)).sum(1) / 18.015  # noqa: E731
    np.testing.assert_allclose(com(big), 1.1 ** (1 / 3) * com(atoms), rtol=1e-3)


def _initial(path, seed=0):
    atoms = water_box(2, seed=seed)
    rng = np.random.default_rng(seed)
    momenta = rng.normal(size=(len(atoms), 3)) * np.sqrt(atoms.get_masses() * units.kB * 300.0)[:, None]
    momenta -= atoms.get_masses()[:, None] * momenta.sum(0) / atoms.get_masses().sum()
    atoms.set_momenta(momenta)
    write_frames(path, [atoms])


def _cfg(tau):
    return {
        "physics": {**PHYSICS, "thermostat_tau": tau},
        "reference": {"dt": 0.25},
        "pairing": {"lag": 8},
        "rollout": {"steps": 10, "save_every": 1, "max_temperature": 1e4, "seed": 7},
        "device": "cpu",
    }


def test_reference_rollout_conserves_h_minus_thermostat_work(tmp_path):
    _initial(tmp_path / "initial.extxyz")
    water.run_rollout("reference", _cfg(10.0), tmp_path / "initial.extxyz", tmp_path / "ref.npz")
    roll = load_npz(tmp_path / "ref.npz")
    n = roll["meta"]["n_atoms"]
    h = (roll["potential_energy"] + roll["kinetic_energy"]) / n
    conserved = water_analysis.conserved_quantity(roll)
    # SVR at tau = 10 fs exchanges energy with the bath over 20 fs: H moves, H - work does not
    assert np.ptp(roll["thermostat_work"]) / n > 1e-3
    assert np.ptp(h) > 20 * np.ptp(conserved)
    assert np.ptp(conserved) < 2e-4  # eV/atom: velocity Verlet at 0.25 fs
    assert roll["time"][-1] == 20.0 and int(roll["steps_done"]) == 10
    assert set(np.unique(roll["numbers"])) == {1, 8}
    # per-species temperatures, weighted by the degrees of freedom each keeps at zero total
    # momentum (3 N_s (1 - m_s / M)), average to the 3N - 3 kinetic temperature
    m_o, m_h = atomic_masses[8], atomic_masses[1]
    total = n / 3 * (m_o + 2 * m_h)
    f_o, f_h = n / 3 * 3 * (1 - m_o / total), 2 * n / 3 * 3 * (1 - m_h / total)
    t_all = 2 * roll["kinetic_energy"] / ((3 * n - 3) * units.kB)
    np.testing.assert_allclose(roll["temperature"], t_all, rtol=1e-10)
    mean = (f_o * roll["temperature_O"] + f_h * roll["temperature_H"]) / (f_o + f_h)
    np.testing.assert_allclose(mean, t_all, rtol=1e-10)


def test_without_thermostat_the_work_is_zero(tmp_path):
    _initial(tmp_path / "initial.extxyz")
    water.run_rollout("reference", _cfg(float("inf")), tmp_path / "initial.extxyz", tmp_path / "nve.npz")
    roll = load_npz(tmp_path / "nve.npz")
    assert np.all(roll["thermostat_work"] == 0.0)


def synthetic_rollout(drift_ev_per_atom_ps=1e-3, diffusion=0.25, t_o=280.0, t_h=330.0, frames=401, seed=0):
    """Random-walk O atoms with a known D (A^2/ps), a linear conserved-quantity drift, fixed T_O/T_H."""
    rng = np.random.default_rng(seed)
    n_mol, dt_fs = 32, 10.0
    box = 12.0
    steps = rng.normal(scale=np.sqrt(2 * diffusion * dt_fs / 1000.0), size=(frames, n_mol, 3))
    steps[0] = rng.uniform(0, box, size=(n_mol, 3))
    oxygens = np.cumsum(steps, axis=0)
    positions = np.repeat(oxygens, 3, axis=1) + np.tile([[0, 0, 0], [0.96, 0, 0], [0, 0.96, 0]], (n_mol, 1))
    t = dt_fs * np.arange(frames)
    n = 3 * n_mol
    return {
        "time": t,
        "positions": positions,
        "potential_energy": np.full(frames, -10.0) + n * drift_ev_per_atom_ps * t / 1000.0,
        "kinetic_energy": np.full(frames, 5.0),
        "thermostat_work": np.zeros(frames),
        "temperature_O": np.full(frames, t_o),
        "temperature_H": np.full(frames, t_h),
        "cell": np.diag([box] * 3),
        "numbers": np.tile([8, 1, 1], n_mol),
        "wall_time": np.array(8.0),
        "steps_done": np.array(frames - 1),
        "meta": {"method": "direct", "n_atoms": n, "long_step": dt_fs, "diverged_at": None},
    }


def test_metrics_recover_known_drift_gap_and_diffusion():
    roll = synthetic_rollout()
    m = water_analysis.rollout_metrics(roll, {"rdf_r_max": 5.0, "rdf_bins": 50, "msd_fit": [0.1, 0.4]})
    assert m["conserved_drift_meV_per_atom_ps"] == pytest.approx(1.0, rel=1e-9)
    assert m["temperature_gap_K"] == pytest.approx(50.0)
    assert m["diffusion_A2_per_ps"] == pytest.approx(0.25, rel=0.25)
    assert m["wall_time_s_per_ps"] == pytest.approx(8.0 / 4.0)


def test_blown_up_rollout_has_no_structure_metrics():
    roll = synthetic_rollout()
    roll["positions"][200:] = np.nan
    roll["meta"]["diverged_at"] = 200
    m = water_analysis.rollout_metrics(roll, {"rdf_r_max": 5.0, "rdf_bins": 50, "msd_fit": [0.1, 0.4]})
    assert np.isnan(m["diffusion_A2_per_ps"]) and m["blew_up_at_ps"] == pytest.approx(2.0)


def test_a_broken_molecule_ends_the_rollout_there():
    roll = synthetic_rollout()
    roll["positions"][150:, 1] += np.array([0.9, 0.0, 0.0])  # molecule 0's first H pulled 1.86 A away
    cut = water_analysis.cut_at_broken_molecule(roll)
    assert water_analysis.broken_frame(roll) == 150 and cut["meta"]["diverged_at"] == 150
    assert np.isnan(cut["potential_energy"][150:]).all() and np.isfinite(cut["potential_energy"][:150]).all()
    m = water_analysis.rollout_metrics(cut, {"rdf_r_max": 5.0, "rdf_bins": 50, "msd_fit": [0.1, 0.4]})
    assert m["blew_up_at_ps"] == pytest.approx(1.5)
    # an intact rollout, molecules straddling the box included, is left alone
    assert water_analysis.broken_frame(synthetic_rollout()) is None
    assert water_analysis.cut_at_broken_molecule(synthetic_rollout())["meta"]["diverged_at"] is None
