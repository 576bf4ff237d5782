"""Structure of the learned maps for arbitrary (untrained) weights, in float64.

These properties follow from the construction alone, so they must hold for any
weights: S even in p, the converged map symplectic and time-reversible, K = 0
identical to the direct model. Each test also checks that the property fails
where the construction does not guarantee it, so none of them can pass vacuously.
"""

import numpy as np
import pytest
import torch

from actionmd.core.fixed_point import SolverSettings, solve_midpoint
from actionmd.core.integrators import DirectIntegrator, SymplecticIntegrator
from actionmd.fewbody.mlp import ActionPrior, DirectMLP, GeneratingFunctionMLP, identical_body_permutations
from actionmd.fewbody.nbody import GravitationalSystem

N_BODIES, DIM = 3, 2
CONVERGED = SolverSettings(iterations=None, mixing=0.5, tolerance=1e-14, max_iterations=2000)


MASSES = (1.0, 2.0, 0.5)
PRIOR = {"dt": 0.02, "masses": MASSES, "G": 1.3, "central_mass": 0.0}


def make_models(symmetric=True, action_scale=0.02, prior=None):
    torch.manual_seed(7)
    gf = GeneratingFunctionMLP(
        N_BODIES, DIM, (32, 32), action_scale=action_scale, symmetric=symmetric, prior=prior
    ).double()
    direct = DirectMLP(N_BODIES, DIM, (32, 32), dq_scale=0.05, dp_scale=0.05).double()
    return gf, direct


def random_state(batch=1):
    g = torch.Generator().manual_seed(3)
    return (
        torch.randn(batch, N_BODIES, DIM, generator=g, dtype=torch.float64),
        torch.randn(batch, N_BODIES, DIM, generator=g, dtype=torch.float64),
    )


def omega(n):
    eye = torch.eye(n, dtype=torch.float64)
    zero = torch.zeros(n, n, dtype=torch.float64)
    return torch.cat([torch.cat([zero, eye], 1), torch.cat([-eye, zero], 1)], 0)


def flat_map(integrator):
    n = N_BODIES * DIM

    def f(x):
        q, p = integrator.step(x[:n].reshape(1, N_BODIES, DIM), x[n:].reshape(1, N_BODIES, DIM))
        return torch.cat([q.reshape(-1), p.reshape(-1)])

    return f


def symplecticity_defect(integrator):
    q, p = random_state()
    x = torch.cat([q.reshape(-1), p.reshape(-1)])
    jac = torch.autograd.functional.jacobian(flat_map(integrator), x)
    om = omega(N_BODIES * DIM)
    return float((jac.T @ om @ jac - om).abs().max())


def test_action_is_even_in_momenta():
    gf, _ = make_models()
    q, p = random_state(batch=16)
    s_plus, s_minus = gf(q, p).detach(), gf(q, -p).detach()
    assert torch.allclose(s_plus, s_minus, rtol=0, atol=1e-15 * float(s_plus.abs().max()) + 1e-18)
    raw, _ = make_models(symmetric=False)
    assert float((raw(q, p) - raw(q, -p)).detach().abs().max()) > 1e-6


def test_increment_is_gradient_of_action():
    gf, _ = make_models()
    q, p = random_state()
    dq, dp = gf.increment(q, p)
    h = 1e-6
    e = torch.zeros_like(p)
    e[0, 1, 0] = h
    with torch.no_grad():
        fd_dp = (gf(q, p + e) - gf(q, p - e)) / (2 * h)
        fd_dq = (gf(q + e, p) - gf(q - e, p)) / (2 * h)
    assert float(dq[0, 1, 0]) == pytest.approx(float(fd_dp), rel=1e-7)
    assert float(dp[0, 1, 0]) == pytest.approx(-float(fd_dq), rel=1e-7)


@pytest.mark.parametrize("rule", [None, "midpoint", "trapezoid"])
def test_converged_map_is_symplectic(rule):
    gf, direct = make_models(prior={**PRIOR, "rule": rule} if rule else None)
    integrator = SymplecticIntegrator(gf.increment, direct, CONVERGED)
    assert symplecticity_defect(integrator) < 1e-8
    assert integrator.last.converged


def test_direct_and_truncated_maps_are_not_symplectic():
    gf, direct = make_models()
    assert symplecticity_defect(DirectIntegrator(direct)) > 1e-4
    one_iteration = SymplecticIntegrator(gf.increment, direct, SolverSettings(iterations=1))
    assert symplecticity_defect(one_iteration) > 1e-5


def flip_step_flip(integrator, q, p):
    q1, p1 = integrator.step(q, p)
    assert integrator.last.converged  # reversibility is a property of the solved map only
    q2, p2 = integrator.step(q1, -p1)
    assert integrator.last.converged
    return q2, -p2, q1


@pytest.mark.parametrize(("anderson", "rule"), [(0, None), (4, None), (0, "trapezoid")])
def test_converged_map_is_time_reversible(anderson, rule):
    # a shorter step for the prior: one of the random states has two bodies 0.1 apart
    gf, direct = make_models(prior={**PRIOR, "dt": 0.002, "rule": rule} if rule else None)
    settings = SolverSettings(iterations=None, mixing=0.5, tolerance=1e-14, anderson=anderson)
    q, p = random_state(batch=4)
    qb, pb, q1 = flip_step_flip(SymplecticIntegrator(gf.increment, direct, settings), q, p)
    assert float((q1 - q).abs().max()) > 1e-4  # the step did move the state
    assert float((qb - q).abs().max()) < 1e-8
    assert float((pb - p).abs().max()) < 1e-8


def test_reversibility_needs_the_symmetrised_action():
    gf, direct = make_models(symmetric=False)
    q, p = random_state(batch=4)
    qb, pb, _ = flip_step_flip(SymplecticIntegrator(gf.increment, direct, CONVERGED), q, p)
    assert float((qb - q).abs().max() + (pb - p).abs().max()) > 1e-6


def test_zero_iterations_is_the_direct_model():
    gf, direct = make_models()
    q, p = random_state(batch=5)
    qd, pd = DirectIntegrator(direct).step(q, p)
    qs, ps = SymplecticIntegrator(gf.increment, direct, SolverSettings(iterations=0)).step(q, p)
    assert torch.equal(qd, qs) and torch.equal(pd, ps)


def test_fixed_iterations_converge_to_the_solution_and_record_residuals():
    gf, direct = make_models()
    q, p = random_state(batch=2)
    with torch.no_grad():
        qg, pg = direct(q, p)
    exact = solve_midpoint(q, p, gf.increment, qg, pg, CONVERGED)
    errors = []
    for k in (1, 2, 4, 8, 16):
        sol = solve_midpoint(q, p, gf.increment, qg, pg, SolverSettings(iterations=k, mixing=0.5))
        assert sol.iterations == k and len(sol.residuals) == k
        errors.append(float((sol.q - exact.q).abs().max()))
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False))
    assert exact.residuals[-1] < 1e-14 < exact.residuals[0]
    # the fixed point satisfies the midpoint equation of S
    dq, dp = gf.increment(0.5 * (q + exact.q), 0.5 * (p + exact.p))
    assert torch.allclose(exact.q - q, dq, atol=1e-13)
    assert torch.allclose(exact.p - p, dp, atol=1e-13)


def test_anderson_needs_fewer_iterations_than_linear_mixing():
    gf, direct = make_models(action_scale=0.2)
    q, p = random_state(batch=1)
    qg, pg = direct(q, p)
    settings = SolverSettings(iterations=None, mixing=0.3, tolerance=1e-12, max_iterations=5000)
    plain = solve_midpoint(q, p, gf.increment, qg, pg, settings)
    fast = solve_midpoint(q, p, gf.increment, qg, pg, SolverSettings(**{**settings.__dict__, "anderson": 5}))
    assert plain.converged and fast.converged
    assert fast.iterations < plain.iterations
    assert torch.allclose(plain.q, fast.q, atol=1e-10)


@pytest.mark.parametrize("central_mass", [0.0, 3.0])
def test_action_priors_are_the_integration_rules_they_name(central_mass):
    """S_0's increments against the numpy Hamiltonian (an independent implementation)."""
    system = GravitationalSystem(np.array(MASSES), G=1.3, central_mass=central_mass)
    q, p = random_state(batch=6)
    qn, pn = q.numpy(), p.numpy()
    m = np.array(MASSES)[:, None]
    dt = PRIOR["dt"]
    half = 0.5 * dt * pn / m
    expected = {
        "free_flight": (dt * pn / m, np.zeros_like(pn)),
        "midpoint": (dt * pn / m, dt * system.forces(qn)),
        # d/dp of (V(q - half) + V(q + half)) / 2 through half = Dt p / 2m
        "trapezoid": (
            dt * pn / m + 0.25 * dt**2 / m * (system.forces(qn - half) - system.forces(qn + half)),
            0.5 * dt * (system.forces(qn - half) + system.forces(qn + half)),
        ),
    }
    for rule, (dq_exact, dp_exact) in expected.items():
        prior = ActionPrior(**{**PRIOR, "central_mass": central_mass}, rule=rule).double()
        model = GeneratingFunctionMLP(N_BODIES, DIM, (8,), prior={**PRIOR, "central_mass": central_mass, "rule": rule})
        with torch.no_grad():
            model.net[-1].weight.zero_()  # the network's part is then a constant
        dq, dp = model.double().increment(q, p)
        np.testing.assert_allclose(dq.detach().numpy(), dq_exact, rtol=1e-12, atol=1e-14, err_msg=rule)
        np.testing.assert_allclose(dp.detach().numpy(), dp_exact, rtol=1e-12, atol=1e-14, err_msg=rule)
        assert torch.allclose(prior(q, p), prior(q, -p), rtol=1e-15, atol=0)  # even in p: reversible
    with pytest.raises(ValueError, match="prior rule"):
        ActionPrior(**PRIOR, rule="leapfrog")


def angular_and_linear_momentum(q, p):
    """Total angular momentum (z component, 2D) and total momentum of each state of a batch."""
    cross = q[..., 0] * p[..., 1] - q[..., 1] * p[..., 0]
    return cross.sum(-1), p.sum(-2)


@pytest.mark.parametrize("features", ["invariants", "relative_invariants"])
def test_invariant_action_conserves_the_momenta_of_its_symmetries(features):
    """Noether for the midpoint map: an S invariant under rotations (and translations) generates
    a map that conserves the angular (and total linear) momentum exactly, whatever its weights."""
    torch.manual_seed(11)
    gf = GeneratingFunctionMLP(N_BODIES, DIM, (32, 32), action_scale=0.02, features=features).double()
    _, direct = make_models()
    q, p = random_state(batch=4)
    angle = torch.tensor(0.9, dtype=torch.float64)
    rot = torch.stack([torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])])
    mirror = torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))
    for g in (rot, mirror):
        assert torch.allclose(gf(q @ g.T, p @ g.T), gf(q, p), rtol=1e-13, atol=0)
    shifted = gf(q + torch.tensor([0.3, -0.2], dtype=torch.float64), p)
    assert torch.allclose(shifted, gf(q, p), rtol=1e-13, atol=0) == (features == "relative_invariants")
    integrator = SymplecticIntegrator(gf.increment, direct, CONVERGED)
    q1, p1 = integrator.step(q, p)
    assert integrator.last.converged and float((q1 - q).abs().max()) > 1e-3
    (l0, p0), (l1, p1_total) = angular_and_linear_momentum(q, p), angular_and_linear_momentum(q1, p1)
    assert float((l1 - l0).abs().max()) < 1e-12
    assert (float((p1_total - p0).abs().max()) < 1e-12) == (features == "relative_invariants")
    cartesian, _ = make_models()  # the SI's S, learned rotation invariance only: no conservation law
    q2, p2 = SymplecticIntegrator(cartesian.increment, direct, CONVERGED).step(q, p)
    assert float((angular_and_linear_momentum(q2, p2)[0] - l0).abs().max()) > 1e-6


def test_identical_body_permutations_keep_each_mass():
    assert len(identical_body_permutations([1.0, 1.0, 1.0])) == 6
    assert identical_body_permutations([1.0, 2.0, 1.0]) == [(0, 1, 2), (2, 1, 0)]
    assert identical_body_permutations(MASSES) == [(0, 1, 2)]


@pytest.mark.parametrize("features", ["cartesian", "relative_invariants"])
def test_permutation_symmetrised_action_commutes_with_relabelling(features):
    """S averaged over the relabellings of identical bodies is invariant under each of them, for any
    weights, and its converged map commutes with them: relabel then step = step then relabel (the
    exact flow of equal masses does). Without the average neither holds, so the test can fail."""
    perms = identical_body_permutations([1.0, 1.0, 1.0])
    torch.manual_seed(5)
    plain = GeneratingFunctionMLP(N_BODIES, DIM, (32, 32), action_scale=0.02, features=features).double()
    sym = GeneratingFunctionMLP(
        N_BODIES, DIM, (32, 32), action_scale=0.02, features=features, permutations=perms
    ).double()
    sym.load_state_dict(plain.state_dict())
    _, direct = make_models()
    q, p = random_state(batch=3)
    swap = [1, 0, 2]
    for gf, invariant in ((sym, True), (plain, False)):
        assert torch.allclose(gf(q[:, swap], p[:, swap]), gf(q, p), rtol=1e-12, atol=0) == invariant
        integrator = SymplecticIntegrator(gf.increment, direct, CONVERGED)
        q1, p1 = integrator.step(q, p)
        assert integrator.last.converged and float((q1 - q).abs().max()) > 1e-5
        q2, p2 = integrator.step(q[:, swap], p[:, swap])
        gap = float(torch.cat([(q2 - q1[:, swap]).flatten(), (p2 - p1[:, swap]).flatten()]).abs().max())
        assert (gap < 1e-12) == invariant, (features, invariant, gap)
    # the average is over copies of one network: with the identity alone it is the network itself
    alone = GeneratingFunctionMLP(N_BODIES, DIM, (32, 32), action_scale=0.02, permutations=[(0, 1, 2)]).double()
    alone.load_state_dict(make_models()[0].state_dict())
    assert torch.equal(alone(q, p), make_models()[0](q, p))


def test_small_action_is_the_implicit_midpoint_rule_of_its_hamiltonian():
    """S = Dt * H(qbar, pbar) gives the implicit midpoint rule: harmonic oscillator check."""
    dt, omega0 = 0.1, 1.0

    def increment(qbar, pbar):
        return dt * pbar, -dt * omega0**2 * qbar

    q = torch.tensor([[[1.0]]], dtype=torch.float64)
    p = torch.tensor([[[0.0]]], dtype=torch.float64)
    sol = solve_midpoint(q, p, increment, q, p, CONVERGED)
    # implicit midpoint for the oscillator is the Cayley transform: a rotation by 2 atan(dt/2)
    angle = 2 * np.arctan(dt * omega0 / 2)
    assert float(sol.q) == pytest.approx(np.cos(angle), abs=1e-13)
    assert float(sol.p) == pytest.approx(-np.sin(angle), abs=1e-13)


@pytest.mark.parametrize("anderson", [0, 3])
def test_free_flight_preconditioner_reaches_the_same_midpoint_map_faster(anderson):
    """Stiff oscillators (omega Dt up to 1.6, as water's O-H stretch at 2 fs) of two masses.

    The implicit midpoint rule of H = p^2/2m + m omega^2 q^2/2 is the Cayley transform, known
    exactly. Preconditioned or not, the solver finds it; plain mixing contracts by about
    omega Dt / 2 per iteration, the preconditioned update by (omega Dt / 2)^2.
    """
    dt = 2.0
    mass = torch.tensor([1.0, 16.0], dtype=torch.float64).reshape(1, 2, 1)
    omega = torch.tensor([0.8, 0.3], dtype=torch.float64).reshape(1, 2, 1)

    def increment(qbar, pbar):
        return dt * pbar / mass, -dt * mass * omega**2 * qbar

    q = torch.tensor([[[0.1], [-0.05]]], dtype=torch.float64)
    p = torch.tensor([[[0.02], [0.3]]], dtype=torch.float64)
    a = (omega * dt / 2) ** 2  # Cayley: x' = (1 - a) / (1 + a) x + ... for the scaled oscillator
    q_exact = ((1 - a) * q + dt * p / mass) / (1 + a)
    p_exact = ((1 - a) * p - dt * mass * omega**2 * q) / (1 + a)
    base = {"iterations": None, "mixing": 1.0, "tolerance": 1e-12, "max_iterations": 500, "anderson": anderson}
    runs = {}
    for pc in ("none", "free_flight"):
        settings = SolverSettings(**base, preconditioner=pc)
        sol = solve_midpoint(q, p, increment, q, p, settings, half_step_over_mass=0.5 * dt / mass)
        assert sol.converged, pc
        assert torch.allclose(sol.q, q_exact, atol=1e-11) and torch.allclose(sol.p, p_exact, atol=1e-11), pc
        runs[pc] = sol.iterations
    assert runs["free_flight"] < runs["none"] / 2 if anderson == 0 else runs["free_flight"] < runs["none"]
    with pytest.raises(ValueError, match="Dt / 2m"):
        solve_midpoint(q, p, increment, q, p, SolverSettings(**base, preconditioner="free_flight"))
    # a fixed K mixes plainly, as in the paper: the preconditioner does not change it
    k3 = [
        solve_midpoint(q, p, increment, q, p, SolverSettings(iterations=3, preconditioner=pc), 0.5 * dt / mass)
        for pc in ("none", "free_flight")
    ]
    assert torch.equal(k3[0].q, k3[1].q) and torch.equal(k3[0].p, k3[1].p)
