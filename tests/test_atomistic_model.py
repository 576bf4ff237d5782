"""The ML integrator on exported metatomic models of both FlashMD architectures.

The models are built by metatrain with random weights (float64, tiny) and
exported exactly as `mtt export` does: the properties tested here (K = 0 is the
direct model, the converged symmetrised map is time-reversible and symplectic,
momentum conservation of the direct step) hold for any weights.
"""

import copy
import warnings

import numpy as np
import pytest
import torch

from actionmd.atomistic.model import DirectMap, ExportedModel, SymmetrisedIncrement
from actionmd.core.fixed_point import SolverSettings
from actionmd.core.integrators import SymplecticIntegrator
from actionmd.io import InputError

ARGON = 18
MASS = 39.948


def _layout():
    from metatensor.torch import Labels, TensorBlock, TensorMap

    block = TensorBlock(
        values=torch.empty((0, 3, 1), dtype=torch.float64),
        samples=Labels(names=["system", "atom"], values=torch.empty((0, 2), dtype=torch.int64)),
        components=[Labels.range("xyz", 3)],
        properties=Labels.range("length", 1),
    )
    return TensorMap(keys=Labels.single(), blocks=[block])


def export_random_model(architecture: str, path, cutoff: float = 5.0, seed: int = 0) -> None:
    """A tiny randomly initialised FlashMD model of argon, exported to ``path`` (float64)."""
    from metatrain.utils.architectures import get_default_hypers, import_architecture
    from metatrain.utils.data import DatasetInfo
    from metatrain.utils.data.target_info import TargetInfo

    torch.manual_seed(seed)
    hypers = copy.deepcopy(get_default_hypers(architecture)["model"])
    hypers.update(
        cutoff=cutoff,
        d_pet=8,
        d_head=8,
        d_node=16,
        d_feedforward=16,
        num_heads=1,
        num_attention_layers=1,
        num_gnn_layers=1,
    )
    info = DatasetInfo(
        length_unit="A",
        atomic_types=[ARGON],
        targets={
            "position": TargetInfo(layout=_layout(), quantity="position", unit="A"),
            "momentum": TargetInfo(layout=_layout(), quantity="momentum", unit="(eV*u)^(1/2)"),
        },
    )
    model = import_architecture(architecture).__model__(hypers, info)
    model.set_masses({ARGON: MASS})
    model.set_timestep(16.0)
    model.to(torch.float64).export().save(str(path))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_random_model("experimental.flashmd", folder / "direct.pt")
        export_random_model("experimental.flashmd_symplectic", folder / "symplectic.pt")
    return folder


def liquid_state(cells: int = 2, a: float = 5.6, seed: int = 0):
    """An fcc argon configuration with random displacements and 80 K momenta (A, (eV*u)^(1/2))."""
    rng = np.random.default_rng(seed)
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    grid = np.array([[i, j, k] for i in range(cells) for j in range(cells) for k in range(cells)])
    q = a * (grid[:, None, :] + basis[None]).reshape(-1, 3) + rng.normal(0, 0.1, (4 * cells**3, 3))
    p = rng.normal(0, np.sqrt(MASS * 8.617e-5 * 80.0), q.shape)
    p -= p.mean(axis=0)
    cell = np.eye(3) * a * cells
    return torch.tensor(q), torch.tensor(p), torch.tensor(cell)


def make_maps(models, cell, n):
    args = (torch.full((n,), ARGON), cell, torch.full((n,), MASS))
    direct = DirectMap(ExportedModel(models / "direct.pt", *args))
    symplectic = ExportedModel(models / "symplectic.pt", *args)
    return direct, symplectic


CONVERGED = SolverSettings(iterations=None, tolerance=1e-11, max_iterations=300, anderson=5)


def test_direct_step_conserves_total_momentum_and_is_periodic(models):
    q, p, cell = liquid_state()
    direct, _ = make_maps(models, cell, len(q))
    q1, p1 = direct(q, p)
    assert torch.allclose(p1.sum(0), p.sum(0), atol=1e-12)
    assert (q1 - q).abs().max() > 1e-3  # the random model does move atoms
    # unwrapped input: shifting atoms by box vectors shifts the output by the same vectors
    shift = torch.randint(-2, 3, q.shape).double() * torch.diagonal(cell)
    q2, p2 = direct(q + shift, p)
    assert torch.allclose(q2 - shift, q1, atol=1e-10)
    assert torch.allclose(p2, p1, atol=1e-10)


def test_zero_iterations_is_the_direct_model(models):
    q, p, cell = liquid_state()
    direct, gf = make_maps(models, cell, len(q))
    integ = SymplecticIntegrator(SymmetrisedIncrement(gf), direct, SolverSettings(iterations=0))
    q1, p1 = integ.step(q, p)
    q_d, p_d = direct(q, p)
    assert torch.equal(q1, q_d) and torch.equal(p1, p_d)
    assert gf.calls == 0


def test_symmetrised_increments_have_the_parity_of_an_even_generating_function(models):
    q, p, cell = liquid_state()
    _, gf = make_maps(models, cell, len(q))
    inc = SymmetrisedIncrement(gf)
    dq, dp = inc(q, p)
    dq_m, dp_m = inc(q, -p)
    assert torch.allclose(dq_m, -dq, atol=1e-12) and torch.allclose(dp_m, dp, atol=1e-12)
    raw = SymmetrisedIncrement(gf, symmetrise=False)
    assert not torch.allclose(raw(q, -p)[0], -raw(q, p)[0], atol=1e-6)  # the raw model is not even


def test_converged_step_is_time_reversible_only_when_symmetrised(models):
    q, p, cell = liquid_state()
    direct, gf = make_maps(models, cell, len(q))
    errors = {}
    for symmetrise in (True, False):
        integ = SymplecticIntegrator(SymmetrisedIncrement(gf, symmetrise), direct, CONVERGED)
        q1, p1 = integ.step(q, p)
        assert integ.last.converged
        q2, p2 = integ.step(q1, -p1)
        assert integ.last.converged
        errors[symmetrise] = max(float((q2 - q).abs().max()), float((-p2 - p).abs().max()))
    assert errors[True] < 1e-8
    assert errors[False] > 1e-4


def test_converged_map_is_symplectic(models):
    """J^T Omega J = Omega for the converged map (finite-difference Jacobian, 4 atoms)."""
    q, p, cell = liquid_state(cells=1, a=7.0)
    direct, gf = make_maps(models, cell, len(q))
    integ = SymplecticIntegrator(SymmetrisedIncrement(gf), direct, CONVERGED)
    x0 = torch.cat([q.reshape(-1), p.reshape(-1)])
    n = q.numel()

    def step(x):
        q1, p1 = integ.step(x[:n].reshape(q.shape), x[n:].reshape(p.shape))
        assert integ.last.converged
        return torch.cat([q1.reshape(-1), p1.reshape(-1)])

    def direct_step(x):
        q1, p1 = direct(x[:n].reshape(q.shape), x[n:].reshape(p.shape))
        return torch.cat([q1.reshape(-1), p1.reshape(-1)])

    omega = torch.zeros(2 * n, 2 * n, dtype=x0.dtype)
    omega[:n, n:] = torch.eye(n)
    omega[n:, :n] = -torch.eye(n)

    def defect(f, h=1e-5):
        basis = torch.eye(2 * n, dtype=x0.dtype)
        jac = torch.stack([(f(x0 + h * e) - f(x0 - h * e)) / (2 * h) for e in basis], dim=1)
        return float((jac.T @ omega @ jac - omega).abs().max())

    assert defect(step) < 1e-5
    assert defect(direct_step) > 1e-2  # the direct model is not symplectic: the check can fail


def test_model_file_errors(models, tmp_path):
    q, p, cell = liquid_state()
    args = (torch.full((len(q),), ARGON), cell, torch.full((len(q),), MASS))
    with pytest.raises(InputError, match="not found"):
        ExportedModel(tmp_path / "missing.pt", *args)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="bad.pt"):
        ExportedModel(bad, *args)
    with pytest.raises(ValueError, match="generating function"):
        SymmetrisedIncrement(ExportedModel(models / "direct.pt", *args))
    with pytest.raises(ValueError, match="not a direct map"):
        DirectMap(ExportedModel(models / "symplectic.pt", *args))
    model = ExportedModel(models / "direct.pt", *args)
    assert model.timestep == 16.0
    model.check_timestep(16.0)
    with pytest.raises(InputError, match="trained for a step of 16.0 fs"):
        model.check_timestep(30.0)


def test_set_cell_is_a_new_cell(models):
    """NPT rollouts move the cell every step: set_cell must give what a model built on that cell gives."""
    q, p, cell = liquid_state()
    n = len(q)
    direct, _ = make_maps(models, cell, n)
    bigger = cell * 1.05
    fresh, _ = make_maps(models, bigger, n)
    direct.model.set_cell(bigger)
    q_set, p_set = direct(q * 1.05, p)
    q_new, p_new = fresh(q * 1.05, p)
    assert torch.allclose(q_set, q_new, atol=1e-12) and torch.allclose(p_set, p_new, atol=1e-12)
    direct.model.set_cell(cell)
    q_old, _ = direct(q * 1.05, p)
    assert not torch.allclose(q_old, q_new, atol=1e-6)  # the cell matters to the model
