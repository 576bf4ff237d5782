"""The isotropic BZP barostat and the NPT splitting: conservation law and the NPT stationary volume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import units

from actionmd.dynamics.barostat import IsotropicBarostat, NPTIntegrator, internal_pressure
from actionmd.dynamics.energy import KB
from actionmd.dynamics.thermostat import SVRThermostat, VelocityVerletMap


class GaussianGas:
    """Pairs repel with V(r) = eps exp(-(r / s)^2), minimum image in an orthorhombic box; cached like Evaluator."""

    def __init__(self, eps: float = 0.3, s: float = 1.6, cutoff: float = 6.0) -> None:
        self.eps, self.s, self.cutoff = eps, s, cutoff
        self.calls = 0
        self._last = None

    def __call__(self, q: np.ndarray, cell: np.ndarray):
        if self._last is not None and np.array_equal(self._last[0], q) and np.array_equal(self._last[1], cell):
            return self._last[2]
        self.calls += 1
        lengths = np.diagonal(cell)
        d = q[:, None, :] - q[None, :, :]
        d -= lengths * np.round(d / lengths)
        r2 = (d**2).sum(-1)
        mask = np.triu(r2 < self.cutoff**2, 1)
        v = self.eps * np.exp(-r2 / self.s**2) * mask
        energy = float(v.sum())
        dv_dr_over_r = -2.0 * v / self.s**2  # V'(r) / r
        pair = dv_dr_over_r[..., None] * d
        forces = -(pair.sum(1) - pair.sum(0))
        stress = np.einsum("ij,ija,ijb->ab", dv_dr_over_r, d, d) / float(np.prod(lengths))
        result = (energy, forces, stress)
        self._last = (q.copy(), cell.copy(), result)
        return result


def _gas(n_side: int = 3, spacing: float = 3.0, temperature: float = 300.0, seed: int = 0):
    grid = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3) * spacing
    rng = np.random.default_rng(seed)
    q = grid + 0.2 * rng.standard_normal(grid.shape)
    masses = np.full(len(q), 39.948)
    p = rng.standard_normal(q.shape) * np.sqrt(masses * KB * temperature)[:, None]
    p -= p.mean(0)
    cell = np.eye(3) * n_side * spacing
    return torch.from_numpy(q), torch.from_numpy(p), masses, cell


def test_stress_is_the_strain_derivative_of_the_energy():
    q, _, _, cell = _gas()
    gas = GaussianGas()
    _, _, stress = gas(q.numpy(), cell)
    h = 1e-6
    e = [gas(q.numpy() * (1 + s), cell * (1 + s))[0] for s in (h, -h)]
    volume = np.linalg.det(cell)
    assert np.trace(stress) == pytest.approx((e[0] - e[1]) / (2 * h) / volume, rel=1e-5)


@pytest.mark.parametrize("inner", [False, True])
def test_nph_conserves_the_extended_energy(inner: bool):
    """No thermostats: H + P V + p_eps^2/2W - kT ln V is constant to O(dt^2) while the volume moves by percents."""
    q, p, masses, cell = _gas()
    gas = GaussianGas()
    baro = IsotropicBarostat(pressure_bar=2000.0, temperature=300.0, tau_fs=200.0, cell_tau_fs=math.inf, n_atoms=len(q))
    dt = 1.0
    kwargs = {}
    if inner:  # the long-step-map arrangement, with velocity Verlet at fixed cell as the map
        box = {"cell": cell.copy()}
        vv = VelocityVerletMap(lambda x: torch.from_numpy(gas(x.numpy(), box["cell"])[1]), masses, dt, substeps=2)
        kwargs = {"inner": vv, "set_cell": lambda c: box.update(cell=c.copy())}
    npt = NPTIntegrator(masses, cell, gas, baro, None, dt, **kwargs)
    volumes, conserved, energies = [], [], []
    for _ in range(1500):
        q, p = npt.step(q, p)
        volumes.append(npt.volume)
        conserved.append(npt.conserved(p))
        energies.append(npt.potential_energy + float(0.5 * (p**2 / torch.from_numpy(masses)[:, None]).sum()))
    volumes, conserved, energies = map(np.asarray, (volumes, conserved, energies))
    assert np.ptp(volumes) / volumes.mean() > 0.02  # the cell really moves
    assert np.ptp(energies) > 0.05  # and H alone is not conserved
    assert np.ptp(conserved) < 0.02 * np.ptp(energies)
    first, last = conserved[:300].mean(), conserved[-300:].mean()
    assert abs(last - first) < 0.005 * np.ptp(energies)  # no drift


def test_one_evaluation_per_step():
    q, p, masses, cell = _gas()
    gas = GaussianGas()
    baro = IsotropicBarostat(2000.0, 300.0, 100.0, 100.0, len(q), seed=1)
    npt = NPTIntegrator(masses, cell, gas, baro, SVRThermostat(300.0, 50.0, seed=2), 2.0)
    q, p = npt.step(q, p)
    before = gas.calls
    for _ in range(10):
        q, p = npt.step(q, p)
    assert gas.calls - before == 10


def test_ideal_gas_mean_volume_is_the_npt_value():
    """Ideal gas with the SVR thermostat (N_f = 3N - 3): stationarity of p_eps gives <V> = (N_f / 3 + 1) k_B T / P.

    A missing k_B T term in the strain-momentum kick would give N_f k_B T / 3P, 5 % lower for N = 20.
    """
    n, temperature, pressure_bar = 20, 300.0, 500.0
    rng = np.random.default_rng(3)
    masses = np.full(n, 20.0)
    kT = KB * temperature
    expected = ((3 * n - 3) / 3 + 1) * kT / (pressure_bar * units.bar)
    cell = np.eye(3) * expected ** (1 / 3)
    q = torch.from_numpy(rng.uniform(0, cell[0, 0], (n, 3)))
    p = torch.from_numpy(rng.standard_normal((n, 3)) * np.sqrt(masses * kT)[:, None])
    p -= p.mean(0)

    def free(x: np.ndarray, c: np.ndarray):
        return 0.0, np.zeros_like(x), np.zeros((3, 3))

    baro = IsotropicBarostat(pressure_bar, temperature, tau_fs=200.0, cell_tau_fs=200.0, n_atoms=n, seed=4)
    npt = NPTIntegrator(masses, cell, free, baro, SVRThermostat(temperature, 50.0, seed=5), 20.0, max_volume_change=100)
    volumes = []
    for k in range(16000):
        q, p = npt.step(q, p)
        if k >= 1000:
            volumes.append(npt.volume)
    volumes = np.asarray(volumes)
    blocks = volumes[: len(volumes) // 50 * 50].reshape(50, -1).mean(1)
    err = blocks.std(ddof=1) / np.sqrt(len(blocks))
    assert err < 0.015 * expected
    assert abs(volumes.mean() - expected) < 3 * err


def test_internal_pressure_of_an_ideal_gas_is_nkt_over_v():
    kin, volume = 1.5 * 10 * KB * 300.0, 1000.0
    assert internal_pressure(np.zeros((3, 3)), kin, volume) == pytest.approx(10 * KB * 300.0 / volume)


def test_non_orthorhombic_cell_is_refused():
    cell = np.eye(3)
    cell[1, 0] = 0.1
    baro = IsotropicBarostat(1.0, 300.0, 100.0, 100.0, 1)
    with pytest.raises(ValueError, match="orthorhombic"):
        NPTIntegrator(np.ones(1), cell, GaussianGas(), baro, None, 1.0)


def test_a_collapsing_cell_is_a_blow_up():
    """A cell that shrank by more than max_volume_change stops the run before the potential is called."""
    from actionmd.dynamics.barostat import UnphysicalState

    q, p, masses, cell = _gas()
    gas = GaussianGas()
    baro = IsotropicBarostat(2000.0, 300.0, 100.0, 100.0, len(q))
    baro.momentum = -50 * baro.mass / units.fs  # strain velocity -50 / fs: the cell collapses
    npt = NPTIntegrator(masses, cell, gas, baro, None, 1.0)
    with pytest.raises(UnphysicalState, match="volume"):
        npt.step(q, p)
