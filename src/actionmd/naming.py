"""Names and grids every step agrees on: systems, rollout methods, state points, structures, files.

Dependency-free (the standard library only), so that the workflow's ``common.smk`` can
import it without loading numpy or torch.

* The system registry :data:`SYSTEMS`: each paper system's family, which decides the
  chain of rules it goes through and the module that runs its steps.
* Rollout methods: 'reference', 'vv_large' (few-body), 'direct', 'symplectic_k<K>',
  'symplectic_converged' (:func:`parse_method`, :func:`method_name`, :func:`order_methods`).
* State points of water (cell volume scale x temperature) and structures of the crystals
  (ramp leg x temperature), as they appear in file names.
"""

from __future__ import annotations

from typing import Any

# system -> (family, analysis). The family decides the chain of rules a system goes
# through and the module that runs its steps: few_body (N-body gravity, MLPs), lammps_lj
# (LAMMPS Lennard-Jones reference runs), water (q-TIP4P/f over a grid of state points),
# crystal (a named reference ML potential, NPT ramps and structures). The analysis decides
# its metrics table and figure: kepler (one orbiting body, Fig. 4), three_body (Fig. 1),
# argon (Fig. 5), water (Fig. 2), gete (relaxation after quenches, Fig. 3), aluminium (NPT
# averages, Table 1). A new system of an existing family and analysis is a line here plus
# its config and schema entries.
SYSTEMS: dict[str, tuple[str, str]] = {
    "one_body": ("few_body", "kepler"),
    "three_body": ("few_body", "three_body"),
    "argon": ("lammps_lj", "argon"),
    "water": ("water", "water"),
    "gete": ("crystal", "gete"),
    "aluminium": ("crystal", "aluminium"),
}
FAMILIES = ("few_body", "lammps_lj", "water", "crystal")
ANALYSES = ("kepler", "three_body", "argon", "water", "gete", "aluminium")
ATOMISTIC_FAMILIES = ("lammps_lj", "water", "crystal")  # metatrain models, metatomic rollouts


def _entry(system: str) -> tuple[str, str]:
    try:
        return SYSTEMS[system]
    except KeyError:
        raise KeyError(f"unknown system '{system}': registered systems are {sorted(SYSTEMS)}") from None


def family(system: str) -> str:
    """The family of a registered system (KeyError naming the registered ones otherwise)."""
    return _entry(system)[0]


def analysis(system: str) -> str:
    """The analysis (metrics table and figure) of a registered system."""
    return _entry(system)[1]


def systems_of(*families: str) -> tuple[str, ...]:
    """Registered systems of the given families, in registry order."""
    return tuple(name for name, (fam, _) in SYSTEMS.items() if fam in families)


def is_atomistic(system: str) -> bool:
    return family(system) in ATOMISTIC_FAMILIES


# --------------------------------------------------------------------------------------
# rollout methods
# --------------------------------------------------------------------------------------


def parse_method(method: str) -> tuple[str, int | None]:
    """'direct' -> ('direct', 0); 'symplectic_k8' -> ('symplectic', 8);
    'symplectic_converged' -> ('symplectic', None); 'reference', 'vv_large' -> (name, None)."""
    if method == "direct":
        return "direct", 0
    if method == "symplectic_converged":
        return "symplectic", None
    if method.startswith("symplectic_k") and method[len("symplectic_k") :].isdigit():
        return "symplectic", int(method[len("symplectic_k") :])
    if method in ("reference", "vv_large"):
        return method, None
    raise ValueError(
        f"unknown rollout method {method!r}: use reference, vv_large, direct, symplectic_kK or symplectic_converged"
    )


def method_name(iterations: int | str) -> str:
    """Config iteration entry (K or 'converged') -> rollout method name."""
    return "symplectic_converged" if iterations == "converged" else f"symplectic_k{int(iterations)}"


def order_methods(methods: list[str]) -> list[str]:
    """Reference first, then the direct model, then the symplectic map by K, converged last."""

    def key(m: str) -> tuple[int, float]:
        kind, k = parse_method(m)
        rank = {"reference": 0, "vv_large": 0, "direct": 1, "symplectic": 2}[kind]
        return rank, float("inf") if (kind == "symplectic" and k is None) else float(k or 0)

    return sorted(methods, key=key)


def long_step(cfg: dict[str, Any]) -> float:
    """The long step Dt (fs) of an atomistic system: ``pairing.lag`` MD steps of ``reference.dt``."""
    return cfg["pairing"]["lag"] * cfg["reference"]["dt"]


# --------------------------------------------------------------------------------------
# state points (water) and structures (crystals)
# --------------------------------------------------------------------------------------


def state_points(reference: dict[str, Any]) -> list[tuple[str, int]]:
    """(volume scale as written in file names, temperature in K) of every state point, volume-major."""
    temps = reference["temperatures"]
    grid = list(range(temps["start"], temps["stop"] + 1, temps["step"]))
    return [(f"{v:.2f}", t) for v in reference["volume_scales"] for t in grid]


def state_point_name(volume: str, temperature: int) -> str:
    return f"V{volume}_T{temperature}"


LEGS = ("heat", "cool")  # the crystals' NPT ramps: heating leg first


def temperature_grid(cfg: dict[str, Any]) -> list[int]:
    """Temperatures (K) at which the ramps collect a structure (``reference.temperatures``)."""
    t = cfg["reference"]["temperatures"]
    return list(range(t["start"], t["stop"] + 1, t["step"]))


def structures(cfg: dict[str, Any]) -> list[tuple[str, int]]:
    """(leg, temperature in K) of every structure, heating leg first."""
    return [(leg, t) for leg in LEGS for t in temperature_grid(cfg)]


def structure_name(leg: str, temperature: int) -> str:
    return f"{leg}_T{temperature}"


def metrics_file(system: str) -> str:
    """The metrics table of ``system`` the frontier is drawn from (relative to the repository)."""
    name = "table1.csv" if analysis(system) == "aluminium" else "metrics.csv"
    return f"results/{system}/{name}"
