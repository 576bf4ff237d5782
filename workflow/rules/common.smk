# Shared helpers: config validation, wildcard constraints, input functions.
import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from actionmd.config import check, resolve, typed_overrides  # noqa: E402
from actionmd.io import InputError  # noqa: E402
from actionmd.naming import (  # noqa: E402
    analysis,
    family,
    is_atomistic,
    metrics_file,
    method_name,
    parse_method,
    state_point_name,
    state_points,
    structure_name,
    structures,
)
from snakemake.logging import logger  # noqa: E402
from actionmd.core.fixed_point import SolverSettings  # noqa: E402

# nested --config values (solver={mixing: 0.5}) arrive as strings: type them like YAML
update_config(config, typed_overrides(workflow.config_settings.config))
validate(config, "../schemas/config.schema.yaml")
check(config)


def warn_oversubscription():
    """Local runs with --cores above the CPUs this process may use run that many threads on fewer CPUs."""
    available = len(os.sched_getaffinity(0))
    cores = workflow.global_resources["_cores"].value
    if workflow.local_exec and cores is not None and cores > available:
        logger.warning(
            f"--cores {cores} is more than the {available} CPUs of this machine: jobs run side by side "
            f"on fewer CPUs than Snakemake counts (each job still uses at most {available} threads). "
            f"Use --cores {available} (or --cores all)."
        )


warn_oversubscription()

SYSTEMS = list(config["systems"])


def systems_of(*families):
    """The configured systems of the given families, as a wildcard constraint."""
    return "|".join(s for s in SYSTEMS if family(s) in families)


FEW_BODY_SYSTEMS = systems_of("few_body")
ATOMISTIC_SYSTEMS = systems_of("lammps_lj", "water", "crystal")
LAMMPS_LJ_SYSTEMS = systems_of("lammps_lj")
WATER_SYSTEMS = systems_of("water")
MLIP_SYSTEMS = systems_of("crystal")
MD_ROLLOUT_SYSTEMS = systems_of("lammps_lj", "water")


def analysed_as(kind):
    """The configured systems whose analysis (metrics and figure) is ``kind``, as a wildcard constraint."""
    return "|".join(s for s in SYSTEMS if analysis(s) == kind)


GETE_SYSTEMS = analysed_as("gete")  # glassy relaxation after quenches (Fig. 3)
ALUMINIUM_SYSTEMS = analysed_as("aluminium")  # NPT averages and cost (Table 1)
MODEL_KINDS = ["direct", "symplectic"]
MD_DATASETS = [f"{k}_{s}.extxyz" for k in MODEL_KINDS for s in ("train", "val")]


wildcard_constraints:
    system="|".join(SYSTEMS),
    kind="|".join(MODEL_KINDS),
    method=r"reference|vv_large|direct|symplectic_k[0-9]+|symplectic_converged",


def training_settings(wildcards):
    """JSON config of md_train: one model's own settings (`<kind>_model`, `<kind>_training`) do not retrain the other."""
    cfg = json.loads(
        settings(
            wildcards.system, "physics", "reference", "pairing", "training", "device"
        )
    )
    for kind in MODEL_KINDS:
        if kind != wildcards.kind:
            cfg["training"].pop(f"{kind}_model", None)
            cfg["training"].pop(f"{kind}_training", None)
    return json.dumps(cfg, sort_keys=True)


def training_threads(wildcards):
    """Threads of one md_train job: half the cores (at most 4), so both models train side by side.

    The thread count is part of what makes a CPU training repeatable bit for bit: the same
    command on the same machine gives the same models.
    """
    try:
        cores = workflow.cores
    except (
        WorkflowError
    ):  # a cluster executor (SLURM) has no total number of cores: 4 threads
        cores = 8
    return max(1, min(4, int(cores) // 2))


def settings(system, *sections):
    """JSON of the resolved config sections a rule depends on (its params, so edits rerun it)."""
    resolved = resolve(config, system)
    return json.dumps({s: resolved[s] for s in sections}, sort_keys=True)


def water_run_settings(system, *sections):
    """settings() of one water MD job: the reference protocol without the state-point grid.

    A state point's run does not depend on which other state points exist, so adding or
    removing temperatures or volumes does not rerun the finished ones (nor the equilibration).
    """
    cfg = json.loads(settings(system, *sections))
    grid = ("temperatures", "volume_scales")
    cfg["reference"] = {k: v for k, v in cfg["reference"].items() if k not in grid}
    return json.dumps(cfg, sort_keys=True)


# config sections a rollout depends on beyond physics, reference, pairing and device, by family
ROLLOUT_SECTIONS = {
    "lammps_lj": (),
    "water": ("box", "equilibration"),
    "crystal": ("name", "potential"),
}


def rollout_settings(wildcards):
    """The config a rollout depends on (changing another K's entry, or the converged solve's, does not rerun it).

    Few-body rollouts: the physics, the reference, the lag and the number of steps only.
    """
    model, k = parse_method(wildcards.method)
    resolved = resolve(config, wildcards.system)
    system_family = family(wildcards.system)
    if system_family == "few_body":
        cfg = {
            "physics": resolved["physics"],
            "reference": resolved["reference"],
            "pairing": {"lag": resolved["pairing"]["lag"]},
            "rollout": {"steps": resolved["rollout"]["steps"]},
        }
    else:
        keys = ("physics", "reference", "pairing", "device")
        keys += ROLLOUT_SECTIONS[system_family]
        cfg = {key: resolved[key] for key in keys}
        cfg["rollout"] = {
            key: value
            for key, value in resolved["rollout"].items()
            if key not in ("iterations", "solver")
        }
    if model == "symplectic":
        cfg["solver"] = SolverSettings.keys_used(resolved["solver"], k)
    return json.dumps(cfg, sort_keys=True)


def rollout_methods(system):
    """Methods rolled out for a system: reference, direct, symplectic at each K (+ large-step VV, few-body)."""
    rollout = resolve(config, system)["rollout"]
    methods = ["reference", "direct"] + [method_name(k) for k in rollout["iterations"]]
    if family(system) == "few_body" and rollout["large_step_verlet"]:
        methods.append("vv_large")
    return methods


def rollout_files(wildcards):
    """Every rollout of a system; a crystal's, one per method and initial state (run)."""
    methods = rollout_methods(wildcards.system)
    if family(wildcards.system) == "crystal":
        return expand(
            "results/{system}/rollouts/{method}_run{run}.npz",
            system=wildcards.system,
            method=methods,
            run=range(resolve(config, wildcards.system)["rollout"]["runs"]),
        )
    return expand(
        "results/{system}/rollouts/{method}.npz",
        system=wildcards.system,
        method=methods,
    )


def rollout_models(wildcards):
    """Trained models a rollout needs: none for VV, the direct model, or both."""
    model, _ = parse_method(wildcards.method)
    needed = {"direct": ["direct"], "symplectic": ["direct", "symplectic"]}.get(
        model, []
    )
    return {k: f"results/{wildcards.system}/models/{k}.pt" for k in needed}


def model_arguments(wildcards, input):
    return " ".join(
        f"--{k} {input[k]}" for k in ("direct", "symplectic") if k in input.keys()
    )


def rollout_gpu(wildcards):
    """A model rollout asks for a GPU; a crystal's also when its reference potential runs on one."""
    gpu = 1 if parse_method(wildcards.method)[0] in MODEL_KINDS else 0
    if family(wildcards.system) == "crystal":
        return max(gpu, potential_gpu(wildcards))
    return gpu


def all_targets():
    """Every figure and table; MLIP systems whose PET-MAD file is not configured are left out, said so."""
    systems = [s for s in SYSTEMS if family(s) != "crystal" or potential_configured(s)]
    targets = expand(
        ["figures/{system}.pdf", "figures/{system}.png"],
        system=systems,
    )
    targets += [metrics_file(s) for s in systems]
    targets += [f"results/{s}/training/summary.csv" for s in systems if is_atomistic(s)]
    targets += expand(
        ["figures/{system}_frontier.pdf", "figures/{system}_frontier.png"],
        system=[s for s in systems if is_atomistic(s)],
    )
    return targets + [
        f"results/{s}/qtip4pf.pt" for s in SYSTEMS if family(s) == "water"
    ]


def metrics_table(wildcards):
    """The metrics table of an atomistic system (aluminium: Table 1), which its frontier is drawn from."""
    return metrics_file(wildcards.system)


# --- crystals driven by a reference ML potential (gete, aluminium) ---


def potential_configured(system):
    """False (with a message) when the system's potential is not available here: a metatomic
    model with no path in config, or an ASE calculator whose package is not installed.
    """
    from actionmd.potentials.reference import check as check_potential

    potential = resolve(config, system)["potential"]
    if potential["kind"] == "metatomic" and potential["path"] is None:
        logger.warning(
            f"{system}: left out of `all`: config key 'potentials.{potential['name']}.path' is not set "
            f"(preset {config['preset']} uses {potential['name']}; see the README, 'Reference potentials')"
        )
        return False
    if potential["kind"] == "ase":
        try:
            check_potential(potential["name"], potential, build=False)
        except InputError as exc:
            logger.warning(f"{system}: left out of `all`: {exc}")
            return False
    return True


def reference_potential(wildcards):
    """The reference potential's file as an input; a missing or unreadable one stops the DAG here."""
    from actionmd.potentials.reference import check as check_potential

    potential = resolve(config, wildcards.system)["potential"]
    if potential["kind"] == "toy":
        return {"potential": "results/potentials/toy.pt"}
    # raises InputError naming the config key and the file
    check_potential(potential["name"], potential)
    return {"potential": potential["path"]} if potential["kind"] == "metatomic" else {}


def potential_argument(wildcards, input):
    return f"--potential-model {input.potential}" if "potential" in input.keys() else ""


def mlip_settings(system):
    """JSON config of an MLIP rule: physics, protocol and the named potential."""
    return settings(system, "name", "physics", "box", "ramp", "reference", "potential")


def potential_gpu(wildcards):
    """A metatomic reference potential (PET-MAD), or an ASE calculator given a device, runs on
    the GPU unless pinned to the CPU; EAM, EMT and the toy do not."""
    potential = resolve(config, wildcards.system)["potential"]
    if potential["kind"] == "ase" and not potential.get("device_keyword"):
        return 0
    on_gpu = (
        potential["kind"] in ("metatomic", "ase") and potential.get("device") != "cpu"
    )
    return 1 if on_gpu else 0


def mlip_structure_files(system):
    return [
        f"results/{system}/reference/{structure_name(leg, t)}.extxyz"
        for leg, t in structures(resolve(config, system))
    ]


def mlip_rollout_inputs(wildcards):
    """Trained models, reference potential and initial states of one MLIP rollout."""
    inputs = {**rollout_models(wildcards), **reference_potential(wildcards)}
    if "quench" in resolve(config, wildcards.system):  # GeTe: from the quenched liquids
        inputs["initial"] = f"results/{wildcards.system}/reference/quenched.extxyz"
    else:
        inputs["initial"] = f"results/{wildcards.system}/datasets/initial.extxyz"
    return inputs


# --- atomistic systems (argon) ---


def md_reference_runs(wildcards):
    """Extxyz trajectories of every reference run (argon) or state point (water), in order."""
    reference = resolve(config, wildcards.system)["reference"]
    if family(wildcards.system) == "crystal":
        return mlip_structure_files(wildcards.system)
    if family(wildcards.system) == "water":
        return [
            f"results/{wildcards.system}/reference/{state_point_name(v, t)}.extxyz"
            for v, t in state_points(reference)
        ]
    return expand(
        "results/{system}/reference/run{run}.extxyz",
        system=wildcards.system,
        run=range(reference["runs"]),
    )


def md_dataset_inputs(wildcards):
    """The reference runs, and for water the equilibrated liquid the rollouts start from."""
    inputs = {"runs": md_reference_runs(wildcards)}
    if family(wildcards.system) == "water":
        inputs["equilibrated"] = (
            f"results/{wildcards.system}/reference/equilibrated.extxyz"
        )
    return inputs


def md_dataset_settings(wildcards):
    """MLIP systems also need the physics (rollout temperature) and their name."""
    if family(wildcards.system) == "crystal":
        return settings(wildcards.system, "name", "physics", "reference", "pairing")
    return settings(wildcards.system, "reference", "pairing")


def md_dataset_extra(wildcards, input):
    if "equilibrated" in input.keys():
        return f"--equilibrated {input.equilibrated}"
    return ""
