"""GeTe relaxation (Fig. 3) and aluminium NPT (Table 1) analyses on synthetic rollout files with known answers."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actionmd.analysis import aluminium, gete
from actionmd.io import InputError, save_npz

N_GETE = 64
N_AL = 108
POTENTIAL = "synthetic test potential"


# --------------------------------------------------------------------------------------
# block averaging
# --------------------------------------------------------------------------------------


def test_block_average_iid_recovers_mean_and_sigma_over_sqrt_n():
    rng = np.random.default_rng(3)
    n, sigma = 10_000, 2.0
    x = 5.0 + sigma * rng.normal(size=n)
    mean, err = aluminium.block_average(x, blocks=50)
    assert mean == pytest.approx(5.0, abs=4 * sigma / np.sqrt(n))
    # 50 block means: the error estimate itself scatters by 1 / sqrt(2 * 49) = 10 %, so 30 % is 3 sigma
    assert err == pytest.approx(sigma / np.sqrt(n), rel=0.3)
    # with the default 10 blocks one estimate scatters by 24 %; over many independent series the
    # error bars match the actual scatter of the means
    reps = 5.0 + sigma * rng.normal(size=(400, 1000))
    results = np.array([aluminium.block_average(r) for r in reps])
    assert np.std(results[:, 0]) == pytest.approx(sigma / np.sqrt(1000), rel=0.1)
    assert np.sqrt(np.mean(results[:, 1] ** 2)) == pytest.approx(sigma / np.sqrt(1000), rel=0.1)


def test_block_average_correlated_data_has_larger_error_than_naive():
    rng = np.random.default_rng(5)
    n, phi = 100_000, 0.9  # integrated autocorrelation time (1 + phi) / (1 - phi) = 19 frames
    noise = rng.normal(size=n)
    x = np.empty(n)
    x[0] = noise[0] / np.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + noise[i]
    mean, err = aluminium.block_average(x, blocks=25)  # blocks of 4000 frames >> 19; error estimate scatters by 14 %
    naive = np.std(x) / np.sqrt(n)
    # AR(1) with unit innovations: standard error of the mean -> 1 / ((1 - phi) sqrt(n)), sqrt(19) x naive
    exact = 1.0 / ((1.0 - phi) * np.sqrt(n))
    assert err > 3.0 * naive and aluminium.block_average(x)[1] > 3.0 * naive
    assert err == pytest.approx(exact, rel=0.35)
    assert abs(mean) < 4 * exact


def test_block_average_nan_and_short_series():
    x = np.r_[np.arange(12.0), np.full(5, np.nan)]
    with pytest.warns(RuntimeWarning, match="using 6"):
        mean, err = aluminium.block_average(x)
    # 6 blocks of 2: means 0.5, 2.5, ..., 10.5 (step 2) -> std sqrt(14) / sqrt(6)
    assert mean == pytest.approx(5.5)
    assert err == pytest.approx(np.std(np.arange(0.5, 11, 2.0), ddof=1) / np.sqrt(6))
    with pytest.raises(ValueError, match="at least 4 finite"):
        aluminium.block_average([1.0, 2.0, 3.0, np.nan])


# --------------------------------------------------------------------------------------
# GeTe
# --------------------------------------------------------------------------------------

F_GETE = 200
SAVE_GETE = 300.0  # fs between saved frames


def _gete_file(path, method, run, dt, gap, u_final_mev, wall, blow_up_frame=None, rng=None):
    """A synthetic quench: T_Ge - T_Te = 100 K in the first half, ``gap`` in the second; U relaxes to u_final."""
    rng = rng or np.random.default_rng(run)
    t = SAVE_GETE * np.arange(F_GETE)
    temp = 400.0 + rng.normal(scale=3.0, size=F_GETE)
    g = np.where(np.arange(F_GETE) < F_GETE // 2, 100.0, gap) + rng.normal(scale=0.5, size=F_GETE)
    u = N_GETE * (u_final_mev + 80.0 * np.exp(-t / 5000.0)) / 1000.0
    arrays = {
        "time": t,
        "potential_energy": u,
        "kinetic_energy": 1.5 * N_GETE * 8.617e-5 * temp,
        "temperature": temp,
        "temperature_Ge": temp + g / 2,
        "temperature_Te": temp - g / 2,
        "thermostat_work": np.zeros(F_GETE),
    }
    steps = int(round(t[-1] / dt))
    diverged = None
    if blow_up_frame is not None:
        for k in arrays:
            if k != "time":
                arrays[k][blow_up_frame:] = np.nan
        diverged = int(round(t[blow_up_frame] / dt)) - 5
        steps = diverged - 1
    meta = {
        "method": method,
        "run": run,
        "system": "gete",
        "dt": dt,
        "long_step": 30.0,
        "potential": POTENTIAL,
        "target_temperature": 400.0,
        "n_atoms": N_GETE,
        "diverged_at": diverged,
    }
    numbers = np.repeat([32, 52], N_GETE // 2)
    save_npz(path, wall_time=np.array(wall), steps_done=np.array(steps), numbers=numbers, meta=meta, **arrays)
    return path


def _gete_set(tmp_path: Path) -> list[Path]:
    paths = []
    for run, gap in enumerate((0.0, 0.5, -0.5)):
        paths.append(_gete_file(tmp_path / f"ref_{run}.npz", "reference", run, 4.0, gap, -4000.0, 100.0 * (run + 1)))
    for run, gap in enumerate((2.0, 4.0, 9.0)):  # mean 5 K, sample std sqrt(13) K
        paths.append(_gete_file(tmp_path / f"dir_{run}.npz", "direct", run, 30.0, gap, -3999.0 + run, 10.0))
    for run in range(3):
        blow = 150 if run == 1 else None
        paths.append(_gete_file(tmp_path / f"k4_{run}.npz", "symplectic_k4", run, 30.0, 1.0, -4000.0, 40.0, blow))
    return paths


def test_gete_metrics_recover_gap_spread_and_nan_tail(tmp_path):
    paths = _gete_set(tmp_path)
    rolls = gete.load_gete(list(reversed(paths)))
    assert list(rolls) == ["reference", "direct", "symplectic_k4"]
    assert [r["meta"]["run"] for r in rolls["direct"]] == [0, 1, 2]
    table = gete.gete_metrics(rolls, tmp_path / "gete.csv").set_index("method")
    on_disk = pd.read_csv(tmp_path / "gete.csv").set_index("method")
    pd.testing.assert_frame_equal(on_disk[table.columns[:5]], table[table.columns[:5]], check_dtype=False)

    direct = table.loc["direct"]
    # the second half only: the 100 K gap of the first half must not leak in
    assert direct["T_Ge_minus_T_Te_K"] == pytest.approx(5.0, abs=0.2)
    assert direct["T_Ge_minus_T_Te_std_K"] == pytest.approx(np.sqrt(13.0), abs=0.2)
    assert direct["T_mean_K"] == pytest.approx(400.0, abs=1.0)
    # U relaxes to -3999 + run meV/atom: the last 10 % (t >= 54 ps, exp(-54/5) ~ 2e-5) give it
    assert direct["U_final_meV_per_atom"] == pytest.approx(-3998.0, abs=0.05)
    assert direct["U_final_std_meV_per_atom"] == pytest.approx(1.0, abs=0.05)
    assert direct["frames_finite"] == 3 * F_GETE and direct["runs_complete"] == 3
    # simulated 59.7 ps = 0.0597 ns for 10 s of wall time
    assert direct["wall_s_per_ns"] == pytest.approx(10.0 / (SAVE_GETE * (F_GETE - 1) / 1e6), rel=1e-6)
    assert table.loc["reference", "T_Ge_minus_T_Te_K"] == pytest.approx(0.0, abs=0.2)

    k4 = table.loc["symplectic_k4"]
    assert k4["frames"] == 3 * F_GETE
    assert k4["frames_finite"] == 3 * F_GETE - (F_GETE - 150)
    assert k4["runs_complete"] == 2 and k4["runs_used_U_final"] == 2 and k4["runs_used_T"] == 3
    assert k4["T_Ge_minus_T_Te_K"] == pytest.approx(1.0, abs=0.2)
    assert np.isfinite(k4["U_final_meV_per_atom"])


def test_gete_time_grid_mismatch_and_missing_key(tmp_path):
    paths = _gete_set(tmp_path)
    roll = dict(np.load(paths[4]))
    roll["time"] = roll["time"] * 2
    np.savez(paths[4], **roll)
    with pytest.raises(InputError, match="time grid"):
        gete.load_gete(paths)
    bad = tmp_path / "no_te.npz"
    roll = dict(np.load(paths[0]))
    del roll["temperature_Te"]
    np.savez(bad, **roll)
    with pytest.raises(InputError, match=r"no_te\.npz.*temperature_Te"):
        gete.load_gete([bad])


def test_gete_plot_writes_files(tmp_path):
    rolls = gete.load_gete(_gete_set(tmp_path))
    zero, text = gete.gete_energy_zero(rolls)
    assert zero == pytest.approx(-4000.0 + 80.0) and "reference" in text
    gete.gete_plot(rolls, tmp_path / "fig3.pdf", tmp_path / "fig3.png")
    assert (tmp_path / "fig3.pdf").read_bytes()[:4] == b"%PDF" and (tmp_path / "fig3.pdf").stat().st_size > 5000
    assert (tmp_path / "fig3.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "fig3.png").stat().st_size > 5000


# --------------------------------------------------------------------------------------
# aluminium
# --------------------------------------------------------------------------------------


def _al_file(path, method, dt, save_every, steps, wall, t_mean, v_mean, blow_up_frame=None, seed=0):
    """NPT trace: equilibration (first 20 %) 200 K hotter and 10 % bigger, then noise around the means."""
    rng = np.random.default_rng(seed)
    frames = steps // save_every + 1
    t = dt * save_every * np.arange(frames)
    hot = np.arange(frames) < int(round(0.2 * frames))
    temp = np.where(hot, t_mean + 200.0, t_mean) + rng.normal(scale=5.0, size=frames)
    vol = np.where(hot, 1.1 * v_mean, v_mean) + rng.normal(scale=2.0, size=frames)
    u = -3.4 * N_AL + 0.001 * rng.normal(size=frames)
    diverged = None
    if blow_up_frame is not None:
        temp[blow_up_frame:] = vol[blow_up_frame:] = u[blow_up_frame:] = np.nan
        diverged = blow_up_frame * save_every  # the step of the first NaN frame blew up
        steps = diverged - 1
    meta = {
        "method": method,
        "system": "aluminium",
        "dt": dt,
        "long_step": 30.0,
        "potential": POTENTIAL,
        "target_temperature": 300.0,
        "target_pressure": 1.0,
        "n_atoms": N_AL,
        "diverged_at": diverged,
    }
    save_npz(
        path,
        time=t,
        potential_energy=u,
        temperature=temp,
        volume=vol,
        wall_time=np.array(wall),
        steps_done=np.array(steps),
        numbers=np.full(N_AL, 13),
        meta=meta,
    )
    return path


def _al_set(tmp_path: Path) -> list[Path]:
    v = 16.6 * N_AL
    return [
        # 10 ps at 1 fs in 1 h -> 10 h per 100 ps
        _al_file(tmp_path / "ref.npz", "reference", 1.0, 30, 10_020, 3600.0 * 10_020 / 10_000, 300.0, v, seed=1),
        # 9 ps at 30 fs in 90 s -> 0.2778 h per 100 ps: 36 times faster
        _al_file(tmp_path / "direct.npz", "direct", 30.0, 1, 300, 90.0, 310.0, 1.02 * v, seed=2),
        _al_file(tmp_path / "k8.npz", "symplectic_k8", 30.0, 1, 300, 180.0, 300.0, v, seed=3),
        _al_file(tmp_path / "k4.npz", "symplectic_k4", 30.0, 1, 300, 30.0, 300.0, v, blow_up_frame=250, seed=4),
    ]


def test_aluminium_table_means_discard_cost_and_blow_up(tmp_path):
    rolls = aluminium.load_aluminium(_al_set(tmp_path))
    assert list(rolls) == ["reference", "direct", "symplectic_k4", "symplectic_k8"]
    table = aluminium.aluminium_table(rolls, tmp_path / "table1.csv", discard=0.2)
    assert list(table["method"]) == ["reference", "direct", "symplectic_k4", "symplectic_k8"]
    assert list(pd.read_csv(tmp_path / "table1.csv").columns) == list(table.columns)
    row = table.set_index("method")
    ref, direct, k8, k4 = (row.loc[m] for m in ("reference", "direct", "symplectic_k8", "symplectic_k4"))
    v = 16.6 * N_AL
    # the discarded 20 % (200 K hotter, 10 % bigger) do not bias the means
    assert ref["T_mean_K"] == pytest.approx(300.0, abs=1.5)
    assert direct["T_mean_K"] == pytest.approx(310.0, abs=2.0)
    assert direct["V_mean_A3"] == pytest.approx(1.02 * v, abs=1.0)
    assert direct["V_per_atom_A3"] == pytest.approx(1.02 * 16.6, abs=0.01)
    assert 0.1 < direct["T_err_K"] < 1.0  # 5 K noise over 240 frames: 0.32 K
    assert direct["frames_used"] == 301 - 60 and ref["frames_used"] == 335 - 67
    assert direct["equilibration_ps"] == pytest.approx(60 * 0.03)
    # cost and speedup
    assert ref["simulated_ps"] == pytest.approx(10.02) and direct["simulated_ps"] == pytest.approx(9.0)
    assert ref["wall_h_per_100ps"] == pytest.approx(10.0)
    assert direct["wall_h_per_100ps"] == pytest.approx(90.0 / 3600.0 / 9.0 * 100.0)
    assert direct["speedup_vs_reference"] == pytest.approx(36.0)
    assert k8["speedup_vs_reference"] == pytest.approx(18.0) and ref["speedup_vs_reference"] == 1.0
    # the blown-up run keeps its row, flagged, with the frames it had
    assert bool(ref["complete"]) and bool(direct["complete"]) and not bool(k4["complete"])
    assert k4["frames_used"] == 250 - 60
    assert k4["last_finite_ps"] == pytest.approx(249 * 0.03)
    assert k4["T_mean_K"] == pytest.approx(300.0, abs=2.0)
    with pytest.raises(ValueError, match="discard"):
        aluminium.aluminium_table(rolls, discard=1.0)


def test_aluminium_missing_key_and_plot(tmp_path):
    paths = _al_set(tmp_path)
    rolls = aluminium.load_aluminium(paths)
    aluminium.aluminium_table(rolls, tmp_path / "table1.csv")
    aluminium.aluminium_plot(rolls, tmp_path / "table1.csv", tmp_path / "t1.pdf", tmp_path / "t1.png")
    assert (tmp_path / "t1.pdf").read_bytes()[:4] == b"%PDF" and (tmp_path / "t1.pdf").stat().st_size > 5000
    assert (tmp_path / "t1.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "t1.png").stat().st_size > 5000
    aluminium.aluminium_plot(rolls, aluminium.aluminium_table(rolls), tmp_path / "t1b.pdf")
    assert (tmp_path / "t1b.pdf").stat().st_size > 5000

    bad = tmp_path / "novolume.npz"
    data = dict(np.load(paths[1]))
    del data["volume"]
    np.savez(bad, **data)
    with pytest.raises(InputError, match=r"novolume\.npz.*volume"):
        aluminium.load_aluminium([paths[0], bad])
    with pytest.raises(InputError, match=r"missing\.npz"):
        aluminium.load_aluminium([tmp_path / "missing.npz"])
    with pytest.raises(InputError, match="second rollout of reference"):
        aluminium.load_aluminium([paths[0], paths[0]])
