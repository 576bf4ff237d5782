"""Tests of the exported q-TIP4P/f metatomic model (:mod:`actionmd.potentials.qtip4pf_metatomic`) against
:class:`actionmd.potentials.qtip4pf.QTIP4PF`; units A, eV, eV/A, eV/A^3."""

import math
import os
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms

from actionmd.potentials.qtip4pf import (
    QTIP4PF,
    QTIP4PFParameters,
    excluded_coulomb_energy,
    intramolecular_vectors,
    water_box,
)
from actionmd.potentials.qtip4pf_metatomic import QTIP4PFModule, export_qtip4pf

P = QTIP4PFParameters()
#: Non-default Ewald parameters (the same ones must be given to the model and to QTIP4PF).
OTHER_EWALD = {"ewald_cutoff": 7.0, "smearing": 1.4, "lr_wavelength": 1.8}

E_REL_TOL = 1e-8  # eV, relative
F_TOL = 1e-7  # eV/A
S_TOL = 1e-9  # eV/A^3


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("qtip4pf_metatomic")
    paths = {"default": str(directory / "qtip4pf.pt"), "other": str(directory / "qtip4pf-other.pt")}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch.jit.save` is deprecated", DeprecationWarning)
        export_qtip4pf(paths["default"])
        export_qtip4pf(paths["other"], **OTHER_EWALD)
    return paths


def calculator(model, **kwargs):
    from metatomic_ase import MetatomicCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return MetatomicCalculator(model, check_consistency=True, **kwargs)


def distorted_box(n_per_side: int, seed: int, noise: float = 0.05) -> Atoms:
    """Water box with every atom displaced by Gaussian noise (A), so that no term sits at its minimum."""
    atoms = water_box(n_per_side, seed=seed)
    atoms.positions += np.random.default_rng(seed + 100).normal(scale=noise, size=atoms.positions.shape)
    return atoms


def straddling_box(seed: int = 3) -> Atoms:
    """Distorted 8-molecule box with molecules straddling the cell faces, positions wrapped into the cell.

    The O of molecule 0 sits 0.1 A inside the x = 0 face and both its H atoms stick out through
    it, so after wrapping they sit on the far side of the cell; the whole box is also shifted in
    y and z so that the molecules of the upper lattice layers cross the y and z faces.
    """
    atoms = distorted_box(2, seed)
    length = atoms.cell.lengths()[0]
    mol = atoms.positions[0:3]
    # orient the molecule so that both H point to -x, then put its O just inside the x = 0 face
    axis = 0.5 * (mol[1] + mol[2]) - mol[0]
    atoms.positions[0:3] = mol - mol[0]
    rotation = _rotation_taking(axis / np.linalg.norm(axis), np.array([-1.0, 0.0, 0.0]))
    atoms.positions[0:3] = atoms.positions[0:3] @ rotation.T + np.array([0.1, 0.5 * length, 0.5 * length])
    atoms.positions[:, 1:] += np.array([1.4, 1.45])
    atoms.wrap()
    return atoms


def _rotation_taking(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation matrix R with R a = b for unit vectors a, b (Rodrigues)."""
    v = np.cross(a, b)
    c = float(a @ b)
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def reference(atoms: Atoms, **ewald) -> tuple[float, np.ndarray, np.ndarray]:
    """QTIP4PF energy (eV), forces (N, 3) and stress in ASE's Voigt order (6,)."""
    energy, forces, stress = QTIP4PF(**ewald).energy_forces_stress(atoms.positions, atoms.cell.array, atoms.numbers)
    return energy, forces, stress.reshape(9)[[0, 4, 8, 5, 2, 1]]


def check_against_reference(atoms: Atoms, path_or_calculator, **ewald) -> None:
    atoms = atoms.copy()
    atoms.calc = calculator(path_or_calculator) if isinstance(path_or_calculator, str) else path_or_calculator
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    e_ref, f_ref, s_ref = reference(atoms, **ewald)
    assert abs(energy - e_ref) <= E_REL_TOL * abs(e_ref)
    np.testing.assert_allclose(forces, f_ref, rtol=0, atol=F_TOL)
    np.testing.assert_allclose(stress, s_ref, rtol=0, atol=S_TOL)


# ---------------------------------------------------------------------------------------


def test_the_comparisons_can_fail():
    """The Coulomb energy, the intramolecular exclusion and their forces are far above the tolerances."""
    atoms = distorted_box(2, seed=1)
    terms = QTIP4PF().energy_breakdown(atoms.positions, atoms.cell.array, atoms.numbers)
    e_ref, f_ref, s_ref = reference(atoms)
    assert abs(terms["coulomb"]) > 1e4 * E_REL_TOL * abs(e_ref)
    pos = torch.tensor(atoms.positions, requires_grad=True)
    d1, d2 = intramolecular_vectors(pos, torch.tensor(atoms.cell.array))
    excluded = excluded_coulomb_energy(d1, d2, P)
    (grad,) = torch.autograd.grad(excluded, pos)
    assert abs(float(excluded.detach())) > 1e4 * E_REL_TOL * abs(e_ref)
    assert float(grad.abs().max()) > 1e4 * F_TOL
    assert np.abs(s_ref).max() > 1e4 * S_TOL
    # the Ewald parameters matter at the tested precision
    e_other = QTIP4PF(**OTHER_EWALD).energy_forces(atoms.positions, atoms.cell.array)[0]
    assert abs(e_other - e_ref) > 100 * E_REL_TOL * abs(e_ref)


@pytest.mark.parametrize(("n_per_side", "seed"), [(2, 1), (3, 2)])
def test_energy_forces_stress_match_qtip4pf(model_paths, n_per_side, seed):
    check_against_reference(distorted_box(n_per_side, seed), model_paths["default"])


def test_repeated_calls_of_one_calculator(model_paths):
    """As in MD: the same (TorchScript) model evaluated again and again stays right.

    TorchScript optimises a graph after its first runs; the gradients of an earlier version
    (complex arithmetic in the reciprocal sum) went wrong from the second call on.
    """
    calc = calculator(model_paths["default"])
    for seed in range(5):
        check_against_reference(distorted_box(2, seed=10 + seed), calc)


def test_non_default_ewald_parameters(model_paths):
    check_against_reference(distorted_box(2, seed=4), model_paths["other"], **OTHER_EWALD)


def test_molecule_straddling_the_boundary(model_paths):
    atoms = straddling_box()
    length = atoms.cell.lengths()[0]
    # the wrapped molecules really are split: some raw O->H vectors are longer than half the box,
    # along each of the three axes
    mol = atoms.positions.reshape(-1, 3, 3)
    raw = mol[:, 1:] - mol[:, :1]
    assert np.all(np.abs(raw[0, :, 0]) > 0.5 * length)
    split = np.abs(raw) > 0.5 * length
    assert np.all(split.any(axis=(0, 1)))
    assert np.count_nonzero(split.any(axis=(1, 2))) >= 3
    check_against_reference(atoms, model_paths["default"])
    # and the energy is that of the whole molecules (translation/wrapping invariance)
    unwrapped = atoms.copy()
    whole = np.concatenate([mol[:, :1], mol[:, :1] + raw - length * np.round(raw / length)], axis=1)
    unwrapped.positions = whole.reshape(-1, 3)
    unwrapped.positions += np.array([0.3, -0.2, 0.7])
    unwrapped.calc = calculator(model_paths["default"])
    atoms.calc = calculator(model_paths["default"])
    assert abs(unwrapped.get_potential_energy() - atoms.get_potential_energy()) < 1e-10 * len(atoms)
    np.testing.assert_allclose(unwrapped.get_forces(), atoms.get_forces(), rtol=0, atol=1e-9)


def test_per_atom_energies_sum_to_the_energy(model_paths):
    atoms = distorted_box(2, seed=5)
    atoms.calc = calculator(model_paths["default"])
    energies = atoms.get_potential_energies()
    assert energies.shape == (len(atoms),)
    assert abs(energies.sum() - atoms.get_potential_energy()) < 1e-10
    # the O atoms carry the M charges and the LJ: their energies differ from the H ones
    assert np.ptp(energies) > 0.1


def test_batched_systems_and_selected_atoms(model_paths):
    from metatensor.torch import Labels
    from metatomic.torch import ModelEvaluationOptions, ModelOutput, System, load_atomistic_model
    from vesin.metatomic import neighbor_lists_for_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = load_atomistic_model(model_paths["default"])
    boxes = [distorted_box(2, seed=6), distorted_box(3, seed=7)]
    systems = [
        System(
            types=torch.tensor(a.numbers, dtype=torch.int32),
            positions=torch.tensor(a.positions),
            cell=torch.tensor(a.cell.array),
            pbc=torch.ones(3, dtype=torch.bool),
        )
        for a in boxes
    ]
    for nl in neighbor_lists_for_model("angstrom", model):
        nl.add_neighbor_list(systems)

    def run(sample_kind, selected=None):
        options = ModelEvaluationOptions(
            length_unit="angstrom",
            outputs={"energy": ModelOutput(unit="eV", sample_kind=sample_kind)},
            selected_atoms=selected,
        )
        return model(systems, options, check_consistency=True)["energy"].block()

    block = run("system")
    assert block.samples.values.tolist() == [[0], [1]]
    expected = [QTIP4PF().energy_forces(a.positions, a.cell.array)[0] for a in boxes]
    np.testing.assert_allclose(block.values[:, 0].numpy(), expected, rtol=E_REL_TOL)

    per_atom = run("atom")
    assert per_atom.samples.names == ["system", "atom"]
    assert per_atom.values.shape == (sum(len(a) for a in boxes), 1)
    # energy of a subset of atoms: the sum of their per-atom energies
    chosen = torch.tensor([[0, 0], [0, 4], [1, 2], [1, 30], [1, 80]], dtype=torch.int32)
    subset = run("system", Labels(["system", "atom"], chosen))
    values = per_atom.values[:, 0]
    split = len(boxes[0])
    np.testing.assert_allclose(
        subset.values[:, 0].numpy(),
        [float(values[0] + values[4]), float(values[split + 2] + values[split + 30] + values[split + 80])],
        rtol=1e-12,
    )


def test_site_margin():
    """A tight margin (M sites ~0.15 A from their O) still finds every site pair; a too small one is refused."""
    from actionmd.potentials.qtip4pf_metatomic import qtip4pf_atomistic_model

    atoms = distorted_box(2, seed=8, noise=0.02)
    e_ref, f_ref, _ = reference(atoms)
    atoms.calc = calculator(qtip4pf_atomistic_model(site_margin=0.35))
    assert abs(atoms.get_potential_energy() - e_ref) <= E_REL_TOL * abs(e_ref)
    np.testing.assert_allclose(atoms.get_forces(), f_ref, rtol=0, atol=F_TOL)
    atoms.calc = calculator(qtip4pf_atomistic_model(site_margin=0.2))
    with pytest.raises(Exception, match="M site is more than site_margin"):
        atoms.get_potential_energy()


def test_wrong_atom_order_is_refused(model_paths):
    atoms = water_box(2)
    atoms.calc = calculator(model_paths["default"])
    swapped = atoms.copy()
    swapped.numbers[[3, 4]] = swapped.numbers[[4, 3]]  # molecule 1 ordered H O H
    swapped.calc = atoms.calc
    with pytest.raises(Exception, match=r"order O H H per molecule: atom 3 \(molecule 1\)"):
        swapped.get_potential_energy()
    partial = atoms[:-1]  # a broken molecule
    partial.calc = calculator(model_paths["default"])
    with pytest.raises(Exception, match="not a multiple of 3"):
        partial.get_potential_energy()


def test_non_orthorhombic_cell_is_refused(model_paths):
    atoms = water_box(2)
    cell = atoms.cell.array.copy()
    cell[1, 0] = 0.5
    atoms.set_cell(cell)
    atoms.calc = calculator(model_paths["default"])
    with pytest.raises(Exception, match="orthorhombic"):
        atoms.get_potential_energy()


def test_exported_model_metadata(model_paths, tmp_path):
    from metatomic.torch import load_atomistic_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = load_atomistic_model(model_paths["default"])
    caps = model.capabilities()
    assert sorted(caps.atomic_types) == [1, 8]
    assert caps.dtype == "float64"
    assert caps.outputs["energy"].unit == "eV"
    assert math.isinf(caps.interaction_range)
    assert "Habershon" in model.metadata().references["model"][0]
    assert model.metadata().name == "q-TIP4P/f"
    (request,) = model.requested_neighbor_lists()
    assert not request.full_list
    assert request.cutoff >= 9.0 + 0.5
    # the module itself asks for its Ewald cutoff plus the margin, and at least the LJ cutoff
    assert QTIP4PFModule(ewald_cutoff=5.0).requested_neighbor_lists()[0].cutoff == P.lj_cutoff
    assert QTIP4PFModule(ewald_cutoff=10.0, site_margin=0.5).requested_neighbor_lists()[0].cutoff == 10.5
    # saved atomically: only the final file, no temporary left behind
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch.jit.save` is deprecated", DeprecationWarning)
        export_qtip4pf(tmp_path / "model.pt", ewald_cutoff=8.0)
    assert os.listdir(tmp_path) == ["model.pt"]
