"""Training of the few-body models: it learns the flow, deterministically and resumably."""

import numpy as np
import pytest
import torch

from actionmd.core.augmentation import random_rotations, rotate
from actionmd.core.fixed_point import SolverSettings
from actionmd.core.integrators import SymplecticIntegrator
from actionmd.core.pairing import Pairs, with_time_reversal
from actionmd.fewbody.model_file import load_model
from actionmd.fewbody.training import FewBodyData, Trainer, TrainingSettings
from actionmd.io import InputError

DT = 0.5  # long step of the isotropic 2D harmonic oscillator H = (p^2 + q^2) / 2


def oscillator_pairs(n, seed):
    """Exact flow of the oscillator over DT: a rotation by DT in every (q_i, p_i) plane."""
    rng = np.random.default_rng(seed)
    q, p = rng.normal(size=(n, 1, 2)), rng.normal(size=(n, 1, 2))
    c, s = np.cos(DT), np.sin(DT)
    return with_time_reversal(Pairs(q, p, c * q + s * p, -s * q + c * p))


def data(kind, pairs):
    arrays = pairs.arrays() if kind == "direct" else (*pairs.midpoint(), *pairs.increments())
    return FewBodyData(*(torch.tensor(a, dtype=torch.float32) for a in arrays))


SETTINGS = TrainingSettings(epochs=2, batch_size=16, hidden=(16, 16), lr_decay_steps=1000, seed=3)


def weights(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_rotations_are_proper_and_uniform():
    gen = torch.Generator().manual_seed(0)
    for dim in (2, 3):
        rot = random_rotations(4000, dim, gen, torch.float64)
        eye = torch.eye(dim, dtype=torch.float64)
        assert torch.allclose(rot @ rot.transpose(1, 2), eye.expand_as(rot), atol=1e-12)
        assert torch.allclose(torch.linalg.det(rot), torch.ones(4000, dtype=torch.float64), atol=1e-12)
        assert float(rot.mean(0).abs().max()) < 0.05  # Haar measure: E[R] = 0
    v = torch.randn(5, 3, 2, dtype=torch.float64)
    r = random_rotations(5, 2, gen, torch.float64)
    assert torch.allclose(rotate(v, r).norm(dim=-1), v.norm(dim=-1))


def test_training_is_deterministic():
    train = data("symplectic", oscillator_pairs(256, 0))
    a = Trainer("symplectic", SETTINGS, train, train).run()
    b = Trainer("symplectic", SETTINGS, train, train).run()
    assert torch.equal(weights(a), weights(b))


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path):
    train = data("direct", oscillator_pairs(256, 0))
    straight = Trainer("direct", SETTINGS, train, train).run()
    ckpt = tmp_path / "direct.ckpt"
    Trainer("direct", SETTINGS, train, train, checkpoint=ckpt).run(stop_after=1)  # "killed" after epoch 1
    resumed = Trainer("direct", SETTINGS, train, train, checkpoint=ckpt)
    model = resumed.run()
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert torch.equal(weights(model), weights(straight))
    # a checkpoint from other settings is not reused
    other = Trainer("direct", TrainingSettings(**{**SETTINGS.__dict__, "seed": 4}), train, train, checkpoint=ckpt)
    other.run(stop_after=1)
    assert [h["epoch"] for h in other.history] == [1]
    # the options of S do not concern the direct model: its checkpoint stays valid
    options = TrainingSettings(
        **{**SETTINGS.__dict__, "features": "invariants", "prior": "midpoint", "body_permutations": True}
    )
    assert Trainer("direct", options, train, train).fingerprint == resumed.fingerprint


def test_generating_function_learns_the_oscillator_flow(tmp_path):
    settings = TrainingSettings(epochs=30, batch_size=32, hidden=(32, 32), lr_decay_steps=1000, learning_rate=3e-3)
    train, valid = data("symplectic", oscillator_pairs(1024, 1)), data("symplectic", oscillator_pairs(256, 2))
    trainer = Trainer("symplectic", settings, train, valid)
    trainer.run()
    history = trainer.history
    assert history[-1]["valid_loss"] < 0.02 * history[0]["valid_loss"]
    path = tmp_path / "s.pt"
    trainer.save(path)
    gf, _ = load_model(path)
    # identity as the initial guess: the converged solve alone must find the learned flow
    integrator = SymplecticIntegrator(
        gf.increment, lambda q, p: (q, p), SolverSettings(iterations=None, tolerance=1e-12)
    )
    q = torch.tensor([[[0.8, -0.3]]], dtype=torch.float64)
    p = torch.tensor([[[0.1, 0.6]]], dtype=torch.float64)
    q1, p1 = integrator.step(q, p)
    c, s = np.cos(DT), np.sin(DT)
    np.testing.assert_allclose(q1.numpy(), c * q.numpy() + s * p.numpy(), atol=0.03)
    np.testing.assert_allclose(p1.numpy(), -s * q.numpy() + c * p.numpy(), atol=0.03)
    energy = lambda q, p: float((q**2 + p**2).sum()) / 2  # noqa: E731
    assert energy(q1, p1) == pytest.approx(energy(q, p), rel=0.03)


@pytest.mark.parametrize(("features", "translation_invariant"), [("cartesian", True), ("invariants", False)])
def test_a_model_with_an_action_prior_loads_as_it_was_trained(tmp_path, features, translation_invariant):
    """The prior's parameters and the kind of features travel in the model file; the prior stays
    exact in float64 (plain floats, not float32 buffers). Around a central mass, rotations about it
    are a symmetry and translations are not: invariants about the origin."""
    pairs = oscillator_pairs(64, 3)
    pairs = Pairs(pairs.q0 + np.array([2.0, 0.0]), pairs.p0, pairs.q1 + np.array([2.0, 0.0]), pairs.p1)
    prior = {"dt": 0.1, "masses": [1.0], "G": 1.0, "central_mass": 1.0, "rule": "midpoint"}
    settings = TrainingSettings(**{**SETTINGS.__dict__, "prior": "midpoint", "features": features})
    train = data("symplectic", pairs)
    trainer = Trainer("symplectic", settings, train, train, prior=prior, translation_invariant=translation_invariant)
    trainer.run()
    trainer.save(tmp_path / "s.pt")
    gf, payload = load_model(tmp_path / "s.pt")
    assert payload["prior"] == prior and gf.prior.dt == 0.1
    assert gf.feature_kind == features
    q = torch.tensor([[[1.7, 0.4]]], dtype=torch.float64)
    p = torch.tensor([[[0.2, -0.5]]], dtype=torch.float64)
    expected = trainer.model.double().increment(q, p)
    for a, b in zip(gf.increment(q, p), expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="needs the prior"):
        Trainer("symplectic", settings, data("symplectic", pairs), data("symplectic", pairs))


def test_a_permutation_symmetric_action_loads_as_it_was_trained(tmp_path):
    """Two identical oscillators (bodies of equal mass): with ``body_permutations`` the saved S is
    averaged over both labellings, as trained, and invariant under exchanging the bodies; the
    option is part of the fingerprint (a checkpoint of the plain S is not resumed) and needs the
    masses."""
    one, other = oscillator_pairs(128, 4), oscillator_pairs(128, 5)
    pairs = Pairs(*(np.concatenate([a, b], axis=1) for a, b in zip(one.arrays(), other.arrays(), strict=True)))
    train = data("symplectic", pairs)
    # validation on both labellings of every state: a set the relabellings map onto itself
    valid = FewBodyData(*(torch.cat([t, t[:, [1, 0]]]) for t in (train.q, train.p, train.a, train.b)))
    settings = TrainingSettings(**{**SETTINGS.__dict__, "body_permutations": True})
    trainer = Trainer("symplectic", settings, train, valid, masses=(1.0, 1.0))
    plain = Trainer("symplectic", SETTINGS, train, valid)
    assert trainer.fingerprint != plain.fingerprint
    trainer.run()
    # the optimiser steps see the network alone: the same weights as the plain S; the validation
    # loss is the average's: the error projected onto invariant functions, never larger on such a set
    assert torch.equal(weights(trainer.model), weights(plain.run()))
    assert trainer.history[-1]["valid_loss"] < plain.history[-1]["valid_loss"]
    trainer.save(tmp_path / "s.pt")
    gf, payload = load_model(tmp_path / "s.pt")
    assert [tuple(x) for x in payload["permutations"]] == [(0, 1), (1, 0)]
    q, p = (torch.tensor(pairs.arrays()[i][:4], dtype=torch.float64) for i in (0, 1))
    torch.testing.assert_close(gf(q[:, [1, 0]], p[:, [1, 0]]), gf(q, p), rtol=1e-13, atol=0)
    torch.testing.assert_close(gf(q, p), trainer.model.double()(q, p), rtol=1e-13, atol=0)
    with pytest.raises(ValueError, match="body_permutations needs the masses"):
        Trainer("symplectic", settings, train, valid)


def test_missing_or_corrupt_model_names_the_file(tmp_path):
    with pytest.raises(InputError, match="nothere.pt.*not found"):
        load_model(tmp_path / "nothere.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="bad.pt"):
        load_model(bad)


def test_balanced_losses_learn_the_small_position_increments():
    """A heavy oscillator (m = 25, omega = 1): over DT the momentum moves about 80 times more than
    the position (rms of the increments). In one shared unit the position increments hardly count;
    balanced, they are learned."""
    m, n = 25.0, 1024
    rng = np.random.default_rng(5)
    q, p = rng.normal(size=(n, 1, 2)), np.sqrt(m) * rng.normal(size=(n, 1, 2))
    c, s = np.cos(DT), np.sin(DT)
    train = data("symplectic", with_time_reversal(Pairs(q, p, c * q + s * p / m, -m * s * q + c * p)))
    errors = {}
    for balance in (False, True):
        settings = TrainingSettings(
            epochs=20, batch_size=32, hidden=(32, 32), lr_decay_steps=1000, learning_rate=3e-3, balance_losses=balance
        )
        model = Trainer("symplectic", settings, train, train).run()
        dq, dp = model.increment(train.q, train.p)
        rel = lambda x, y: float((x - y).pow(2).mean().sqrt() / y.pow(2).mean().sqrt())  # noqa: E731
        errors[balance] = (rel(dq, train.a), rel(dp, train.b))
    assert errors[True][0] < 0.25 * errors[False][0]  # position increments: 12x more accurate here (0.018 vs 0.22)
    assert errors[True][1] < 1.5 * errors[False][1]  # and the momentum increments no worse
