"""Reference LJ-argon MD on LAMMPS: units, conservation, unwrapping, resumption, energies of given frames.

A 108-atom box (3x3x3 fcc cells, a = 5.5 A, close to the 80 K / 1 bar solid)
keeps every LAMMPS run well under a second.
"""

import json

import numpy as np
import pytest
from ase import units

from actionmd.io import InputError
from actionmd.potentials.lammps import lj_energy_forces
from actionmd.potentials.lammps_lj import (
    LJArgon,
    LJSession,
    MDProtocol,
    load_reference,
    potential_energies,
    run_nve,
    run_reference,
)

SYSTEM = LJArgon(lattice_constant=5.5, cells=(3, 3, 3))
PROTOCOL = MDProtocol(dt=1.0, npt_steps=500, nve_steps=2000, save_every=20)
SEED = 7
N = SYSTEM.n_atoms


def quiet(message: str) -> None:
    pass


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "nve.extxyz"
    run_reference(SYSTEM, PROTOCOL, SEED, out, progress=quiet)
    return out, load_reference(out)


def last_state(traj, k=-1):
    return traj["positions"][k], traj["momenta"][k], traj["cell"][k]


def shifted_total_energy(traj):
    """Kinetic + cut-and-shifted LJ energy: what velocity Verlet with the truncated force conserves."""
    return potential_energies(traj["positions"], traj["cell"][0], SYSTEM, shift=True) + traj["kinetic_energy"]


# (a) kinetic energy and temperature from the written momenta ----------------------------


def test_kinetic_energy_and_temperature_follow_from_written_momenta(reference):
    out, traj = reference
    kinetic = (traj["momenta"] ** 2).sum(axis=(1, 2)) / (2 * SYSTEM.mass)  # eV, ASE momenta (eV u)^(1/2)
    np.testing.assert_allclose(kinetic, traj["kinetic_energy"], rtol=1e-8)
    # LAMMPS' compute temp: 3N - 3 degrees of freedom (centre-of-mass momentum removed)
    np.testing.assert_allclose(2 * kinetic / ((3 * N - 3) * units.kB), traj["temperature"], rtol=1e-8)
    import ase.io

    atoms = ase.io.read(out, index="-1")
    assert atoms.get_kinetic_energy() == pytest.approx(traj["kinetic_energy"][-1], rel=1e-8)
    assert 40 < traj["temperature"].mean() < 120


def test_momenta_units_agree_with_lammps_own_kinetic_energy(reference):
    """ASE momenta -> LAMMPS velocities (A/ps) -> LAMMPS' ke and temp, with LAMMPS' own constants."""
    _, traj = reference
    x, p, cell = last_state(traj)
    with LJSession(SYSTEM) as md:
        md.build_state(x, cell, dt=1.0)
        md.set_momenta(p)
        md.lmp.command("run 0")
        ke, temp = md.thermo("ke"), md.thermo("temp")
    # LAMMPS' metal constants (mvv2e, boltz = 8.617343e-5 eV/K) and ASE's CODATA ones differ by ~1e-6
    assert ke == pytest.approx(traj["kinetic_energy"][-1], rel=3e-6)
    assert temp == pytest.approx(traj["temperature"][-1], rel=3e-6)


# (b) NVE energy conservation -------------------------------------------------------------


def test_nve_conserves_energy_and_a_ten_times_larger_step_does_not(reference):
    _, traj = reference
    x, p, cell = last_state(traj)
    fine = run_nve(x, p, cell, SYSTEM, dt=1.0, steps=2000, save_every=20, progress=quiet)
    coarse = run_nve(x, p, cell, SYSTEM, dt=10.0, steps=200, save_every=2, progress=quiet)
    e_fine, e_coarse = shifted_total_energy(fine), shifted_total_energy(coarse)
    scale = abs(e_fine.mean())
    fluct_fine, fluct_coarse = e_fine.std() / scale, e_coarse.std() / scale
    # measured at 1 fs over 2 ps: fluctuation 2.6e-7, drift 3.4e-7 (relative)
    assert fluct_fine < 1.5e-6
    assert abs(e_fine[-1] - e_fine[0]) / scale < 3e-6
    assert fluct_coarse > 20 * fluct_fine  # Verlet's error grows as dt^2 (measured: 90x)
    # the plain cut energy jumps by V(r_c) = -6.4e-5 eV at every cutoff crossing, whatever dt:
    # measured 2.8e-4 relative fluctuation over 2 ps
    plain = fine["total_energy"]
    assert plain.std() / scale < 1.5e-3


# (c) unwrapped positions are continuous ----------------------------------------------------


def test_unwrapped_positions_are_continuous_across_the_boundary(reference):
    _, traj = reference
    x, box = traj["positions"], traj["cell"][0]
    outside = (x < 0) | (x >= box)
    assert outside.any(), "no atom crossed the periodic boundary; the test needs a longer run"
    step = np.abs(np.diff(x, axis=0)).max()
    assert step < 0.5 < box.min() / 2  # 20 fs between frames: atoms move ~0.03 A


# (d) frames, times and metadata ------------------------------------------------------------


def test_frame_count_times_and_metadata(reference):
    out, traj = reference
    import ase.io

    n_frames = PROTOCOL.nve_steps // PROTOCOL.save_every + 1
    assert PROTOCOL.n_frames == n_frames == len(traj["time"])
    np.testing.assert_array_equal(traj["step"], np.arange(n_frames) * PROTOCOL.save_every)
    np.testing.assert_allclose(traj["time"], traj["step"] * PROTOCOL.dt)
    assert traj["positions"].shape == traj["momenta"].shape == (n_frames, N, 3)
    assert np.ptp(traj["cell"], axis=0).max() == 0  # NVE keeps the NPT's final box
    assert not np.allclose(traj["cell"][0], 3 * SYSTEM.lattice_constant)  # ... which NPT changed
    atoms = ase.io.read(out, index="0")
    assert atoms.pbc.all() and atoms.get_chemical_symbols() == ["Ar"] * N
    np.testing.assert_allclose(atoms.get_masses(), SYSTEM.mass)
    info = atoms.info
    assert (info["seed"], info["run_dt"], info["step"], info["time"]) == (SEED, 1.0, 0, 0.0)
    assert (info["epsilon"], info["sigma"], info["cutoff"]) == (SYSTEM.epsilon, SYSTEM.sigma, SYSTEM.cutoff)
    assert info["total_energy"] == pytest.approx(atoms.get_potential_energy() + info["kinetic_energy"], rel=1e-12)


def test_protocol_validation():
    with pytest.raises(ValueError, match="divide"):
        MDProtocol(nve_steps=100, save_every=7)
    with pytest.raises(ValueError):
        MDProtocol(dt=0.0)
    with pytest.raises(ValueError):
        MDProtocol(nve_steps=0)
    with pytest.raises(ValueError):
        LJArgon(cells=(3, 0, 3))


# (e) resuming after a crash -------------------------------------------------------------------

SHORT = MDProtocol(dt=1.0, npt_steps=100, nve_steps=400, save_every=10)  # 40 intervals: a checkpoint every 4


class Crash(RuntimeError):
    pass


def crash_after(n_nve_lines: int, log: list):
    def progress(message: str) -> None:
        log.append(message)
        if message.startswith("nve") and sum(m.startswith("nve") for m in log) == n_nve_lines:
            raise Crash(message)

    return progress


def assert_same_frames(a, b):
    for key in ("positions", "momenta", "potential_energy", "kinetic_energy", "cell", "time"):
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-8, err_msg=key)


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    run_reference(SYSTEM, SHORT, SEED, tmp_path / "whole.extxyz", workdir=tmp_path / "w1", progress=quiet)
    whole = load_reference(tmp_path / "whole.extxyz")
    out, work = tmp_path / "resumed.extxyz", tmp_path / "w2"
    log: list[str] = []
    with pytest.raises(Crash, match="step 120/400"):
        run_reference(SYSTEM, SHORT, SEED, out, workdir=work, progress=crash_after(4, log))
    assert not out.exists()
    assert json.loads((work / "resumed.extxyz.checkpoint.json").read_text())["nve_step"] == 120
    log.clear()
    run_reference(SYSTEM, SHORT, SEED, out, workdir=work, progress=log.append)
    assert any("resuming" in m and "step 120" in m for m in log)
    assert not any(m.startswith("npt") for m in log)
    assert_same_frames(load_reference(out), whole)
    assert list(work.iterdir()) == []  # checkpoint files removed
    # no workdir: same frames too (chunk boundaries re-neighbour the same way)
    run_reference(SYSTEM, SHORT, SEED, tmp_path / "plain.extxyz", progress=quiet)
    assert_same_frames(load_reference(tmp_path / "plain.extxyz"), whole)


def test_checkpoint_of_another_seed_is_ignored(tmp_path):
    out, work = tmp_path / "run.extxyz", tmp_path / "work"
    with pytest.raises(Crash):
        run_reference(SYSTEM, SHORT, SEED + 1, out, workdir=work, progress=crash_after(3, []))
    log: list[str] = []
    run_reference(SYSTEM, SHORT, SEED, out, workdir=work, progress=log.append)
    assert any("ignoring checkpoint" in m for m in log)
    run_reference(SYSTEM, SHORT, SEED, tmp_path / "fresh.extxyz", progress=quiet)
    assert_same_frames(load_reference(out), load_reference(tmp_path / "fresh.extxyz"))


def test_corrupt_checkpoint_and_output_raise_input_error(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "run.extxyz.checkpoint.json").write_text("{not json")
    with pytest.raises(InputError, match="checkpoint.json"):
        run_reference(SYSTEM, SHORT, SEED, tmp_path / "run.extxyz", workdir=work, progress=quiet)
    with pytest.raises(InputError, match="not found"):
        load_reference(tmp_path / "missing.extxyz")
    (tmp_path / "bad.extxyz").write_text("3\nnonsense\n")
    with pytest.raises(InputError, match="bad.extxyz"):
        load_reference(tmp_path / "bad.extxyz")


# (f) potential energies of given frames --------------------------------------------------------


def test_potential_energies_match_lj_energy_forces_and_ignore_periodic_images(reference):
    _, traj = reference
    frames, box = traj["positions"][::25], traj["cell"][0]
    energies = potential_energies(frames, box, SYSTEM)
    expected = [lj_energy_forces(np.mod(x, box), box, SYSTEM.epsilon, SYSTEM.sigma, SYSTEM.cutoff)[0] for x in frames]
    np.testing.assert_allclose(energies, expected, rtol=1e-10)
    np.testing.assert_allclose(energies, traj["potential_energy"][::25], rtol=1e-8)  # positions rounded to 1e-8 A
    shifts = np.random.default_rng(0).integers(-5, 6, size=frames.shape) * box
    np.testing.assert_allclose(potential_energies(frames + shifts, np.diag(box), SYSTEM), energies, rtol=1e-10)
    with pytest.raises(ValueError, match="orthorhombic"):
        potential_energies(frames, np.diag(box) + 0.1, SYSTEM)


def test_the_potential_is_cut_without_shift(reference):
    """Plain minus shifted energy is V(r_c) times the number of pairs inside the cutoff: an integer count."""
    _, traj = reference
    frames, box = traj["positions"][::50], traj["cell"][0]
    sr6 = (SYSTEM.sigma / SYSTEM.cutoff) ** 6
    v_cut = 4 * SYSTEM.epsilon * (sr6**2 - sr6)
    pairs = (potential_energies(frames, box, SYSTEM) - potential_energies(frames, box, SYSTEM, shift=True)) / v_cut
    np.testing.assert_allclose(pairs, np.round(pairs), atol=1e-6)
    expected = N / 2 * 4 / 3 * np.pi * SYSTEM.cutoff**3 * N / box.prod()
    assert (np.abs(pairs / expected - 1) < 0.1).all()


# (g) run_nve continues a trajectory -----------------------------------------------------------------


def test_run_nve_continues_the_reference_trajectory(reference):
    _, traj = reference
    k = 50
    x, p, cell = last_state(traj, k)
    cont = run_nve(x, p, cell, SYSTEM, dt=1.0, steps=200, save_every=20, progress=quiet)
    assert len(cont["time"]) == 11 and cont["time"][0] == 0.0 and cont["time"][-1] == 200.0
    np.testing.assert_allclose(cont["positions"][0], x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cont["momenta"][0], p, rtol=0, atol=1e-12)
    assert cont["total_energy"][0] == pytest.approx(traj["total_energy"][k], rel=1e-8)
    # the same trajectory, up to the 1e-8 rounding of the written state grown over 200 fs
    np.testing.assert_allclose(cont["positions"], traj["positions"][k : k + 11], rtol=0, atol=1e-5)
    np.testing.assert_allclose(cont["total_energy"], traj["total_energy"][k : k + 11], rtol=1e-7)
    # unwrapped input far outside the box is accepted and stays unwrapped
    shifted = run_nve(x + 2 * cell, p, cell, SYSTEM, dt=1.0, steps=40, save_every=20, progress=quiet)
    np.testing.assert_allclose(shifted["positions"], cont["positions"][:3] + 2 * cell, atol=1e-9)
    # shift=True reports the shifted potential of the same trajectory
    cut = run_nve(x, p, cell, SYSTEM, dt=1.0, steps=40, save_every=20, progress=quiet, shift=True)
    np.testing.assert_array_equal(cut["positions"], cont["positions"][:3])
    np.testing.assert_allclose(
        cut["potential_energy"], potential_energies(cut["positions"], cell, SYSTEM, shift=True), rtol=1e-12
    )
    assert (cut["potential_energy"] > cont["potential_energy"][:3]).all()  # V(rc) < 0 is added back per pair


def test_run_nve_is_velocity_verlet_in_ase_units(reference):
    """Ten 2 fs steps agree with velocity Verlet written out in ASE units (time unit = 1 / units.fs fs)."""
    _, traj = reference
    x, p, cell = last_state(traj)
    dt, steps = 2.0, 10
    lammps = run_nve(x, p, cell, SYSTEM, dt=dt, steps=steps, save_every=steps, progress=quiet)

    def forces(q):
        return lj_energy_forces(np.mod(q, cell), cell, SYSTEM.epsilon, SYSTEM.sigma, SYSTEM.cutoff)[1]

    h, q, mom, f = dt * units.fs, x.copy(), p.copy(), forces(x)
    for _ in range(steps):
        mom += 0.5 * h * f
        q += h * mom / SYSTEM.mass
        f = forces(q)
        mom += 0.5 * h * f
    # measured: 3e-10 A and 1.2e-8 apart (LAMMPS' metal constants are not ASE's CODATA ones);
    # the atoms move 0.08 A, so a time unit 10% off would show at 1e-2 A
    np.testing.assert_allclose(lammps["positions"][-1], q, rtol=0, atol=1e-8)
    np.testing.assert_allclose(lammps["momenta"][-1], mom, rtol=0, atol=2e-7)


# (h) no centre-of-mass motion ------------------------------------------------------------------------


def test_centre_of_mass_momentum_vanishes(reference):
    _, traj = reference
    total = traj["momenta"].sum(axis=1)  # (F, 3)
    typical = np.sqrt((traj["momenta"] ** 2).mean())
    assert np.abs(total).max() < 1e-6 * typical * N
