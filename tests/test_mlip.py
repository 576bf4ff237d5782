"""The MLIP branch (GeTe, aluminium): NPT ramps collect structures; NPT reference runs conserve the extended energy."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from actionmd import naming
from actionmd.config import ROOT, ConfigError, check, resolve
from actionmd.io import load_npz
from actionmd.systems import crystals as mlip


@pytest.fixture(scope="module")
def config():
    with open(ROOT / "config.yaml") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def aluminium(config):
    cfg = copy.deepcopy(config)
    cfg["preset"] = "test"
    return resolve(cfg, "aluminium")


def test_crystal_sizes(config):
    cfg = copy.deepcopy(config)
    for preset, system, n in (
        ("paper", "gete", 512),
        ("paper", "aluminium", 256),
        ("demo", "aluminium", 32),
        ("demo", "gete", 64),
    ):
        cfg["preset"] = preset
        atoms = mlip.crystal(resolve(cfg, system))
        assert len(atoms) == n
    assert sorted(set(mlip.crystal(resolve(cfg, "gete")).get_chemical_symbols())) == ["Ge", "Te"]


def test_ramp_collects_each_temperature_on_both_legs(aluminium, tmp_path):
    """EMT aluminium (the test preset), NPT ramps 300 -> 900 -> 300 K: one structure per grid
    temperature and leg, NPT cells."""
    import ase.io

    out = tmp_path / "ramp.extxyz"
    mlip.ramp(aluminium, out)
    frames = ase.io.read(out, ":")
    assert sorted((f.info["leg"], f.info["temperature"]) for f in frames) == sorted(naming.structures(aluminium))
    volumes = np.array([f.get_volume() / len(f) for f in frames])
    assert np.all((14.0 < volumes) & (volumes < 19.0))  # solid aluminium: 16.6 A^3/atom
    assert np.ptp(volumes) > 1e-3  # the barostat moved the cell
    structure = mlip.ramp_structure(out, "cool", 400)
    assert structure.info["temperature"] == 400 and np.abs(structure.get_momenta()).sum() > 0
    with pytest.raises(Exception, match="no structure"):
        mlip.ramp_structure(out, "cool", 500)


def test_reference_npt_rollout_conserves_the_extended_energy(aluminium, tmp_path):
    """Velocity Verlet at 1 fs in the NPT splitting (SVR + BZP barostat + cell Langevin), EAM aluminium:
    H + PV + p_eps^2/2W - kT ln V - thermostat works stays constant while H itself does not."""
    from ase.build import bulk

    from actionmd.atomistic.dataset import write_initial
    from actionmd.systems.crystals import thermal_momenta

    cfg = copy.deepcopy(aluminium)
    cfg["physics"]["barostat_tau"] = 200.0  # a fast barostat: the volume moves within the run
    cfg["rollout"].update(reference_steps=1500, reference_save_every=10)
    atoms = bulk("Al", "fcc", a=4.02, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    atoms.set_momenta(thermal_momenta(atoms.get_masses(), 600.0, np.random.default_rng(0)))
    write_initial(tmp_path / "initial.extxyz", [atoms], ["test"])
    mlip.run_rollout("reference", cfg, tmp_path / "initial.extxyz", 0, tmp_path / "reference.npz")
    roll = load_npz(tmp_path / "reference.npz")
    energy = roll["potential_energy"] + roll["kinetic_energy"]
    assert np.isfinite(roll["conserved"]).all() and roll["meta"]["diverged_at"] is None
    assert np.ptp(roll["volume"]) / roll["volume"].mean() > 0.005
    assert np.ptp(energy) > 0.1
    assert np.ptp(roll["conserved"]) < 0.05 * np.ptp(energy)
    assert roll["cell"].shape == (151, 3, 3) and roll["time"][-1] == pytest.approx(1500.0)
    assert int(roll["steps_done"]) == 1500 and roll["meta"]["dt"] == 1.0
    assert "EMT" in roll["meta"]["potential"]


def test_mlip_config_checks(config):
    def broken(edit):
        cfg = copy.deepcopy(config)
        edit(cfg["presets"]["test"])
        return cfg

    with pytest.raises(ConfigError, match="presets.test.aluminium.potential"):
        check(broken(lambda p: p["aluminium"].update(potential="nope")))
    with pytest.raises(ConfigError, match="presets.test.gete.reference.temperatures"):
        check(broken(lambda p: p["gete"]["reference"]["temperatures"].update(stop=2000)))
    with pytest.raises(ConfigError, match="presets.test.gete.quench"):
        check(broken(lambda p: p["gete"].pop("quench")))
    with pytest.raises(ConfigError, match="presets.test.aluminium.pairing.lag"):
        check(broken(lambda p: p["aluminium"]["pairing"].update(lag=25)))


def test_paper_preset_is_the_si_protocol(config):
    cfg = copy.deepcopy(config)
    cfg["preset"] = "paper"
    gete, al = resolve(cfg, "gete"), resolve(cfg, "aluminium")
    assert gete["potential"]["name"] == al["potential"]["name"] == "pet-mad"
    assert len(naming.structures(gete)) == 2 * 49  # 200..1400 K every 25 K, both legs
    assert naming.long_step(gete) == naming.long_step(al) == 30.0
    assert gete["ramp"]["steps"] * gete["ramp"]["dt"] == 400_000  # 400 ps per leg at 4 fs
    assert al["ramp"]["steps"] * al["ramp"]["dt"] == 1_000_000  # 1 ns at 2 fs
    assert gete["pairing"]["stride"] == 1000 and al["pairing"]["stride"] == 400
    assert gete["rollout"]["reference_steps"] * gete["rollout"]["reference_dt"] == 4_000_000  # 4 ns
    assert gete["rollout"]["steps"] * 30 == 6_000_000 and gete["rollout"]["iterations"] == [4, 8, 16]
    assert gete["rollout"]["runs"] == 4 and gete["physics"]["thermostat_tau"] == 1000.0
    assert al["physics"]["ensemble"] == "npt" and al["physics"]["thermostat_tau"] == 100.0
    assert al["physics"]["barostat_tau"] == al["physics"]["cell_tau"] == 1000.0
