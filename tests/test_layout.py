"""The package's layout rules, checked on the source (README, "Layout").

Each rule is checked on every module of ``src/actionmd`` and also on a small
counter-example, so that none of the checks can pass vacuously.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

from actionmd import naming
from actionmd.config import ROOT

PACKAGE = ROOT / "src" / "actionmd"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private_imports(source: str, package: str) -> list[str]:
    """Names with a leading underscore that ``source`` imports from another actionmd module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:  # relative: inside its own package
                target = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [target])
            if not target.startswith("actionmd"):
                continue
            found += [f"{target}.{a.name}" for a in node.names if a.name.startswith("_") and a.name != "__version__"]
    return found


def actionmd_imports(source: str, package: str) -> set[str]:
    """Every actionmd module ``source`` imports from, at any depth (function-local imports too)."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, target] if target else base)
            if target.startswith("actionmd"):
                out.add(target)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("actionmd")}
    return out


def imported_modules(source: str) -> set[str]:
    """Top-level names of every module ``source`` imports."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            out.add((node.module or "").split(".")[0])
    return out


def test_the_checks_catch_what_they_are_for():
    assert private_imports("from actionmd.systems.argon import _order\n", "actionmd.x") == [
        "actionmd.systems.argon._order"
    ]
    assert private_imports("from actionmd.io import InputError\n", "actionmd.x") == []
    assert "numpy" in imported_modules("def f():\n    import numpy as np\n")
    stale = actionmd_imports("def f():\n    from .architectures import EVEN\n", "actionmd.atomistic")
    assert stale == {"actionmd.atomistic.architectures"} and importlib.util.find_spec(stale.pop()) is None


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_another_modules_private_name(path):
    assert private_imports(path.read_text(), module_name(path)) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_actionmd_import_names_an_existing_module(path):
    """Function-local imports run only when called: a stale one (a module moved) is caught here."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    missing = [m for m in actionmd_imports(path.read_text(), package) if importlib.util.find_spec(m) is None]
    assert missing == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PACKAGE)}: {n} lines; split it by role"


def test_naming_needs_only_the_standard_library():
    """common.smk imports it on every Snakemake start: no numpy, no torch."""
    used = imported_modules((PACKAGE / "naming.py").read_text()) - {"__future__"}
    assert used <= set(sys.stdlib_module_names), used - set(sys.stdlib_module_names)


def test_every_configured_system_is_registered_with_a_known_family():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert set(config["systems"]) <= set(naming.SYSTEMS)
    assert {family for family, _ in naming.SYSTEMS.values()} <= set(naming.FAMILIES)
    assert {analysis for _, analysis in naming.SYSTEMS.values()} <= set(naming.ANALYSES)
    for preset in config["presets"].values():
        assert set(preset) <= set(naming.SYSTEMS)


def test_one_definition_of_the_shared_physics():
    """The conserved quantity, the long step, temperatures and kinetic energy are defined once."""
    once = ("conserved_quantity", "long_step", "temperature", "kinetic_energy", "species_temperatures")
    definitions: dict[str, list[str]] = {name: [] for name in once}
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name in definitions and node.col_offset == 0:
                definitions[node.name].append(module_name(path))
    # water's analysis has a conserved_quantity(roll) that calls dynamics.energy's
    allowed = {"conserved_quantity": {"actionmd.dynamics.energy", "actionmd.analysis.water"}}
    for name, where in definitions.items():
        assert set(where) <= allowed.get(name, {where[0]}) and len(where) == len(set(where)), (name, where)
