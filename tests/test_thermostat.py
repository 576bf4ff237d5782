"""Tests of the SVR thermostat, the OBABO splitting, velocity Verlet and per-species temperatures.

Statistical checks use many independent systems in the batch dimension, fixed
seeds, and tolerances of a few standard errors, so they are deterministic and fast.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import units
from scipy import stats

from actionmd.dynamics.energy import KB, kinetic_energy, species_temperatures
from actionmd.dynamics.thermostat import OBABOIntegrator, SVRThermostat, VelocityVerletMap

T = 300.0
KT = KB * T


def _zero_momentum_state(batch: int, n_atoms: int, masses: torch.Tensor, scale: float, seed: int) -> torch.Tensor:
    """Random momenta (batch, N, 3) with zero total momentum and mean kinetic energy ~ scale * (3N-3) kT / 2."""
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(batch, n_atoms, 3, dtype=torch.float64, generator=g) * torch.sqrt(scale * KT * masses)[:, None]
    return p - p.mean(dim=-2, keepdim=True)


def _gamma_z_scores(samples: torch.Tensor, n_dof: int, kT: float) -> tuple[float, float]:
    """z-scores of the sample mean and variance of independent samples against Gamma(n_dof / 2, kT).

    Exact mean n kT / 2 and variance n kT^2 / 2; the sample variance has variance
    sigma^4 (2 / (B - 1) + excess kurtosis / B) with excess kurtosis 6 / (n / 2).
    """
    b = samples.numel()
    shape = 0.5 * n_dof
    mean, var = shape * kT, shape * kT**2
    z_mean = (samples.mean().item() - mean) / math.sqrt(var / b)
    var_se = var * math.sqrt(2.0 / (b - 1) + 6.0 / shape / b)
    z_var = (samples.var().item() - var) / var_se
    return z_mean, z_var


def test_svr_samples_canonical_kinetic_energy() -> None:
    """Many chains, dt/tau = 1, 3N - 3 dof: K relaxes to Gamma((3N-3)/2, kT) from a far-off start."""
    batch, n_atoms = 20000, 10
    masses = torch.linspace(1.0, 40.0, n_atoms, dtype=torch.float64)
    p = _zero_momentum_state(batch, n_atoms, masses, scale=5.0, seed=1)
    thermostat = SVRThermostat(T, tau_fs=10.0, seed=2)
    n_dof = thermostat.degrees_of_freedom(n_atoms)
    assert n_dof == 3 * n_atoms - 3
    for _ in range(30):
        p, _ = thermostat.apply(p, masses, dt_fs=10.0)
    kin = kinetic_energy(p, masses)
    z_mean, z_var = _gamma_z_scores(kin, n_dof, KT)
    assert abs(z_mean) < 4.0 and abs(z_var) < 4.0, (z_mean, z_var)
    # the whole distribution, not only two moments
    ks = stats.kstest(kin.numpy(), stats.gamma(a=0.5 * n_dof, scale=KT).cdf)
    assert ks.pvalue > 1e-3, ks

    # the test can fail: plain (Berendsen-like, tau -> 0) rescaling to the target
    # gets the mean right but kills the fluctuations of K
    target = 0.5 * n_dof * KT
    p_wrong = _zero_momentum_state(batch, n_atoms, masses, scale=1.0, seed=3)
    p_wrong = p_wrong * torch.sqrt(target / kinetic_energy(p_wrong, masses))[:, None, None]
    z_mean_wrong, z_var_wrong = _gamma_z_scores(kinetic_energy(p_wrong, masses), n_dof, KT)
    assert abs(z_mean_wrong) < 4.0
    assert z_var_wrong < -50.0


def test_svr_strong_coupling_and_full_dof() -> None:
    """tau = 0: a single application draws K from Gamma(n/2, kT), whatever K was (here n = 3N given)."""
    batch, n_atoms = 20000, 4
    masses = torch.full((n_atoms,), 12.0, dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    p = 1e-3 * torch.randn(batch, n_atoms, 3, dtype=torch.float64, generator=g)  # nearly frozen
    thermostat = SVRThermostat(T, tau_fs=0.0, n_dof=3 * n_atoms, seed=6)
    p_new, delta = thermostat.apply(p, masses, dt_fs=1.0)
    kin = kinetic_energy(p_new, masses)
    torch.testing.assert_close(delta, kin - kinetic_energy(p, masses), rtol=0, atol=1e-14)
    z_mean, z_var = _gamma_z_scores(kin, 3 * n_atoms, KT)
    assert abs(z_mean) < 4.0 and abs(z_var) < 4.0, (z_mean, z_var)
    # weak coupling, tiny dt/tau: K barely moves
    weak = SVRThermostat(T, tau_fs=1e6, seed=7)
    p0 = _zero_momentum_state(8, n_atoms, masses, scale=1.0, seed=8)
    _, small = weak.apply(p0, masses, dt_fs=1.0)
    assert small.abs().max().item() < 1e-2 * kinetic_energy(p0, masses).min().item()


def test_svr_infinite_tau_is_identity() -> None:
    masses = torch.tensor([16.0, 1.0, 1.0], dtype=torch.float64)
    p = torch.randn(2, 3, 3, dtype=torch.float64)
    thermostat = SVRThermostat(T, tau_fs=math.inf, seed=0)
    p_new, delta = thermostat.apply(p, masses, dt_fs=5.0)
    assert torch.equal(p_new, p)
    assert torch.equal(delta, torch.zeros(2, dtype=torch.float64))


def test_svr_preserves_total_momentum_and_is_reproducible() -> None:
    n_atoms = 6
    masses = torch.tensor([16.0, 1.0, 1.0, 16.0, 1.0, 1.0], dtype=torch.float64)
    p = _zero_momentum_state(50, n_atoms, masses, scale=3.0, seed=9)
    thermostat = SVRThermostat(T, tau_fs=10.0, seed=10)
    for _ in range(20):
        p, _ = thermostat.apply(p, masses, dt_fs=5.0)
        assert p.sum(dim=-2).abs().max().item() < 1e-12 * p.abs().max().item()
    # a nonzero total momentum is scaled by the same alpha as every atom
    q = torch.randn(n_atoms, 3, dtype=torch.float64) + 1.0
    q_new, _ = SVRThermostat(T, tau_fs=1.0, seed=11).apply(q, masses, dt_fs=1.0)
    alpha = q_new[0, 0] / q[0, 0]
    torch.testing.assert_close(q_new.sum(dim=0), alpha * q.sum(dim=0))
    # the same seed gives the same draws
    a, da = SVRThermostat(T, 10.0, seed=12).apply(q, masses, 4.0)
    b, db = SVRThermostat(T, 10.0, seed=torch.Generator().manual_seed(12)).apply(q, masses, 4.0)
    assert torch.equal(a, b) and torch.equal(da, db)


class HarmonicWells:
    """Independent anisotropic 3D oscillators V = sum_{i,a} k_ia q_ia^2 / 2 (k in eV/A^2, masses in u)."""

    def __init__(self, n_atoms: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.k = 0.5 + 1.5 * torch.rand(n_atoms, 3, dtype=torch.float64, generator=g)
        self.masses = 1.0 + 19.0 * torch.rand(n_atoms, dtype=torch.float64, generator=g)

    def forces(self, q: torch.Tensor) -> torch.Tensor:
        return -self.k * q

    def potential(self, q: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.k * q.square()).sum(dim=(-2, -1))


class ExactHarmonicMap:
    """The exact flow of :class:`HarmonicWells` over dt_fs: a rotation in each (q, p / m omega) plane."""

    def __init__(self, wells: HarmonicWells, dt_fs: float) -> None:
        m = wells.masses[:, None]
        self.m_omega = torch.sqrt(wells.k * m)  # m omega, omega = sqrt(k / m) in 1/(ASE time)
        angle = torch.sqrt(wells.k / m) * dt_fs * units.fs
        self.cos, self.sin = torch.cos(angle), torch.sin(angle)

    def step(self, q: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return q * self.cos + p / self.m_omega * self.sin, p * self.cos - q * self.m_omega * self.sin


def test_obabo_samples_canonical_distribution() -> None:
    """OBABO with the exact oscillator flow: <K> = <V> = n kT / 2 and Var(H) = n kT^2, n = 3N."""
    batch, n_atoms = 100, 8
    n_dof = 3 * n_atoms
    wells = HarmonicWells(n_atoms, seed=20)
    thermostat = SVRThermostat(T, tau_fs=20.0, n_dof=n_dof, seed=21)
    obabo = OBABOIntegrator(ExactHarmonicMap(wells, dt_fs=4.0), thermostat, dt_fs=4.0, masses=wells.masses)
    q = torch.zeros(batch, n_atoms, 3, dtype=torch.float64)
    p = torch.randn(batch, n_atoms, 3, dtype=torch.float64) * torch.sqrt(3.0 * KT * wells.masses)[:, None]
    h0 = kinetic_energy(p, wells.masses)  # V(q = 0) = 0
    for _ in range(200):  # equilibrate from 3 T
        q, p = obabo.step(q, p)
    kin, pot = [], []
    for _ in range(1000):
        q, p = obabo.step(q, p)
        kin.append(kinetic_energy(p, wells.masses))
        pot.append(wells.potential(q))
    kin_t, pot_t = torch.stack(kin), torch.stack(pot)  # (time, batch)
    total = kin_t + pot_t
    # per-system time averages are independent across the batch: their spread gives the error bar
    for series, expected in ((kin_t, 0.5 * n_dof * KT), (pot_t, 0.5 * n_dof * KT), (total, n_dof * KT)):
        means = series.mean(dim=0)
        z = (means.mean().item() - expected) / (means.std().item() / math.sqrt(batch))
        assert abs(z) < 4.0, (expected, means.mean().item(), z)
    variances = total.var(dim=0)
    z_var = (variances.mean().item() - n_dof * KT**2) / (variances.std().item() / math.sqrt(batch))
    assert abs(z_var) < 4.0, (variances.mean().item() / (n_dof * KT**2), z_var)
    # the exact flow conserves H, so H - thermostat_work keeps its initial value to rounding
    torch.testing.assert_close(obabo.conserved(total[-1]), h0, rtol=1e-10, atol=1e-10)


def test_obabo_conserved_quantity_with_velocity_verlet() -> None:
    """VV inner map at small dt: H - thermostat_work drifts far less than H fluctuates."""
    batch, n_atoms = 16, 8
    wells = HarmonicWells(n_atoms, seed=30)
    vv = VelocityVerletMap(wells.forces, wells.masses, dt_fs=1.0)
    thermostat = SVRThermostat(T, tau_fs=10.0, n_dof=3 * n_atoms, seed=31)
    obabo = OBABOIntegrator(vv, thermostat, dt_fs=1.0, masses=wells.masses)
    g = torch.Generator().manual_seed(32)
    q = torch.randn(batch, n_atoms, 3, dtype=torch.float64, generator=g) * torch.sqrt(KT / wells.k)
    p = torch.randn(batch, n_atoms, 3, dtype=torch.float64, generator=g) * torch.sqrt(KT * wells.masses)[:, None]

    def energy(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return kinetic_energy(p, wells.masses) + wells.potential(q)

    conserved0 = obabo.conserved(energy(q, p))
    torch.testing.assert_close(conserved0, energy(q, p), rtol=0, atol=0)
    h, c = [], []
    for _ in range(1500):
        q, p = obabo.step(q, p)
        h.append(energy(q, p))
        c.append(obabo.conserved(energy(q, p)))
    h_t, c_t = torch.stack(h), torch.stack(c)
    h_spread = h_t.std(dim=0)  # canonical: ~ sqrt(3N) kT
    c_excursion = (c_t - conserved0).abs().max(dim=0).values
    assert (h_spread > 2.0 * KT).all()
    assert (c_excursion < 0.02 * h_spread).all(), (c_excursion / h_spread).max()
    # the work really is the bookkeeping of the thermostat: it is as large as the changes of H
    assert obabo.thermostat_work.abs().max().item() > 0.5 * KT


def test_obabo_without_thermostat_is_nve() -> None:
    """tau = inf: OBABO is the inner map exactly, zero thermostat work, conserved == H bitwise."""
    n_atoms = 5
    wells = HarmonicWells(n_atoms, seed=40)
    q0 = torch.randn(n_atoms, 3, dtype=torch.float64)
    p0 = torch.randn(n_atoms, 3, dtype=torch.float64)
    obabo = OBABOIntegrator(
        VelocityVerletMap(wells.forces, wells.masses, dt_fs=2.0),
        SVRThermostat(T, tau_fs=math.inf, n_dof=3 * n_atoms, seed=41),
        dt_fs=2.0,
        masses=wells.masses,
    )
    reference = VelocityVerletMap(wells.forces, wells.masses, dt_fs=2.0)
    q, p, qr, pr = q0, p0, q0, p0
    for _ in range(50):
        q, p = obabo.step(q, p)
        qr, pr = reference.step(qr, pr)
        assert torch.equal(q, qr) and torch.equal(p, pr)
        h = kinetic_energy(p, wells.masses) + wells.potential(q)
        assert torch.equal(obabo.conserved(h), h)
    assert obabo.thermostat_work.item() == 0.0


def test_velocity_verlet_map() -> None:
    """Substeps compose, one force call per substep, O(h^2) error against the exact flow, ASE time units."""
    n_atoms = 4
    wells = HarmonicWells(n_atoms, seed=50)
    calls = {"n": 0}

    def counting_forces(q: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return wells.forces(q)

    q0 = torch.randn(n_atoms, 3, dtype=torch.float64)
    p0 = torch.randn(n_atoms, 3, dtype=torch.float64) * wells.masses[:, None].sqrt()
    long = VelocityVerletMap(counting_forces, wells.masses, dt_fs=8.0, substeps=4)
    q4, p4 = long.step(q0, p0)
    assert calls["n"] == 1 + 4
    q4b, p4b = long.step(q4, p4)  # forces of q4 are cached
    assert calls["n"] == 1 + 8
    short = VelocityVerletMap(wells.forces, wells.masses, dt_fs=2.0)
    q, p = q0, p0
    for _ in range(4):
        q, p = short.step(q, p)
    torch.testing.assert_close((q, p), (q4, p4), rtol=1e-13, atol=1e-13)

    exact_q, exact_p = ExactHarmonicMap(wells, dt_fs=8.0).step(q0, p0)
    errors = []
    for substeps in (8, 16):
        qs, ps = VelocityVerletMap(wells.forces, wells.masses, dt_fs=8.0, substeps=substeps).step(q0, p0)
        errors.append((qs - exact_q).abs().max().item() + (ps - exact_p).abs().max().item())
    assert 3.5 < errors[0] / errors[1] < 4.5, errors
    assert errors[1] < 1e-3


def test_species_temperatures() -> None:
    """Known kinetic energies: T_s = 2 K_s / (f_s k_B), f_s = 3 sum_{i in s} (1 - m_i / M); batches, integer labels."""
    species = np.array(["O", "H", "H", "O", "H", "H"])
    masses = np.array([15.999, 1.008, 1.008, 15.999, 1.008, 1.008])
    energies = np.array([0.03, 0.01, 0.02, 0.05, 0.03, 0.04])  # eV per atom
    rng = np.random.default_rng(60)
    directions = rng.normal(size=(6, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    p = directions * np.sqrt(2.0 * masses * energies)[:, None]
    temps = species_temperatures(torch.as_tensor(p), masses, species)
    assert list(temps) == ["O", "H"]
    total = masses.sum()
    f_o, f_h = 3 * 2 * (1 - 15.999 / total), 3 * 4 * (1 - 1.008 / total)
    assert temps["O"] == pytest.approx(2.0 * 0.08 / (f_o * KB), rel=1e-12)
    assert temps["H"] == pytest.approx(2.0 * 0.10 / (f_h * KB), rel=1e-12)
    # the f_s add up to 3N - 3: their weighted mean is the total temperature
    assert f_o + f_h == pytest.approx(3 * 6 - 3, rel=1e-12)
    weighted = (f_o * temps["O"] + f_h * temps["H"]) / (f_o + f_h)
    assert weighted == pytest.approx(2.0 * energies.sum() / ((3 * 6 - 3) * KB), rel=1e-12)

    batched = species_temperatures(np.stack([p, 2.0 * p]), masses, [8, 1, 1, 8, 1, 1])
    np.testing.assert_allclose(batched[8], temps["O"] * np.array([1.0, 4.0]), rtol=1e-12)
    np.testing.assert_allclose(batched[1], temps["H"] * np.array([1.0, 4.0]), rtol=1e-12)


def test_species_temperatures_are_equal_at_equilibrium_with_zero_total_momentum() -> None:
    """Canonical momenta at 300 K with the total momentum removed: every species reads 300 K.

    Three water molecules, where the O atoms carry 30 % of the mass: counting 3 degrees of
    freedom per atom, T_O would read 300 (1 - 16/54) = 211 K; the test tells the two apart
    by over 100 standard errors.
    """
    masses = np.tile([15.999, 1.008, 1.008], 3)
    species = np.tile(["O", "H", "H"], 3)
    rng = np.random.default_rng(61)
    p = rng.normal(size=(40_000, 9, 3)) * np.sqrt(masses * KB * T)[:, None]
    p -= masses[:, None] * p.sum(axis=1, keepdims=True) / masses.sum()  # sum_i p_i = 0 in every sample
    temps = species_temperatures(p, masses, species)
    for label in ("O", "H"):
        assert np.mean(temps[label]) == pytest.approx(T, rel=0.01), label


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        SVRThermostat(T, tau_fs=-1.0)
    with pytest.raises(ValueError):
        SVRThermostat(T, tau_fs=10.0, seed=0).apply(torch.zeros(1, 3, dtype=torch.float64), [1.0], 1.0)
    with pytest.raises(ValueError):
        VelocityVerletMap(lambda q: -q, [1.0], dt_fs=1.0, substeps=0)
    with pytest.raises(ValueError):
        species_temperatures(torch.zeros(2, 3), [1.0, 1.0], ["H"])
