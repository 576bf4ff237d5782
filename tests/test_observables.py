"""RDF and MSD against cases with known answers: ideal gas, fcc crystal, random walk, ballistic flight."""

import numpy as np
import pytest

from actionmd.analysis.observables import RDF, mean_square_displacement, radial_distribution


def test_ideal_gas_rdf_is_one():
    rng = np.random.default_rng(0)
    box = np.array([20.0, 20.0, 20.0])
    frames = rng.uniform(0, 20.0, (20, 1000, 3))
    rdf = radial_distribution(frames, box, np.arange(1000), r_max=8.0, bins=40)
    far = rdf.r > 2.0  # enough pairs per bin there for ~1 % noise
    assert np.abs(rdf.g[far] - 1.0).max() < 0.05
    # coordination number of an ideal gas: density * 4/3 pi r^3
    density = 1000 / 20.0**3
    assert rdf.coordination[-1] == pytest.approx(density * 4 / 3 * np.pi * 8.0**3, rel=0.03)


def test_fcc_first_shell_and_cross_rdf():
    a, n = 4.0, 5
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    grid = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)])
    pos = a * (grid[:, None] + basis[None]).reshape(-1, 3) - 3.0 * a  # also far outside [0, L): wrapped inside
    cell = np.eye(3) * a * n
    rdf = radial_distribution(pos, cell, np.arange(len(pos)), r_max=4.5, bins=450)
    r_peak, height = rdf.first_peak()
    assert r_peak == pytest.approx(a / np.sqrt(2), abs=0.01)
    assert height > 10
    shell = np.searchsorted(rdf.r, 0.5 * (a / np.sqrt(2) + a))  # between the 1st and 2nd shells
    assert rdf.coordination[shell] == pytest.approx(12.0)
    # A-B: corner atoms (sublattice 0) around face-centred ones have 4 + 4 + 4 = 12 neighbours too,
    # of which 12 belong to the other three sublattices and none to their own at a / sqrt(2)
    corners = np.arange(0, len(pos), 4)
    faces = np.setdiff1d(np.arange(len(pos)), corners)
    cross = radial_distribution(pos, cell, corners, faces, r_max=4.5, bins=450)
    assert cross.coordination[shell] == pytest.approx(12.0)
    own = radial_distribution(pos, cell, corners, r_max=4.5, bins=450)
    assert own.coordination[shell] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="half the shortest"):
        radial_distribution(pos, cell, corners, r_max=12.0)


def test_first_peak_is_located_between_bin_centres():
    """A smooth peak (a liquid's first shell) on bins as wide as the water demo's: the highest bin's
    centre is off by 0.022 A, the parabola through it and its neighbours finds the peak within 0.003 A."""
    width = 0.0507  # A, the water demo's bins (92 up to half its 9.3 A box)
    r = 2.0 + width * (np.arange(30) + 0.5)
    true_r, true_height = 2.808, 3.1  # 0.003 A short of a bin edge
    g = 1.0 + (true_height - 1.0) * np.exp(-0.5 * ((r - true_r) / 0.15) ** 2)
    rdf = RDF(r, g, np.zeros_like(r))
    centre = r[np.argmax(g)]
    assert abs(centre - true_r) > 0.02  # the bin alone misses by almost half a bin
    r_peak, height = rdf.first_peak(r_min=2.0)
    assert r_peak == pytest.approx(true_r, abs=0.003)
    assert height == pytest.approx(true_height, rel=0.005)
    assert height >= g.max()


def test_msd_of_a_random_walk_gives_its_diffusion_coefficient():
    rng = np.random.default_rng(1)
    dt_fs, sigma = 10.0, 0.05  # per-step displacement std per axis (A)
    steps = rng.normal(0.0, sigma, (2000, 200, 3))
    positions = np.cumsum(steps, axis=0) + 30.0  # unwrapped, crossing any box
    msd = mean_square_displacement(positions, dt_fs)
    d_exact = sigma**2 / (2 * dt_fs / 1000.0)  # A^2/ps: <dx^2> = 2 D t per axis
    assert msd.diffusion_coefficient(0.5, 5.0) == pytest.approx(d_exact, rel=0.03)
    assert msd.lag[1] == pytest.approx(0.01) and msd.msd[0] == pytest.approx(0.0, abs=1e-6)


def test_msd_of_ballistic_flight_is_quadratic_and_can_select_atoms():
    t = np.arange(100) * 2.0  # fs
    velocity = np.array([[0.01, 0.0, 0.0], [0.0, 0.02, 0.02]])  # A/fs
    positions = t[:, None, None] * velocity[None]
    msd = mean_square_displacement(positions, 2.0, atoms=[1])
    lag_fs = msd.lag * 1000
    np.testing.assert_allclose(msd.msd, (lag_fs * 0.02) ** 2 * 2, rtol=1e-4, atol=1e-5)  # FFT round-off
