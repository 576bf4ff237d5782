"""The validation-error table: an oracle scores zero, a model that predicts nothing scores the target's own size,
and a known odd-in-p part of the increments is reported as such."""

import ase
import ase.io
import numpy as np
import pandas as pd
import pytest
import torch

from actionmd.atomistic import model_errors

L = 6.0


def _frames(kind: str, n: int = 5, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = ase.Atoms("OH2OH2", positions=rng.uniform(0, L, (6, 3)), cell=[L, L, L], pbc=True)
        atoms.set_momenta(rng.normal(size=(6, 3)) * np.sqrt(atoms.get_masses())[:, None] * 0.05)
        if kind == "direct":
            # a step that crosses the cell face: the error must use the minimum image
            atoms.arrays["future_positions"] = atoms.positions + rng.normal(scale=0.05, size=(6, 3))
            atoms.arrays["future_momenta"] = atoms.get_momenta() + rng.normal(scale=0.1, size=(6, 3))
        else:
            atoms.arrays["delta_q"] = rng.normal(scale=0.05, size=(6, 3))
            atoms.arrays["delta_p"] = rng.normal(scale=0.1, size=(6, 3))
        frames.append(atoms)
    return frames


class FakeModel:
    """Stands in for ExportedModel: answers from a lookup of the validation set, plus a chosen error."""

    symplectic = False

    def __init__(self, frames, kind, error=None, odd=0.0, kick=None):
        self.frames, self.kind, self.error, self.odd, self.kick = frames, kind, error, odd, kick

    def set_cell(self, cell):
        pass

    def _lookup(self, q):
        for atoms in self.frames:
            if np.allclose(atoms.positions, q.numpy()):
                return atoms
        raise AssertionError("unknown input")

    def __call__(self, q, p):
        outs_q, outs_p = [], []
        wrapped = q - torch.floor(q / L) * L
        for qi, pi, wi in zip(q, p, wrapped, strict=True):
            atoms = self._lookup(qi)
            if self.kind == "direct":
                step = torch.tensor(atoms.arrays["future_positions"] - atoms.positions)
                outs_q.append(wi + step + L)  # one cell away: the same prediction
                outs_p.append(torch.tensor(atoms.arrays["future_momenta"]))
            else:
                sign = 1.0 if torch.allclose(pi, torch.tensor(atoms.get_momenta())) else -1.0
                dq = torch.tensor(atoms.arrays["delta_q"]) * sign + self.odd * torch.tensor(atoms.arrays["delta_q"])
                outs_q.append(dq)
                kick = 0.0 if self.kick is None else torch.tensor(self.kick)
                outs_p.append(torch.tensor(atoms.arrays["delta_p"]) + kick)
        q_out, p_out = torch.stack(outs_q), torch.stack(outs_p)
        if self.error == "nothing":
            q_out = wrapped.clone() if self.kind == "direct" else torch.zeros_like(q_out)
            p_out = torch.zeros_like(p_out)
        return q_out, p_out, wrapped


@pytest.fixture
def fake(monkeypatch):
    made = {}

    def use(frames, kind, **kw):
        def factory(path, *args, **kwargs):
            made["model"] = FakeModel(frames, kind, **kw)
            return made["model"]

        monkeypatch.setattr("actionmd.atomistic.model_errors.ExportedModel", factory)

    return use


def test_an_oracle_has_no_error_and_relative_size_reads_against_the_target(tmp_path, fake):
    frames = _frames("direct")
    ase.io.write(tmp_path / "val.extxyz", frames)
    fake(frames, "direct")
    rows = pd.DataFrame(model_errors.direct_errors("m.pt", tmp_path / "val.extxyz", batch=2))
    assert set(rows.species) == {"O", "H", "H2O"}  # O H H per molecule: also the molecules as wholes
    assert rows.rmse.max() < 1e-6  # also for the atoms whose step crossed a cell face
    p_h = np.concatenate([(a.arrays["future_momenta"] - a.get_momenta())[a.numbers == 1] for a in frames])
    expected = np.sqrt(np.mean(p_h**2))
    row = rows[(rows.target == "momentum") & (rows.species == "H")].iloc[0]
    assert row.target_rms == pytest.approx(expected, rel=1e-6)


def test_a_model_that_predicts_nothing_scores_the_size_of_the_target(tmp_path, fake):
    frames = _frames("symplectic")
    ase.io.write(tmp_path / "val.extxyz", frames)
    fake(frames, "symplectic", error="nothing")
    rows = pd.DataFrame(model_errors.symplectic_errors("m.pt", tmp_path / "val.extxyz"))
    assert np.allclose(rows.relative, 1.0)


def test_the_odd_part_of_the_increments_is_measured(tmp_path, fake):
    frames = _frames("symplectic")
    ase.io.write(tmp_path / "val.extxyz", frames)
    fake(frames, "symplectic", odd=0.25)  # dq(q, p) = delta_q (even part) + 0.25 delta_q (odd part)
    rows = pd.DataFrame(model_errors.symplectic_errors("m.pt", tmp_path / "val.extxyz"))
    position = rows[(rows.target == "position") & (rows.species != "H2O")]
    assert np.allclose(position.odd_fraction, 0.25)
    even = position[position.evaluation == "even in p"]
    raw = position[position.evaluation == "raw"]
    assert even.rmse.max() < 1e-6  # the integrator's S_sym removes the odd part exactly
    assert np.allclose(raw.relative, 0.25)
    assert np.allclose(rows[(rows.target == "momentum") & (rows.species != "H2O")].odd_fraction, 0.0)


def test_sign_flips_tell_a_per_atom_even_action_from_one_that_couples_momenta():
    """S_0(q) + sum_i p_i^2/2m Dt is even in each atom's momentum; adding c (sum_i p_i)^2 couples them."""
    import torch

    from actionmd.atomistic.model_errors import sign_flip_change

    dt, c = 2.0, 0.5
    gen = torch.Generator().manual_seed(1)
    states = [(torch.randn(6, 3, generator=gen), torch.randn(6, 3, generator=gen)) for _ in range(4)]
    symbols = np.array(["O", "H", "H", "O", "H", "H"])

    def separable(q, p):  # dq = dS/dp, dp = -dS/dq with S = dt (p^2/2 + |q|^4/4 (1 + |p|^2))
        w = (q * q).sum(-1, keepdim=True)
        pp = (p * p).sum(-1, keepdim=True)
        return dt * (p + 0.5 * w**2 * p), -dt * w * q * (1 + pp)

    def coupled(q, p):  # + dt c (sum_i p_i)^2 / 2
        dq, dp = separable(q, p)
        return dq + dt * c * p.sum(0, keepdim=True), dp

    even = {(r["target"], r["species"]): r for r in sign_flip_change(separable, states, symbols)}
    both = {(r["target"], r["species"]): r for r in sign_flip_change(coupled, states, symbols)}
    assert max(r["flip_change"] for r in even.values()) < 1e-12
    assert even[("momentum", "H")]["p_dependence"] > 0.1  # the forces do depend on p, per atom
    assert both[("position", "H")]["flip_change"] > 1e-2


@pytest.mark.parametrize(
    ("kick", "molecule_rmse"),
    [
        # O pushed against its two H: the molecule's momentum is unchanged, only the atoms are off
        ([[-0.02, 0, 0], [0.01, 0, 0], [0.01, 0, 0]], 0.0),
        # the whole molecule pushed, as a wrong intermolecular force does: 3 x 0.01 on the molecule
        ([[0.01, 0, 0], [0.01, 0, 0], [0.01, 0, 0]], 0.03 / np.sqrt(3)),
    ],
)
def test_the_molecule_rows_see_the_intermolecular_part_of_an_error(tmp_path, fake, kick, molecule_rmse):
    """Per-atom rows see both errors; the H2O row only the one that changes a molecule's momentum."""
    frames = _frames("symplectic")
    ase.io.write(tmp_path / "val.extxyz", frames)
    fake(frames, "symplectic", kick=np.tile(kick, (2, 1)))
    rows = pd.DataFrame(model_errors.symplectic_errors("m.pt", tmp_path / "val.extxyz"))
    momentum = rows[(rows.target == "momentum") & (rows.evaluation == "raw")].set_index("species")
    assert momentum.loc["H", "rmse"] == pytest.approx(0.01 / np.sqrt(3), rel=1e-6)
    assert momentum.loc["H2O", "rmse"] == pytest.approx(molecule_rmse, abs=1e-7)  # extxyz keeps 8 digits
    assert rows[rows.target == "position"].rmse.max() < 1e-7
