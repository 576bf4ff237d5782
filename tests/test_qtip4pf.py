"""Tests of the q-TIP4P/f water model (:mod:`actionmd.potentials.qtip4pf`); units A, eV, e, u, fs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet

from actionmd.core.augmentation import random_rotation_matrices as random_rotations
from actionmd.potentials.qtip4pf import (
    COULOMB_EV_A,
    KCAL_MOL_TO_EV,
    QTIP4PF,
    QTIP4PFCalculator,
    QTIP4PFParameters,
    total_dipole,
    water_box,
    water_molecule,
)

P = QTIP4PFParameters()
#: Ewald parameters much tighter than the defaults (energies converged to ~1e-10 eV here).
TIGHT = {"ewald_cutoff": 12.0, "smearing": 2.5, "lr_wavelength": 1.2}


def distorted_box(n_per_side: int, seed: int, noise: float = 0.05) -> Atoms:
    """Water box with every atom displaced by Gaussian noise (A), so no term sits at its minimum."""
    atoms = water_box(n_per_side, seed=seed)
    atoms.positions += np.random.default_rng(seed + 100).normal(scale=noise, size=atoms.positions.shape)
    return atoms


def molecule(r1: float, r2: float, theta_deg: float, center: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """O H H positions (3, 3) A with O-H lengths r1, r2 (A) and H-O-H angle theta, rotated, O at ``center``."""
    t = math.radians(theta_deg)
    x = np.array([[0.0, 0.0, 0.0], [r1, 0.0, 0.0], [r2 * math.cos(t), r2 * math.sin(t), 0.0]])
    return x @ rotation.T + center


def charge_sites_by_hand(mol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H1, H2, M) positions and charges of one molecule from the model's definition."""
    o, h1, h2 = mol
    m = P.gamma * o + 0.5 * (1.0 - P.gamma) * (h1 + h2)
    return np.array([h1, h2, m]), np.array([0.5564, 0.5564, -1.1128])


def dipole_image_energy(positions: np.ndarray, length: float) -> float:
    """Tin-foil Ewald energy of a neutral cluster's periodic images in a cubic box, to leading order (eV).

    Ewald (k = 0 dropped) = spherical lattice sum - 2 pi k_e |mu|^2 / (3 V), and the spherical
    lattice sum of a cubic lattice of dipoles vanishes; the remainder is O(size^4 / L^5).
    """
    mu = total_dipole(positions, [length] * 3)
    return -2.0 * math.pi * COULOMB_EV_A * float(mu @ mu) / (3.0 * length**3)


def test_constants_are_the_papers():
    assert KCAL_MOL_TO_EV == pytest.approx(0.0433641043)
    assert P.d_r == pytest.approx(116.09 * 0.0433641043)
    assert P.k_theta == pytest.approx(87.85 * 0.0433641043)
    assert P.epsilon == pytest.approx(0.1852 * 0.0433641043)
    assert P.q_m == pytest.approx(-1.1128)
    assert COULOMB_EV_A == pytest.approx(14.399645, rel=1e-7)
    mol = water_molecule()
    assert np.linalg.norm(mol[1] - mol[0]) == pytest.approx(0.9419)
    cos = (mol[1] - mol[0]) @ (mol[2] - mol[0]) / 0.9419**2
    assert math.degrees(math.acos(cos)) == pytest.approx(107.4)


def test_water_box_density_and_order():
    atoms = water_box(3, density_g_cm3=0.997, seed=1)
    assert atoms.get_chemical_symbols() == ["O", "H", "H"] * 27
    density = atoms.get_masses().sum() * units._amu * 1e3 / (atoms.get_volume() * 1e-24)  # g/cm^3
    assert density == pytest.approx(0.997, rel=1e-3)  # ASE masses vs 18.01528 g/mol
    model = QTIP4PF()
    terms = model.energy_breakdown(atoms.positions, atoms.cell, atoms.numbers)
    assert abs(terms["stretch"]) < 1e-20 and abs(terms["bend"]) < 1e-20  # rigid equilibrium molecules
    bcc = water_box(4, seed=0, lattice="bcc")
    assert len(bcc) == 384 and bcc.cell.lengths()[0] == pytest.approx(15.660, abs=1e-3)
    r_oo = bcc.get_all_distances(mic=True)[0::3, 0::3] + 100 * np.eye(128)
    assert r_oo.min() == pytest.approx(15.660 / 4 * math.sqrt(3) / 2, abs=1e-3)


def test_forces_are_minus_the_energy_gradient():
    """Central finite differences (h = 1e-5 A) of the energy on random components of a distorted
    8-molecule box (edge 6.2 A, smaller than the cutoffs, so periodic images matter)."""
    atoms = distorted_box(2, seed=3)
    model = QTIP4PF()
    energy, forces = model.energy_forces(atoms.positions, atoms.cell.array, atoms.numbers)
    assert energy == pytest.approx(model.energy_breakdown(atoms.positions, atoms.cell)["total"], abs=1e-10)
    rng = np.random.default_rng(0)
    h = 1e-5
    for flat in rng.choice(forces.size, size=12, replace=False):
        i, a = divmod(int(flat), 3)
        x = atoms.positions.copy()
        x[i, a] += h
        e_plus = model.energy_breakdown(x, atoms.cell)["total"]
        x[i, a] -= 2 * h
        e_minus = model.energy_breakdown(x, atoms.cell)["total"]
        fd = -(e_plus - e_minus) / (2 * h)
        assert forces[i, a] == pytest.approx(fd, rel=1e-6, abs=1e-6), (i, a)


def test_invariance_to_wrapping_and_translation():
    """Molecules split across the cell boundary (wrapped atoms) give the same energy and forces."""
    atoms = distorted_box(2, seed=4)
    model = QTIP4PF()
    e0, f0 = model.energy_forces(atoms.positions, atoms.cell)
    shifted = atoms.positions + np.array([2.9, -1.3, 0.7])
    wrapped = Atoms(atoms.numbers, positions=shifted, cell=atoms.cell, pbc=True).get_positions(wrap=True)
    e1, f1 = model.energy_forces(wrapped, atoms.cell)
    assert e1 == pytest.approx(e0, abs=1e-9)
    np.testing.assert_allclose(f1, f0, atol=1e-8)
    np.testing.assert_allclose(f0.sum(axis=0), 0.0, atol=1e-9)  # Newton's third law


def test_stress_is_the_strain_derivative():
    """stress = (1/V) dE/d(strain), checked by central differences of the energy of strained systems."""
    atoms = distorted_box(2, seed=5)
    model = QTIP4PF()
    _, _, stress = model.energy_forces_stress(atoms.positions, atoms.cell)
    np.testing.assert_allclose(stress, stress.T, atol=1e-12)
    pos = torch.tensor(atoms.positions)
    cell = torch.tensor(atoms.cell.array)
    volume = atoms.get_volume()
    h = 1e-6
    for a, b in [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2)]:
        energies = []
        for sign in (1, -1):
            strain = torch.zeros(3, 3, dtype=torch.float64)
            strain[a, b] = strain[b, a] = sign * h / (1 if a == b else 2)
            deform = torch.eye(3, dtype=torch.float64) + strain
            with torch.no_grad():
                energies.append(float(sum(model.energy_terms(pos @ deform, cell @ deform).values())))
        fd = (energies[0] - energies[1]) / (2 * h) / volume  # dE = V stress_ab h in both cases
        assert stress[a, b] == pytest.approx(fd, rel=1e-5, abs=1e-8), (a, b)


def test_isolated_molecule():
    """One distorted molecule in a 60 A box: stretch and bend by hand, no LJ, and a Coulomb energy that
    is only the interaction with its own periodic images (tin-foil dipole term, -3.5e-5 eV here):
    the three intramolecular pairs are fully excluded and the Gaussian self-energy removed."""
    length = 60.0
    rng = np.random.default_rng(7)
    mol = molecule(1.0, 0.9, 100.0, np.full(3, 0.5 * length), random_rotations(1, rng)[0])
    terms = QTIP4PF(**TIGHT).energy_breakdown(mol, [length] * 3, [8, 1, 1])

    d_r, a, r_eq = 116.09 * KCAL_MOL_TO_EV, 2.287, 0.9419
    stretch = sum(d_r * ((a * dr) ** 2 - (a * dr) ** 3 + 7 / 12 * (a * dr) ** 4) for dr in (1.0 - r_eq, 0.9 - r_eq))
    bend = 0.5 * 87.85 * KCAL_MOL_TO_EV * math.radians(100.0 - 107.4) ** 2
    assert terms["stretch"] == pytest.approx(stretch, rel=1e-12)
    assert terms["bend"] == pytest.approx(bend, rel=1e-12)
    assert terms["lj"] == 0.0
    image = dipole_image_energy(mol, length)
    assert abs(terms["coulomb"]) < 1e-4
    # measured remainder 5e-8 eV: the next term of the lattice expansion, O(r^4 / L^5)
    assert terms["coulomb"] == pytest.approx(image, abs=2e-7)
    # with the default Ewald parameters the k-space truncation adds ~1.6e-6 eV
    default = QTIP4PF().energy_breakdown(mol, [length] * 3)["coulomb"]
    assert default == pytest.approx(image, abs=5e-6)


def test_dimer_matches_direct_sum():
    """Two molecules in a 60 A box: Ewald Coulomb = direct sum over the 9 intermolecular charge pairs
    plus the tin-foil image term of the total dipole; LJ = the single O-O pair."""
    length = 60.0
    rng = np.random.default_rng(11)
    rot = random_rotations(1, rng)[0]  # both molecules alike: parallel dipoles, a sizeable image term
    m1 = molecule(0.95, 0.93, 105.0, np.full(3, 0.5 * length), rot)
    m2 = molecule(0.96, 0.94, 108.0, np.full(3, 0.5 * length) + rot @ [0.3, 0.2, 3.0], rot)
    positions = np.vstack([m1, m2])
    s1, q1 = charge_sites_by_hand(m1)
    s2, q2 = charge_sites_by_hand(m2)
    direct = COULOMB_EV_A * sum(q1[i] * q2[j] / np.linalg.norm(s1[i] - s2[j]) for i in range(3) for j in range(3))
    r_oo = np.linalg.norm(m1[0] - m2[0])
    sigma, eps = 3.1589, 0.1852 * KCAL_MOL_TO_EV
    lj = 4 * eps * ((sigma / r_oo) ** 12 - (sigma / r_oo) ** 6)
    image = dipole_image_energy(positions, length)

    terms = QTIP4PF(**TIGHT).energy_breakdown(positions, [length] * 3)
    assert terms["lj"] == pytest.approx(lj, rel=1e-12)
    # measured: 2.7e-7 eV with the tight Ewald parameters (the O(L^-5) lattice term), 3.6e-6 eV
    # with the defaults; the raw difference to the direct sum is the image term, -1.2e-4 eV here
    assert terms["coulomb"] == pytest.approx(direct + image, abs=1e-6)
    default = QTIP4PF().energy_breakdown(positions, [length] * 3)
    assert default["coulomb"] + default["lj"] == pytest.approx(direct + image + lj, abs=1e-5)
    assert abs(terms["coulomb"] - direct) > 5e-5  # the image term is resolved


def test_lj_is_truncated_without_shift():
    """Two O atoms just inside and just outside 9 A: the LJ energy jumps from its full value to 0."""
    length = 30.0
    mol = water_molecule()
    for r, expected in [(8.999, 4 * P.epsilon * ((P.sigma / 8.999) ** 12 - (P.sigma / 8.999) ** 6)), (9.001, 0.0)]:
        positions = np.vstack([mol + 5.0, mol + 5.0 + [r, 0.0, 0.0]])
        assert QTIP4PF().energy_breakdown(positions, [length] * 3)["lj"] == pytest.approx(expected, rel=1e-12)


def test_ewald_energy_converges():
    """64-molecule box: the Coulomb energy approaches a tight reference monotonically as the Ewald
    parameters tighten; the defaults are within 1e-5 eV per molecule (measured 4e-7) and their
    forces within 2e-5 eV/A (measured 4e-6)."""
    atoms = distorted_box(4, seed=6)
    n_mol = len(atoms) // 3

    def coulomb_forces(**kw) -> tuple[float, np.ndarray]:
        model = QTIP4PF(**kw)
        pos = torch.tensor(atoms.positions, requires_grad=True)
        energy = model.energy_terms(pos, torch.tensor(atoms.cell.array))["coulomb"]
        (grad,) = torch.autograd.grad(energy, pos)
        return energy.item(), -grad.numpy()

    e_ref, f_ref = coulomb_forces(ewald_cutoff=14.0, smearing=2.2, lr_wavelength=1.0)
    ladder = [(6.0, 1.3, 3.0), (7.0, 1.4, 2.6), (9.0, 1.7, 2.1), (11.0, 2.0, 1.6)]
    errors = [
        abs(coulomb_forces(ewald_cutoff=rc, smearing=s, lr_wavelength=w)[0] - e_ref) / n_mol for rc, s, w in ladder
    ]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[0] > 1e-3 and errors[-1] < 3e-7, errors  # measured 9.7e-3, 1.8e-3, 6.6e-7, 1.0e-7
    e_def, f_def = coulomb_forces()
    assert abs(e_def - e_ref) / n_mol < 1e-5
    assert np.abs(f_def - f_ref).max() < 2e-5


def autograd_energy_forces(model: QTIP4PF, positions: np.ndarray, lengths) -> tuple[dict[str, float], np.ndarray]:
    """Energy terms and forces of the torch path: torch-pme's Ewald sum, forces by autograd."""
    pos = torch.tensor(positions, requires_grad=True)
    terms = model.energy_terms(pos, torch.diag(torch.tensor(np.asarray(lengths, dtype=float))))
    (grad,) = torch.autograd.grad(sum(terms.values()), pos)
    return {k: v.item() for k, v in terms.items()}, -grad.numpy()


@pytest.mark.parametrize(
    ("n_per_side", "lattice", "stretch"),
    [(2, "sc", (1.0, 1.0, 1.0)), (4, "sc", (1.0, 1.1, 0.93)), (4, "bcc", (1.0, 1.0, 1.0))],
)
def test_fast_path_equals_torchpme_autograd(n_per_side, lattice, stretch):
    """energy_forces / energy_breakdown (numpy, half-space reciprocal sum, analytic forces) equal the
    torch-pme + autograd evaluation of energy_terms to 1e-9 relative (measured ~1e-14), also in a
    non-cubic orthorhombic box and with unwrapped positions far outside the cell."""
    atoms = water_box(n_per_side, seed=9, lattice=lattice)
    atoms.set_cell(atoms.cell.lengths() * np.array(stretch), scale_atoms=True)
    atoms.positions += np.random.default_rng(1).normal(scale=0.05, size=atoms.positions.shape)
    atoms.positions += np.array([31.0, -47.3, 102.6])
    model = QTIP4PF()
    lengths = atoms.cell.lengths()
    terms_ref, forces_ref = autograd_energy_forces(model, atoms.positions, lengths)
    energy, forces = model.energy_forces(atoms.positions, atoms.cell, atoms.numbers)
    total_ref = sum(terms_ref.values())
    assert energy == pytest.approx(total_ref, rel=1e-9)
    assert np.abs(forces - forces_ref).max() < 1e-9 * np.abs(forces_ref).max()
    terms = model.energy_breakdown(atoms.positions, atoms.cell)
    for key, value in terms_ref.items():
        assert terms[key] == pytest.approx(value, abs=1e-9 * abs(total_ref)), key
    # a second call reuses the neighbour lists and k tables: same result
    energy2, forces2 = model.energy_forces(atoms.positions, atoms.cell)
    assert energy2 == energy
    np.testing.assert_array_equal(forces2, forces)


@pytest.mark.parametrize("n_workers", [1, 2])
def test_energy_forces_batch_equals_single_calls(n_workers):
    """R replicas in one call (serial or threaded) give each replica's energy_forces, also along a
    trajectory (each replica keeps its own neighbour-list cache) and after the cell changes."""
    base = water_box(2, seed=12)
    rng = np.random.default_rng(3)
    model = QTIP4PF()
    for cell_scale in (1.0, 1.0, 1.05):
        cell = base.cell.array * cell_scale
        x = np.stack(
            [base.positions * cell_scale + rng.normal(scale=0.06, size=base.positions.shape) for _ in range(3)]
        )
        energies, forces = model.energy_forces_batch(x, cell, base.numbers, n_workers=n_workers)
        assert energies.shape == (3,) and forces.shape == x.shape
        for r in range(3):
            e, f = QTIP4PF().energy_forces(x[r], cell)
            assert energies[r] == pytest.approx(e, rel=1e-12)
            np.testing.assert_allclose(forces[r], f, rtol=0, atol=1e-11)
    assert len(set(energies.tolist())) == 3  # the replicas differ
    with pytest.raises(ValueError, match="R, N, 3"):
        model.energy_forces_batch(x[0], cell)
    with pytest.raises(ValueError, match="multiple of 3"):
        model.energy_forces_batch(x[:, :-1], cell)


def nve_energies(atoms: Atoms, dt_fs: float, n_steps: int) -> np.ndarray:
    """Total energies (eV) along an ASE velocity-Verlet run of ``atoms`` (modified in place)."""
    dyn = VelocityVerlet(atoms, timestep=dt_fs * units.fs)
    energies = []
    dyn.attach(lambda: energies.append(atoms.get_total_energy()), interval=1)
    dyn.run(n_steps)
    return np.array(energies)


@pytest.fixture
def one_torch_thread():
    """Run on one torch thread (several threads on a busy machine make each small step far slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.filterwarnings("ignore:Use thermalize_momenta:DeprecationWarning")  # ase >= 3.27; kept for ase 3.23
def test_nve_conserves_energy(one_torch_thread):
    """27 molecules from the grid at 300 K (they warm to ~630 K as H bonds form): 100 fs of NVE at
    0.25 fs conserve the total energy, measured spread 5.3e-3 eV and drift 2.5e-5 eV/fs (mostly the
    -5.9e-5 eV jump each time an O-O pair enters the unshifted 9 A LJ cutoff: 0.125 fs gives the
    same drift); the same 100 fs at 1 fs spread 9e-2 eV (17x), and 2 fs blows up."""

    def start() -> Atoms:
        atoms = water_box(3, seed=2)
        atoms.calc = QTIP4PFCalculator()
        MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(2))
        Stationary(atoms)
        return atoms

    fine = nve_energies(start(), 0.25, 400)
    coarse = nve_energies(start(), 1.0, 100)
    spread_fine = fine.max() - fine.min()
    spread_coarse = coarse.max() - coarse.min()
    drift_fine = abs(np.polyfit(np.arange(len(fine)) * 0.25, fine, 1)[0])  # eV/fs
    assert spread_fine < 1e-2, spread_fine
    assert drift_fine < 1e-4, drift_fine
    assert spread_coarse > 5 * spread_fine, (spread_fine, spread_coarse)


def test_calculator_results_and_stress_voigt():
    atoms = distorted_box(2, seed=8)
    atoms.calc = QTIP4PFCalculator(smearing=1.7)
    model = QTIP4PF()
    energy, forces, stress = model.energy_forces_stress(atoms.positions, atoms.cell, atoms.numbers)
    assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), forces, atol=1e-10)
    np.testing.assert_allclose(atoms.get_stress(voigt=False), stress, atol=1e-12)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda a: Atoms("HOH" * 8, positions=a.positions, cell=a.cell, pbc=True), "O H H"),
        (lambda a: Atoms("OH2" * 7 + "O", positions=a.positions[:22], cell=a.cell, pbc=True), "multiple of 3"),
        (
            lambda a: Atoms(a.numbers, positions=a.positions, cell=a.cell.array + np.eye(3)[[1, 0, 2]], pbc=True),
            "orthorhombic",
        ),
        (lambda a: Atoms(a.numbers, positions=a.positions, cell=a.cell, pbc=[True, True, False]), "periodic"),
    ],
)
def test_bad_input_raises(build, message):
    atoms = build(water_box(2, seed=0))
    atoms.calc = QTIP4PFCalculator()
    with pytest.raises(ValueError, match=message):
        atoms.get_potential_energy()
