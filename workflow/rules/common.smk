# Shared helpers: config validation, wildcard constraints, input functions.
import json
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from actionmd.config import check, resolve  # noqa: E402
from actionmd.rollout import method_name, parse_method  # noqa: E402

validate(config, "../schemas/config.schema.yaml")
check(config)

SYSTEMS = list(config["systems"])
MODEL_KINDS = ["direct", "symplectic"]


wildcard_constraints:
    system="|".join(SYSTEMS),
    kind="|".join(MODEL_KINDS),
    method=r"reference|vv_large|direct|symplectic_k[0-9]+|symplectic_converged",


def settings(system, *sections):
    """JSON of the resolved config sections a rule depends on (its params, so edits rerun it)."""
    resolved = resolve(config, system)
    return json.dumps({s: resolved[s] for s in sections}, sort_keys=True)


def rollout_settings(wildcards):
    model, _ = parse_method(wildcards.method)
    resolved = resolve(config, wildcards.system)
    cfg = {
        "physics": resolved["physics"],
        "reference": resolved["reference"],
        "pairing": {"lag": resolved["pairing"]["lag"]},
        "rollout": {"steps": resolved["rollout"]["steps"]},
    }
    if model == "symplectic":
        cfg["solver"] = resolved["solver"]
    return json.dumps(cfg, sort_keys=True)


def rollout_methods(system):
    """Methods rolled out for a system: reference, direct, symplectic at each K (+ large-step VV)."""
    rollout = resolve(config, system)["rollout"]
    methods = ["reference", "direct"] + [method_name(k) for k in rollout["iterations"]]
    if rollout["large_step_verlet"]:
        methods.append("vv_large")
    return methods


def rollout_files(wildcards):
    return expand(
        "results/{system}/rollouts/{method}.npz",
        system=wildcards.system,
        method=rollout_methods(wildcards.system),
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


def needs_gpu(wildcards):
    return 1 if parse_method(wildcards.method)[0] in MODEL_KINDS else 0


def all_targets():
    return expand(
        [
            "figures/{system}.pdf",
            "figures/{system}.png",
            "results/{system}/metrics.csv",
        ],
        system=SYSTEMS,
    )
