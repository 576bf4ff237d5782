"""Validation errors of the trained long-step models, per species and target.

For each exported model and its validation set (``md_dataset``'s
``{kind}_val.extxyz``):

* direct: the predicted step (q' - q, p' - p) against the reference's, as the
  rollout uses it (positions as displacements, minimum image); its size is
  what a model that predicts "nothing moves" gets wrong;
* symplectic: the increments (dq, dp) of the generating function at the
  reference midpoints against the reference's, for the raw model and for the
  model made even in p as the integrator uses it (``SymmetrisedIncrement``),
  and how odd the learned S is: the RMS of the odd-in-p part of the
  increments over the RMS of their even part.

Each row also gives the RMS of the target itself, so an error reads against
the size of what is learned (an RMSE near the target's RMS means nothing
learned). Units: A for positions, (eV*u)^(1/2) for momenta.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

import ase.io
import numpy as np
import pandas as pd
import torch

from actionmd.atomistic.model import DirectMap, ExportedModel, SymmetrisedIncrement
from actionmd.atomistic.rollout import half_step_over_mass
from actionmd.core.fixed_point import SolverSettings, solve_midpoint
from actionmd.io import InputError, atomic_path

COLUMNS = ("model", "evaluation", "target", "species", "rmse", "target_rms", "relative", "odd_fraction")
UNITS = {"position": "A", "momentum": "(eV*u)^(1/2)"}


def _read(path: Path):
    if not Path(path).is_file():
        raise InputError(f"{path}: validation set not found; run the workflow's md_dataset rule")
    frames = ase.io.read(path, ":", format="extxyz")
    if not frames:
        raise InputError(f"{path}: empty validation set")
    return frames


def _frames_and_model(model_path: str | Path, val_set: str | Path):
    """The validation frames and the exported model set up for their atoms (types, masses, first cell)."""
    frames = _read(Path(val_set))
    first = frames[0]
    return frames, ExportedModel(model_path, first.numbers, first.cell.array, first.get_masses())


def _chunks(frames, batch: int):
    """Consecutive frames in batches of at most ``batch`` sharing one cell (NPT sets change it)."""
    chunk = []
    for atoms in frames:
        if chunk and (len(chunk) == batch or not np.array_equal(atoms.cell.array, chunk[0].cell.array)):
            yield chunk
            chunk = []
        chunk.append(atoms)
    if chunk:
        yield chunk


MOLECULE = "H2O"  # the species name of the per-molecule rows


def _molecules(symbols: np.ndarray) -> np.ndarray | None:
    """Indices of each water molecule's O (its two H follow it), or None unless the atoms are O H H."""
    if len(symbols) % 3 or not np.array_equal(symbols, np.tile(["O", "H", "H"], len(symbols) // 3)):
        return None
    return np.arange(0, len(symbols), 3)


def _molecule_channel(values: np.ndarray, target: int, masses: np.ndarray, oxygens: np.ndarray) -> np.ndarray:
    """Each molecule's share of per-atom vectors (frames, atoms, 3): the sum of the three atoms'
    momentum changes (what the other molecules' forces do over the step), the mass-weighted mean of
    their displacements (the centre of mass's)."""
    atoms = np.stack([oxygens, oxygens + 1, oxygens + 2])  # (3, molecules)
    if target == 1:
        return values[:, atoms].sum(axis=1)
    weights = masses[atoms][None, :, :, None]
    return (values[:, atoms] * weights).sum(axis=1) / weights.sum(axis=1)


def _rows(model: str, evaluation: str, symbols: np.ndarray, errors, targets, odd=None, masses=None) -> list[dict]:
    """Per species and target: RMSE, the target's RMS, their ratio, how odd the increments are.

    For water (atoms O H H) also a row per target for the molecules as wholes (species ``H2O``):
    the error of each molecule's total momentum change and of its centre of mass's displacement,
    the part of the step the intermolecular forces make, which a per-atom RMSE, dominated by the
    stiff O-H bonds, hides.
    """
    rows = []
    oxygens = _molecules(symbols) if masses is not None else None
    for t, name in enumerate(("position", "momentum")):
        groups = []
        for species in sorted(set(symbols)):
            mask = symbols == species
            groups.append((species, errors[t][:, mask], targets[t][:, mask], mask))
        if oxygens is not None:
            channel = [_molecule_channel(x, t, masses, oxygens) for x in (errors[t], targets[t])]
            groups.append((MOLECULE, channel[0], channel[1], None))
        for species, error, target, mask in groups:
            rmse = float(np.sqrt(np.mean(error**2)))
            scale = float(np.sqrt(np.mean(target**2)))
            odd_fraction = float("nan")
            if odd is not None and mask is not None:
                even_rms = np.sqrt(np.mean(odd[t][1][:, mask] ** 2))
                odd_fraction = float(np.sqrt(np.mean(odd[t][0][:, mask] ** 2)) / even_rms) if even_rms > 0 else 0.0
            rows.append(
                {
                    "model": model,
                    "evaluation": evaluation,
                    "target": name,
                    "species": species,
                    "rmse": rmse,
                    "target_rms": scale,
                    "relative": rmse / scale if scale > 0 else float("nan"),
                    "odd_fraction": odd_fraction,
                }
            )
    return rows


def direct_errors(model_path: str | Path, val_set: str | Path, batch: int = 8) -> list[dict]:
    """Errors of a direct model's step (q' - q, p' - p) on its validation pairs."""
    frames, model = _frames_and_model(model_path, val_set)
    first = frames[0]
    errors: list[list[np.ndarray]] = [[], []]
    targets: list[list[np.ndarray]] = [[], []]
    for chunk in _chunks(frames, batch):
        q = torch.tensor(np.stack([a.positions for a in chunk]))
        p = torch.tensor(np.stack([a.get_momenta() for a in chunk]))
        lengths = np.diag(chunk[0].cell.array)
        model.set_cell(chunk[0].cell.array)
        q_out, p_out, wrapped = model(q, p)
        dq_true = np.stack([a.arrays["future_positions"] for a in chunk]) - q.numpy()
        p_true = np.stack([a.arrays["future_momenta"] for a in chunk])
        dq_err = (q_out - wrapped).numpy() - dq_true
        dq_err -= np.round(dq_err / lengths) * lengths
        errors[0].append(dq_err)
        errors[1].append(p_out.numpy() - p_true)
        targets[0].append(dq_true)
        targets[1].append(p_true - p.numpy())
    symbols = np.array(first.get_chemical_symbols())
    errors_, targets_ = [np.concatenate(e) for e in errors], [np.concatenate(t) for t in targets]
    return _rows("direct", "model", symbols, errors_, targets_, masses=first.get_masses())


def symplectic_errors(model_path: str | Path, val_set: str | Path, batch: int = 8) -> list[dict]:
    """Errors of the generating function's increments at the validation midpoints, raw and made even in p."""
    frames, model = _frames_and_model(model_path, val_set)
    first = frames[0]
    raw: list[list[np.ndarray]] = [[], []]
    even: list[list[np.ndarray]] = [[], []]
    odd: list[list[np.ndarray]] = [[], []]
    targets: list[list[np.ndarray]] = [[], []]
    for chunk in _chunks(frames, batch):
        n = len(chunk)
        model.set_cell(chunk[0].cell.array)
        q = torch.tensor(np.stack([a.positions for a in chunk]))
        p = torch.tensor(np.stack([a.get_momenta() for a in chunk]))
        dq, dp, _ = model(torch.cat([q, q]), torch.cat([p, -p]))
        dq, dp = dq.numpy(), dp.numpy()
        # dq = dS/dp is even in p for an S even in p, dp = -dS/dq is even too
        parts = (
            (0.5 * (dq[:n] - dq[n:]), 0.5 * (dq[:n] + dq[n:])),
            (0.5 * (dp[:n] + dp[n:]), 0.5 * (dp[:n] - dp[n:])),
        )
        truth = (np.stack([a.arrays["delta_q"] for a in chunk]), np.stack([a.arrays["delta_p"] for a in chunk]))
        for t in range(2):
            raw[t].append((dq, dp)[t][:n] - truth[t])
            even[t].append(parts[t][0] - truth[t])
            odd[t].append(parts[t][1])
            targets[t].append(truth[t])
    symbols = np.array(first.get_chemical_symbols())
    cat = [np.concatenate(t) for t in targets]
    even_parts = [np.concatenate(e) + c for e, c in zip(even, cat, strict=True)]
    odd_pairs = [(np.concatenate(o), e) for o, e in zip(odd, even_parts, strict=True)]
    masses = first.get_masses()
    return _rows("symplectic", "raw", symbols, [np.concatenate(e) for e in raw], cat, odd_pairs, masses) + _rows(
        "symplectic", "even in p", symbols, [np.concatenate(e) for e in even], cat, odd_pairs, masses
    )


def summary(models: Iterable[tuple[str, str | Path, str | Path]]) -> list[dict]:
    """Rows for each (kind, exported model, validation set)."""
    rows: list[dict] = []
    for kind, model_path, val_set in models:
        if kind == "direct":
            rows += direct_errors(model_path, val_set)
        elif kind == "symplectic":
            rows += symplectic_errors(model_path, val_set)
        else:
            raise ValueError(f"unknown model kind {kind!r}")
    return rows


def write_summary(rows: list[dict], out: str | Path) -> None:
    """The rows as CSV (atomically), units in the header of the error columns."""
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["unit"] = frame["target"].map(UNITS)
    with atomic_path(Path(out)) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def step_errors_by_iterations(
    direct_path: str | Path,
    symplectic_path: str | Path,
    val_set: str | Path,
    iterations: list[int | None],
    solver: dict,
    every: int = 6,
) -> list[dict]:
    """One-step error of the map with K fixed-point iterations (None: converged) on validation pairs.

    The direct model's prediction is the guess (K = 0 is the direct model itself), then K mixed
    updates of the midpoint equation of S made even in p, as in the rollouts. Rows: K, target,
    species, RMSE of (q', p') against the reference pair (every ``every``-th pair of
    ``direct_val.extxyz``). ``solver``: mixing, tolerance, max_iterations, anderson.
    """
    frames = _read(Path(val_set))[::every]
    first = frames[0]
    args = (first.numbers, first.cell.array, first.get_masses())
    direct_model, s_model = ExportedModel(direct_path, *args), ExportedModel(symplectic_path, *args)
    direct, increment = DirectMap(direct_model), SymmetrisedIncrement(s_model)
    # Dt / 2m for the converged solve's free-flight preconditioner (None: the model has no recorded Dt)
    scale = half_step_over_mass(first.get_masses(), s_model.timestep) if np.isfinite(s_model.timestep) else None
    symbols = np.array(first.get_chemical_symbols())
    errors: dict = {k: ([], []) for k in iterations}
    for atoms in frames:
        direct_model.set_cell(atoms.cell.array)
        s_model.set_cell(atoms.cell.array)
        q, p = torch.tensor(atoms.positions), torch.tensor(atoms.get_momenta())
        q_guess, p_guess = direct(q, p)
        for k in iterations:
            settings = SolverSettings.from_config({**solver, "anderson": solver["anderson"] if k is None else 0}, k)
            step = solve_midpoint(q, p, increment, q_guess, p_guess, settings, scale)
            errors[k][0].append(step.q.numpy() - atoms.arrays["future_positions"])
            errors[k][1].append(step.p.numpy() - atoms.arrays["future_momenta"])
    rows = []
    for k, (eq, ep) in errors.items():
        for name, values in (("position", np.stack(eq)), ("momentum", np.stack(ep))):
            for species in sorted(set(symbols)):
                rmse = float(np.sqrt(np.mean(values[:, symbols == species] ** 2)))
                label = "converged" if k is None else k
                rows.append({"iterations": label, "target": name, "species": species, "rmse": rmse})
    return rows


def sign_flip_change(increment, states, symbols: np.ndarray, seed: int = 0) -> list[dict]:
    """How much S couples the momenta of different atoms: increments under per-atom sign flips.

    For each state (q, p) ((N, 3) tensors) one random sign s_i = +-1 per atom is drawn and the
    increments are compared: an S even in each atom's momentum separately (no p_i.p_j terms,
    S = S_0(q) + sum_i f_i(q, p_i) with f_i even) has dp(q, s p) = dp(q, p) and
    dq(q, s p) = s dq(q, p). Rows per species and target: ``flip_change`` the RMS of those
    differences over the RMS of the increment, and for dp ``p_dependence`` the RMS of
    dp(q, p) - dp(q, 0) over the RMS of dp (how much of the force part depends on p at all).
    An S even in p that also couples the atoms' momenta (the exact S does, from order Dt^3:
    p_i . d2V/dq_i dq_j . p_j) cannot be reduced to one evaluation by a per-atom even encoder.
    """
    rng = np.random.default_rng(seed)
    diffs: dict[str, list] = {"position": [], "momentum": []}
    sizes: dict[str, list] = {"position": [], "momentum": []}
    p_dep: list = []
    with torch.no_grad():
        for q, p in states:
            s = torch.as_tensor(rng.choice([-1.0, 1.0], size=(len(q), 1)), dtype=p.dtype)
            dq, dp = increment(q, p)
            dq_flip, dp_flip = increment(q, s * p)
            _, dp_zero = increment(q, torch.zeros_like(p))
            diffs["position"].append((s * dq_flip - dq).numpy())
            diffs["momentum"].append((dp_flip - dp).numpy())
            sizes["position"].append(dq.numpy())
            sizes["momentum"].append(dp.numpy())
            p_dep.append((dp - dp_zero).numpy())
    rows = []
    for target in ("position", "momentum"):
        d, size = np.stack(diffs[target]), np.stack(sizes[target])
        for species in sorted(set(symbols)):
            sel = symbols == species
            scale = float(np.sqrt(np.mean(size[:, sel] ** 2))) or 1.0
            row = {"target": target, "species": species, "flip_change": float(np.sqrt(np.mean(d[:, sel] ** 2))) / scale}
            if target == "momentum":
                row["p_dependence"] = float(np.sqrt(np.mean(np.stack(p_dep)[:, sel] ** 2))) / scale
            rows.append(row)
    return rows


def momentum_coupling(symplectic_path: str | Path, val_set: str | Path, every: int = 6) -> list[dict]:
    """:func:`sign_flip_change` of an exported generating function (made even in p) on validation midpoints."""
    frames, model = _frames_and_model(symplectic_path, val_set)
    increment = SymmetrisedIncrement(model)
    states = []
    for atoms in frames[::every]:
        model.set_cell(atoms.cell.array)
        states.append((torch.tensor(atoms.positions), torch.tensor(atoms.get_momenta())))
    return sign_flip_change(increment, states, np.array(frames[0].get_chemical_symbols()))


if __name__ == "__main__":  # pragma: no cover (a measurement, see the README's water section)
    ap = argparse.ArgumentParser(description="one-step error of the K-iterated map on validation pairs")
    ap.add_argument("--results", default="results/water", help="a system's results folder")
    ap.add_argument("--mixing", type=float, default=0.3)
    ap.add_argument("--tolerance", type=float, default=1e-5)
    ap.add_argument("--anderson", type=int, default=5)
    ap.add_argument("--coupling", action="store_true", help="instead: how S couples the atoms' momenta")
    a = ap.parse_args()
    root = Path(a.results)
    if a.coupling:
        print(pd.DataFrame(momentum_coupling(root / "models/symplectic.pt", root / "datasets/symplectic_val.extxyz")))
        raise SystemExit(0)
    solver = {"mixing": a.mixing, "tolerance": a.tolerance, "max_iterations": 200, "anderson": a.anderson}
    table = pd.DataFrame(
        step_errors_by_iterations(
            root / "models/direct.pt",
            root / "models/symplectic.pt",
            root / "datasets/direct_val.extxyz",
            [0, 1, 2, 3, 4, 6, 8, None],
            solver,
        )
    )
    print(table.pivot_table(index="iterations", columns=["target", "species"], values="rmse", sort=False).to_string())
