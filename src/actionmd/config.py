"""Configuration: schema validation, cross-key checks and preset resolution.

``config.yaml`` separates the physics of each system (``systems``) from the
protocol at each scale (``presets``). :func:`resolve` merges the two for the
selected preset. :func:`check` adds the checks a JSON schema cannot express
(shapes of initial conditions, enough reference steps for a pair), each
raising :class:`ConfigError` that names the offending key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import yaml

from actionmd.naming import SYSTEMS, analysis, family

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value is invalid; the message names its key."""


def _typed(value: Any) -> Any:
    """A value of a nested ``--config`` entry as YAML would read it: numbers, booleans and null typed."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if not isinstance(value, str):
        return value
    for parse in (int, float):
        try:
            return parse(value)
        except ValueError:
            pass
    parsed = yaml.safe_load(value) if value.strip() else value
    return parsed if isinstance(parsed, bool) or parsed is None else value


def typed_overrides(overrides: Any) -> dict[str, Any]:
    """Snakemake's ``--config key={a: 0.5}`` entries with their nested values typed.

    Snakemake reads a nested value with YAML's base loader, so every leaf is a string
    (``{mixing: 0.5}`` gives ``{'mixing': '0.5'}``, which the schema refuses); top-level values
    are typed already. Merged over the config, these make ``--config`` work like a config file.
    """
    return {key: _typed(value) for key, value in dict(overrides).items() if isinstance(value, (dict, list))}


def validate(config: dict[str, Any], schema: str | Path = SCHEMA) -> None:
    """Validate against the JSON schema (as snakemake.utils.validate does), then :func:`check`."""
    with open(schema) as fh:
        schema_dict = yaml.safe_load(fh)
    validator = jsonschema.Draft202012Validator(schema_dict)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        key = ".".join(str(k) for k in e.absolute_path) or "(top level)"
        raise ConfigError(f"config key '{key}': {e.message}")
    check(config)


def check(config: dict[str, Any]) -> None:
    """Cross-key checks on an already schema-valid config."""
    keys = [f"systems.{name}" for name in config["systems"]]
    keys += [f"presets.{preset}.{name}" for preset, protocols in config["presets"].items() for name in protocols]
    for key in keys:
        if key.rsplit(".", 1)[1] not in SYSTEMS:
            raise ConfigError(
                f"config key '{key}': no such system in the registry (actionmd.naming.SYSTEMS: "
                f"{sorted(SYSTEMS)}); a new system needs an entry there"
            )
    for name, system in config["systems"].items():
        if family(name) != "few_body":
            continue
        _check_fewbody_system(name, system)
    for preset, protocols in config["presets"].items():
        for name, proto in protocols.items():
            PROTOCOL_CHECKS[family(name)](f"presets.{preset}.{name}", proto, config)


def _check_fewbody_system(name: str, system: dict[str, Any]) -> None:
    q0, p0 = np.asarray(system["q0"], float), np.asarray(system["p0"], float)
    n = len(system["masses"])
    for key, arr in (("q0", q0), ("p0", p0)):
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ConfigError(f"config key 'systems.{name}.{key}': need {n} vectors (one per mass) of one dimension")
    if q0.shape != p0.shape:
        raise ConfigError(f"config key 'systems.{name}.p0': shape {p0.shape} differs from q0 {q0.shape}")
    if system["central_mass"] > 0 and np.any(np.linalg.norm(q0, axis=1) == 0):
        raise ConfigError(f"config key 'systems.{name}.q0': a body sits on the central mass")


def _check_fewbody_protocol(key: str, proto: dict[str, Any], config: dict[str, Any]) -> None:
    ref, pair = proto["reference"], proto["pairing"]
    usable = ref["steps"] + 1 - round(pair["validation_fraction"] * (ref["steps"] + 1))
    if pair["lag"] >= usable:
        raise ConfigError(
            f"config key '{key}.pairing.lag': {pair['lag']} steps leave no "
            f"training pair in {ref['steps']} reference steps; lengthen the reference or shorten the lag"
        )


def _check_md_frames(key: str, proto: dict[str, Any]) -> None:
    """Checks every atomistic protocol shares: pairs and rollouts fall on saved frames."""
    ref, pair, roll = proto["reference"], proto["pairing"], proto["rollout"]
    for what in ("lag", "stride"):
        if pair[what] % ref["save_every"]:
            raise ConfigError(
                f"config key '{key}.pairing.{what}': {pair[what]} MD steps is not a multiple of "
                f"reference.save_every ({ref['save_every']}), so its frames are not saved"
            )
    if ref["nve_steps"] % ref["save_every"]:
        raise ConfigError(f"config key '{key}.reference.nve_steps': not a multiple of reference.save_every")
    if pair["lag"] > ref["nve_steps"]:
        raise ConfigError(f"config key '{key}.pairing.lag': longer than the NVE run ({ref['nve_steps']} steps)")
    if roll["steps"] % roll["save_every"]:
        raise ConfigError(f"config key '{key}.rollout.steps': not a multiple of rollout.save_every")


def _check_md_protocol(key: str, proto: dict[str, Any], config: dict[str, Any]) -> None:
    _check_md_frames(key, proto)
    ref, pair = proto["reference"], proto["pairing"]
    if ref["runs"] < pair["validation_runs"] + pair["held_out_runs"] + 1:
        raise ConfigError(
            f"config key '{key}.reference.runs': {ref['runs']} runs leave none for training after "
            f"{pair['validation_runs']} validation and {pair['held_out_runs']} held-out runs"
        )


def _check_water_protocol(key: str, proto: dict[str, Any], config: dict[str, Any]) -> None:
    _check_md_frames(key, proto)
    ref, pair = proto["reference"], proto["pairing"]
    temps = ref["temperatures"]
    if temps["stop"] < temps["start"]:
        raise ConfigError(f"config key '{key}.reference.temperatures.stop': below temperatures.start")
    n_points = len(ref["volume_scales"]) * len(range(temps["start"], temps["stop"] + 1, temps["step"]))
    n_val = n_points // pair["validation_every"]
    if pair["validation_every"] < 2 or n_val < 1:
        raise ConfigError(
            f"config key '{key}.pairing.validation_every': with {n_points} state points and every "
            f"{pair['validation_every']}-th validating, no state point is left for training or for validation"
        )
    fit = proto["analysis"]["msd_fit"]
    if not 0 <= fit[0] < fit[1] <= 1:
        raise ConfigError(f"config key '{key}.analysis.msd_fit': need 0 <= start < end <= 1 (fractions of the run)")


def _check_mlip_protocol(key: str, proto: dict[str, Any], config: dict[str, Any]) -> None:
    _check_md_frames(key, proto)
    if proto["potential"] not in config["potentials"]:
        raise ConfigError(
            f"config key '{key}.potential': '{proto['potential']}' is not one of the potentials "
            f"{sorted(config['potentials'])}"
        )
    ramp, temps, roll = proto["ramp"], proto["reference"]["temperatures"], proto["rollout"]
    if not ramp["start"] < ramp["stop"]:
        raise ConfigError(f"config key '{key}.ramp.stop': must be above ramp.start")
    if not (ramp["start"] <= temps["start"] <= temps["stop"] <= ramp["stop"]):
        raise ConfigError(
            f"config key '{key}.reference.temperatures': {temps['start']}..{temps['stop']} K must lie within the "
            f"ramp's {ramp['start']}..{ramp['stop']} K, where the structures are collected"
        )
    n_structures = 2 * len(range(temps["start"], temps["stop"] + 1, temps["step"]))
    if n_structures // proto["pairing"]["validation_every"] < 1:
        raise ConfigError(
            f"config key '{key}.pairing.validation_every': {n_structures} structures leave none for validation"
        )
    if roll["reference_steps"] % roll["reference_save_every"]:
        raise ConfigError(f"config key '{key}.rollout.reference_steps': not a multiple of reference_save_every")
    if analysis(key.rsplit(".", 1)[1]) == "gete" and "quench" not in proto:
        raise ConfigError(f"config key '{key}.quench': GeTe's rollouts start from quenches; give this section")


PROTOCOL_CHECKS = {
    "few_body": _check_fewbody_protocol,
    "lammps_lj": _check_md_protocol,
    "water": _check_water_protocol,
    "crystal": _check_mlip_protocol,
}


def resolve(config: dict[str, Any], system: str) -> dict[str, Any]:
    """Physics and protocol of one system at the selected preset, plus the global settings."""
    if system not in config["systems"]:
        raise ConfigError(f"unknown system '{system}': config key 'systems' has {sorted(config['systems'])}")
    protocol = config["presets"][config["preset"]][system]
    solver = {**config["solver"], **protocol.get("rollout", {}).get("solver", {})}
    resolved = {
        "name": system,
        "physics": config["systems"][system],
        **protocol,
        "solver": solver,
        "device": config["device"],
    }
    if family(system) == "crystal":  # the named reference potential, spelled out
        resolved["potential"] = {"name": protocol["potential"], **config["potentials"][protocol["potential"]]}
    return resolved


def load(path: str | Path = ROOT / "config.yaml") -> dict[str, Any]:
    with open(path) as fh:
        config = yaml.safe_load(fh)
    validate(config)
    return config
