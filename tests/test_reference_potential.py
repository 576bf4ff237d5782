"""Tests of the exchangeable reference potentials (:mod:`actionmd.potentials.reference`): EAM run by
LAMMPS (:class:`actionmd.potentials.lammps.LammpsEAMCalculator`), any ASE calculator (ASE's EMT here)
and the toy Morse metatomic model (:mod:`actionmd.potentials.toy`). Units A, eV, eV/A, eV/A^3;
stress in ASE's sign convention."""

import warnings

import numpy as np
import pytest
from ase.build import bulk
from ase.units import Bohr, Hartree

from actionmd.io import InputError
from actionmd.potentials.reference import KINDS, Evaluator, calculator, check, describe, eam_file
from actionmd.potentials.toy import export_toy_potential, toy_energy

EAM_SPEC = {"kind": "eam", "file": "Al_jnp.eam"}

# LAMMPS vs ASE's pure-python EAM (same file, both cubic-spline interpolations of the tables):
# measured 6e-7 eV (32 atoms), 1.3e-4 eV/A and 1.1e-6 eV/A^3 on the perturbed cell below.
EAM_E_TOL = 1e-5  # eV
EAM_F_TOL = 5e-4  # eV/A
EAM_S_TOL = 1e-5  # eV/A^3
# finite differences (central, step H) of one potential against its own derivatives
H = 1e-4
FD_F_TOL = 1e-6  # eV/A (measured ~1e-8 for EAM and the toy model)
FD_S_TOL = 1e-7  # eV/A^3


def perturbed_al(seed: int = 1, repeat: int = 2, noise: float = 0.1):
    """fcc Al (a = 4.05 A, cubic cell repeated), every atom displaced by Gaussian noise (A)."""
    atoms = bulk("Al", "fcc", a=4.05, cubic=True).repeat(repeat)
    atoms.positions += np.random.default_rng(seed).normal(scale=noise, size=atoms.positions.shape)
    return atoms


def gete_rocksalt(seed: int = 2, noise: float = 0.15):
    """64-atom rocksalt GeTe (a = 6 A, 12 A cubic cell), atoms displaced by Gaussian noise (A)."""
    atoms = bulk("GeTe", "rocksalt", a=6.0, cubic=True).repeat(2)
    atoms.positions += np.random.default_rng(seed).normal(scale=noise, size=atoms.positions.shape)
    return atoms


def fd_forces(energy, positions, cell, indices) -> np.ndarray:
    """-dE/dr_(i, a) by central differences for the (atom, axis) pairs ``indices``."""
    out = []
    for i, a in indices:
        values = []
        for sign in (1, -1):
            moved = positions.copy()
            moved[i, a] += sign * H
            values.append(energy(moved, cell))
        out.append(-(values[0] - values[1]) / (2 * H))
    return np.array(out)


def fd_stress(energy, positions, cell, components) -> np.ndarray:
    """(1/V) dE/d(strain)_(a, b) by central differences of a homogeneous symmetric strain
    (cell and positions both deformed by I + eps) for the components ``(a, b)``."""
    volume = abs(np.linalg.det(cell))
    out = []
    for a, b in components:
        values = []
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            eps[a, b] += 0.5 * sign * H
            eps[b, a] += 0.5 * sign * H
            deform = np.eye(3) + eps
            values.append(energy(positions @ deform, cell @ deform))
        out.append((values[0] - values[1]) / (2 * H) / volume)
    return np.array(out)


def assert_derivatives_of_the_energy(calc, atoms, indices) -> np.ndarray:
    """Forces at the (atom, axis) pairs ``indices`` and the diagonal stress of ``calc`` equal central
    differences of its energy (orthorhombic cells: diagonal strains only); returns the stress."""
    _, forces, stress = Evaluator(calc, atoms.numbers)(atoms.positions, atoms.cell.array)

    def e(positions, cell):
        return Evaluator(calc, atoms.numbers)(positions, cell)[0]

    expected = np.array([forces[i, a] for i, a in indices])
    np.testing.assert_allclose(fd_forces(e, atoms.positions, atoms.cell.array, indices), expected, atol=FD_F_TOL)
    diagonal = [(0, 0), (1, 1), (2, 2)]
    fd = fd_stress(e, atoms.positions, atoms.cell.array, diagonal)
    np.testing.assert_allclose(fd, np.diag(stress), rtol=0, atol=FD_S_TOL)
    assert np.abs(np.diag(stress)).min() > 1e3 * FD_S_TOL
    return stress


@pytest.fixture(scope="module")
def toy_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("toy") / "toy.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        export_toy_potential(path)
    return str(path)


@pytest.fixture(scope="module")
def toy_calc(toy_path):
    return calculator({"kind": "toy"}, model_path=toy_path)


# ---- EAM through LAMMPS --------------------------------------------------------------------


def test_eam_matches_ase_eam():
    """Same Al_jnp.eam file, two codes: LAMMPS (this project's calculator) and ase.calculators.eam.

    LAMMPS converts the funcfl effective charges to r*phi with its historical constant
    27.2 * 0.529 eV A, ASE with CODATA's Hartree * Bohr (0.075 % larger); the ASE tables are
    rescaled to LAMMPS' convention, without which the pair energies differ far beyond the
    interpolation tolerance.
    """
    from ase.calculators.eam import EAM

    atoms = perturbed_al()
    path = str(eam_file("Al_jnp.eam"))
    energy, forces, stress = Evaluator(calculator(EAM_SPEC), atoms.numbers)(atoms.positions, atoms.cell.array)

    ase_eam = EAM(potential=path)
    raw = atoms.copy()
    raw.calc = ase_eam
    e_raw = raw.get_potential_energy()
    assert abs(e_raw - energy) > 100 * EAM_E_TOL  # the constant matters (0.34 eV here)

    ase_eam = EAM(potential=path)
    ase_eam.rphi_data *= 27.2 * 0.529 / (Bohr * Hartree)
    ase_eam.set_splines()
    ref = atoms.copy()
    ref.calc = ase_eam
    assert abs(ref.get_potential_energy() - energy) < EAM_E_TOL
    np.testing.assert_allclose(forces, ref.get_forces(), rtol=0, atol=EAM_F_TOL)
    s_ref = ref.get_stress(voigt=False)
    np.testing.assert_allclose(stress, s_ref, rtol=0, atol=EAM_S_TOL)
    # the compared quantities are far above the tolerances, shear stresses included
    assert np.abs(forces).max() > 1000 * EAM_F_TOL
    assert min(abs(s_ref[0, 1]), abs(s_ref[0, 2]), abs(s_ref[1, 2])) > 3 * EAM_S_TOL


@pytest.mark.parametrize(
    ("file", "elements", "lattice", "tolerances"),
    [
        # coarse tables (dr = 0.0128 A): the two interpolations differ by up to 5e-3 eV/A (measured)
        ("CuNi.eam.alloy", ("Cu", "Ni"), 3.6, (2e-4, 2e-2, 5e-4)),
        # fine tables (dr = 6.5e-4 A): measured 3e-10 eV, 1.2e-6 eV/A, 8e-9 eV/A^3
        ("AlFe_mm.eam.fs", ("Al", "Fe"), 4.0, (1e-7, 1e-5, 1e-7)),
    ],
)
def test_eam_alloy_and_fs_files_map_the_species(file, elements, lattice, tolerances):
    """Two-element setfl and Finnis-Sinclair files: LAMMPS matches ASE's EAM with the species mapped
    by symbol (the files list them in another order than the atoms' types)."""
    from ase.calculators.eam import EAM

    e_tol, f_tol, s_tol = tolerances
    atoms = bulk(elements[0], "fcc", a=lattice, cubic=True).repeat(2)
    rng = np.random.default_rng(13)
    atoms.positions += rng.normal(scale=0.1, size=atoms.positions.shape)
    symbols = atoms.get_chemical_symbols()
    for i in rng.choice(len(atoms), 12, replace=False):
        symbols[i] = elements[1]
    atoms.set_chemical_symbols(symbols)
    energy, forces, stress = Evaluator(calculator({"kind": "eam", "file": file}), atoms.numbers)(
        atoms.positions, atoms.cell.array
    )
    ref = atoms.copy()
    ref.calc = EAM(potential=str(eam_file(file)))
    e_ref = ref.get_potential_energy()
    assert abs(e_ref - energy) < e_tol
    np.testing.assert_allclose(forces, ref.get_forces(), rtol=0, atol=f_tol)
    np.testing.assert_allclose(stress, ref.get_stress(voigt=False), rtol=0, atol=s_tol)
    # the species matter: the same positions with the two elements swapped
    swapped = atoms.copy()
    swapped.set_chemical_symbols([elements[1] if s == elements[0] else elements[0] for s in symbols])
    swapped.calc = EAM(potential=str(eam_file(file)))
    assert abs(swapped.get_potential_energy() - e_ref) > 100 * e_tol


def test_eam_forces_and_stress_are_derivatives_of_the_energy():
    indices = [(0, 0), (3, 1), (7, 2), (11, 0), (20, 1), (31, 2)]
    # the shear components are checked against ASE
    stress = assert_derivatives_of_the_energy(calculator(EAM_SPEC), perturbed_al(seed=3), indices)
    assert np.allclose(stress, stress.T)


def test_eam_cell_changes_and_rebuilds():
    """A new cell (same atoms) gives the new energy, not a stale box; new atoms rebuild LAMMPS."""
    atoms = perturbed_al(seed=4)
    calc = calculator(EAM_SPEC)
    evaluate = Evaluator(calc, atoms.numbers)
    e0 = evaluate(atoms.positions, atoms.cell.array)[0]
    deform = np.diag([1.03, 0.98, 1.01])
    e1, f1, s1 = evaluate(atoms.positions @ deform, atoms.cell.array @ deform)
    fresh = Evaluator(calculator(EAM_SPEC), atoms.numbers)
    e1_ref, f1_ref, s1_ref = fresh(atoms.positions @ deform, atoms.cell.array @ deform)
    assert abs(e1 - e0) > 0.1
    assert e1 == pytest.approx(e1_ref, abs=1e-10)
    np.testing.assert_allclose(f1, f1_ref, atol=1e-10)
    np.testing.assert_allclose(s1, s1_ref, atol=1e-12)
    assert evaluate(atoms.positions, atoms.cell.array)[0] == pytest.approx(e0, abs=1e-10)

    # another number of atoms with the same calculator: LAMMPS is rebuilt
    bigger = perturbed_al(seed=5, repeat=3)
    e_big = Evaluator(calc, bigger.numbers)(bigger.positions, bigger.cell.array)[0]
    e_big_ref = Evaluator(calculator(EAM_SPEC), bigger.numbers)(bigger.positions, bigger.cell.array)[0]
    assert e_big == pytest.approx(e_big_ref, abs=1e-10)
    assert e_big < 2 * e0  # 108 atoms bind more than 32


def test_eam_positions_outside_the_cell_are_wrapped():
    atoms = perturbed_al(seed=6)
    evaluate = Evaluator(calculator(EAM_SPEC), atoms.numbers)
    e0, f0, s0 = evaluate(atoms.positions, atoms.cell.array)
    lengths = atoms.cell.lengths()
    shifts = np.random.default_rng(7).integers(-3, 4, size=atoms.positions.shape)
    e1, f1, s1 = evaluate(atoms.positions + shifts * lengths, atoms.cell.array)
    assert evaluate.calls == 2
    assert e1 == pytest.approx(e0, abs=1e-9)
    np.testing.assert_allclose(f1, f0, atol=1e-9)
    np.testing.assert_allclose(s1, s0, atol=1e-12)


def test_eam_refuses_what_it_cannot_do(tmp_path):
    atoms = perturbed_al()
    sheared = atoms.cell.array.copy()
    sheared[1, 0] = 0.5
    with pytest.raises(ValueError, match="orthorhombic"):
        Evaluator(calculator(EAM_SPEC), atoms.numbers)(atoms.positions, sheared)
    with pytest.raises(ValueError, match="Al_jnp.eam describes Al only, not Cu"):
        numbers = atoms.numbers.copy()
        numbers[0] = 29
        Evaluator(calculator(EAM_SPEC), numbers)(atoms.positions, atoms.cell.array)


def test_evaluator_caches_the_last_configuration():
    atoms = perturbed_al(seed=8)
    evaluate = Evaluator(calculator(EAM_SPEC), atoms.numbers)
    positions = atoms.positions.copy()
    cell = atoms.cell.array.copy()
    e0, f0, s0 = evaluate(positions, cell)
    assert evaluate.calls == 1
    f0[:] = 0.0  # returned arrays are copies: the cache is not corrupted
    e1, f1, s1 = evaluate(positions.copy(), cell.copy())
    assert evaluate.calls == 1
    assert e1 == e0
    assert np.abs(f1).max() > 0.1
    moved = positions.copy()
    moved[5, 1] += 0.05
    e2, f2, _ = evaluate(moved, cell)
    assert evaluate.calls == 2
    assert e2 != e0
    assert not np.array_equal(f2, f1)
    evaluate(moved, cell * 1.001)
    assert evaluate.calls == 3


# ---- the toy metatomic model -----------------------------------------------------------------


def test_gete_test_structure():
    atoms = gete_rocksalt()
    assert len(atoms) == 64
    assert np.count_nonzero(atoms.numbers == 32) == 32
    assert np.count_nonzero(atoms.numbers == 52) == 32
    np.testing.assert_allclose(atoms.cell.array, 12.0 * np.eye(3))


def test_toy_model_energy_forces_stress(toy_calc):
    atoms = gete_rocksalt()
    evaluate = Evaluator(toy_calc, atoms.numbers)
    energy, forces, stress = evaluate(atoms.positions, atoms.cell.array)
    e_ref = toy_energy(atoms.positions, atoms.cell.array, atoms.numbers)
    assert abs(energy - e_ref) < 1e-8
    assert abs(e_ref) > 10.0

    def e(positions, cell):
        return toy_energy(positions, cell, atoms.numbers)

    indices = [(0, 0), (9, 1), (20, 2), (33, 0), (47, 1), (63, 2)]
    expected = np.array([forces[i, a] for i, a in indices])
    np.testing.assert_allclose(fd_forces(e, atoms.positions, atoms.cell.array, indices), expected, atol=FD_F_TOL)
    assert np.abs(expected).min() > 1e3 * FD_F_TOL
    components = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    fd = fd_stress(e, atoms.positions, atoms.cell.array, components)
    np.testing.assert_allclose(fd, [stress[a, b] for a, b in components], rtol=0, atol=FD_S_TOL)
    assert np.abs(fd).min() > 10 * FD_S_TOL
    assert np.allclose(stress, stress.T, atol=1e-14)
    # Newton's third law: a pair potential has no net force
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-10)


def test_toy_model_small_cell_and_atoms_across_the_faces(toy_calc):
    """A 4-atom cell (4.05 A, less than the 6 A cutoff: many images), atoms outside the cell."""
    atoms = perturbed_al(seed=9, repeat=1)
    cell = atoms.cell.array
    rng = np.random.default_rng(10)
    outside = atoms.positions + rng.integers(-2, 3, size=atoms.positions.shape) * 4.05
    outside[0] = [-0.2, 4.1, 2.0]  # just across the x = 0 and y = L faces
    evaluate = Evaluator(toy_calc, atoms.numbers)
    energy, forces, stress = evaluate(outside, cell)
    assert abs(energy - toy_energy(outside, cell, atoms.numbers)) < 1e-8
    frac = outside @ np.linalg.inv(cell)
    wrapped = (frac - np.floor(frac)) @ cell
    e_w, f_w, s_w = evaluate(wrapped, cell)
    assert evaluate.calls == 2
    assert e_w == pytest.approx(energy, abs=1e-10)
    np.testing.assert_allclose(f_w, forces, atol=1e-10)
    np.testing.assert_allclose(s_w, stress, atol=1e-12)

    def e(positions, c):
        return toy_energy(positions, c, atoms.numbers)

    np.testing.assert_allclose(
        fd_forces(e, outside, cell, [(0, 0), (0, 1), (2, 2)]), forces[[0, 0, 2], [0, 1, 2]], atol=FD_F_TOL
    )
    comps = [(0, 0), (1, 2)]
    np.testing.assert_allclose(fd_stress(e, outside, cell, comps), [stress[0, 0], stress[1, 2]], atol=FD_S_TOL)


def test_toy_energy_is_independent_of_the_image_convention():
    """The numpy reference: wrapping, translation and a 2x2x2 supercell (8x the energy) agree."""
    atoms = perturbed_al(seed=11, repeat=1)
    e = toy_energy(atoms.positions, atoms.cell.array, atoms.numbers)
    assert toy_energy(atoms.positions + [10.3, -4.0, 7.7], atoms.cell.array, atoms.numbers) == pytest.approx(e)
    big = atoms.repeat(2)
    assert toy_energy(big.positions, big.cell.array, big.numbers) == pytest.approx(8 * e, rel=1e-12)


# ---- config checks ---------------------------------------------------------------------------


def test_check_metatomic_specs(tmp_path, toy_path):
    with pytest.raises(InputError, match=r"'potentials\.pet-mad\.path' is not set.*export PET-MAD"):
        check("pet-mad", {"kind": "metatomic", "path": None, "device": "auto"})
    missing = tmp_path / "nowhere" / "pet-mad.pt"
    with pytest.raises(InputError, match=r"'potentials\.pet-mad\.path'.*pet-mad\.pt.*does not exist"):
        check("pet-mad", {"kind": "metatomic", "path": str(missing), "device": "cpu"})
    junk = tmp_path / "junk-model.pt"
    junk.write_text("not a TorchScript archive\n")
    with pytest.raises(InputError, match=r"'potentials\.pet-mad\.path'.*junk-model\.pt.*unreadable"):
        check("pet-mad", {"kind": "metatomic", "path": str(junk), "device": "cpu"})
    with pytest.raises(InputError, match=r"'potentials\.pet-mad\.device'"):
        check("pet-mad", {"kind": "metatomic", "path": toy_path, "device": "tpu"})
    check("pet-mad", {"kind": "metatomic", "path": toy_path, "device": "cpu"})
    check("pet-mad", {"kind": "metatomic", "path": None}, model_path=toy_path)
    check("toy", {"kind": "toy"})
    with pytest.raises(InputError, match=r"'potentials\.x\.kind'"):
        check("x", {"kind": "dft"})
    # a model file that is a zip archive but no model: caught when loading, naming the file
    import zipfile

    fake = tmp_path / "fake-model.pt"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("data.txt", "hello")
    with pytest.raises(InputError, match="fake-model.pt"):
        calculator({"kind": "metatomic", "path": str(fake), "device": "cpu"})


def test_check_eam_specs(tmp_path):
    check("eam-al", EAM_SPEC)
    assert eam_file("Al_jnp.eam").is_file()
    local = tmp_path / "my.eam"
    local.write_text("x")
    assert eam_file(str(local)) == local
    with pytest.raises(InputError, match=r"Xx_nothing\.eam.*looked for.*potentials"):
        eam_file("Xx_nothing.eam")
    with pytest.raises(InputError, match=r"'potentials\.eam-al\.file'.*Xx_nothing\.eam"):
        check("eam-al", {"kind": "eam", "file": "Xx_nothing.eam"})
    with pytest.raises(InputError, match=r"'potentials\.eam-al\.file' is not set"):
        check("eam-al", {"kind": "eam"})


def test_describe_and_calculator_kinds(toy_path):
    assert KINDS == ("metatomic", "eam", "ase", "toy")
    assert describe("pet-mad", {"kind": "metatomic", "path": "models/pet-mad.pt"}) == (
        "pet-mad: metatomic model pet-mad.pt"
    )
    assert describe("eam-al", EAM_SPEC) == "eam-al: EAM Al_jnp.eam (LAMMPS)"
    assert describe("toy", {"kind": "toy"}) == "toy: Morse toy metatomic model (tests only)"
    with pytest.raises(ValueError, match="model_path"):
        calculator({"kind": "toy"})
    # a metatomic spec on the toy file runs the same model
    atoms = gete_rocksalt(seed=12)
    calc = calculator({"kind": "metatomic", "path": toy_path, "device": "cpu"})
    energy = Evaluator(calc, atoms.numbers)(atoms.positions, atoms.cell.array)[0]
    assert energy == pytest.approx(toy_energy(atoms.positions, atoms.cell.array, atoms.numbers), abs=1e-8)


# ---- any ASE calculator (kind: ase) -------------------------------------------------------

EMT_SPEC = {"kind": "ase", "calculator": "ase.calculators.emt:EMT", "kwargs": {}, "device": "cpu"}


def test_ase_kind_builds_the_named_calculator_and_its_stress_is_the_strain_derivative():
    """EMT through the ``ase`` kind: the same energy as ASE's EMT called directly, forces and
    stress the derivatives of that energy (ASE's sign convention, which the barostat relies on)."""
    from ase.calculators.emt import EMT

    check("emt", EMT_SPEC)
    assert describe("emt", EMT_SPEC) == "emt: ASE calculator EMT"
    atoms = perturbed_al(seed=5)
    calc = calculator(EMT_SPEC)
    assert isinstance(calc, EMT)
    energy = Evaluator(calc, atoms.numbers)(atoms.positions, atoms.cell.array)[0]
    direct = atoms.copy()
    direct.calc = EMT()
    assert energy == pytest.approx(direct.get_potential_energy(), abs=1e-10)
    assert_derivatives_of_the_energy(calc, atoms, [(0, 0), (5, 1), (17, 2), (30, 0)])


def test_ase_kind_passes_kwargs_and_the_device_keyword():
    from ase.calculators.lj import LennardJones

    spec = {
        "kind": "ase",
        "calculator": "ase.calculators.lj:LennardJones",
        "kwargs": {"sigma": 2.5, "epsilon": 0.02, "rc": 6.0},
    }
    calc = calculator(spec)
    assert isinstance(calc, LennardJones)
    assert (calc.parameters.sigma, calc.parameters.epsilon, calc.parameters.rc) == (2.5, 0.02, 6.0)
    # the device keyword carries the resolved device
    spec = {**spec, "device": "cpu", "device_keyword": "label"}
    assert calculator(spec).label == "cpu"
    # a constructor that fails (SumCalculator needs its list of calculators): the refusal names the key
    with pytest.raises(
        InputError, match=r"'potentials\.sum'.*could not be built.*TypeError.*'potentials\.sum\.kwargs'"
    ):
        check("sum", {"kind": "ase", "calculator": "ase.calculators.mixing:SumCalculator"})


def test_ase_kind_refuses_a_missing_package_or_class_naming_the_key():
    with pytest.raises(InputError, match=r"'potentials\.nn\.calculator'.*no_such_package.*pip install no_such_package"):
        check("nn", {"kind": "ase", "calculator": "no_such_package.calc:Calc"})
    with pytest.raises(InputError, match=r"'potentials\.nn\.calculator'.*no ASE calculator class 'Nope'"):
        check("nn", {"kind": "ase", "calculator": "ase.calculators.emt:Nope"})
    with pytest.raises(InputError, match=r"'potentials\.nn\.calculator'.*package\.module:Class"):
        check("nn", {"kind": "ase", "calculator": "ase.calculators.emt.EMT"})
    with pytest.raises(InputError, match=r"'potentials\.nn\.calculator'.*no ASE calculator class 'Atoms'"):
        check("nn", {"kind": "ase", "calculator": "ase:Atoms"})
    with pytest.raises(InputError, match=r"'potentials\.nn\.device'"):
        check("nn", {**EMT_SPEC, "device": "gpu"})
