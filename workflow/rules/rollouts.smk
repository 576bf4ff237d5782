rule rollout:
    """One long-step rollout: reference VV, large-step VV, direct, or symplectic at K iterations."""
    input:
        unpack(rollout_models),
    output:
        "results/{system}/rollouts/{method}.npz",
    log:
        "results/logs/rollout/{system}_{method}.log",
    benchmark:
        "results/benchmarks/rollout/{system}_{method}.tsv"
    wildcard_constraints:
        system=FEW_BODY_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        gpu=rollout_gpu,
        mem_mb=2000,
        runtime=120,
    params:
        config=rollout_settings,
        models=model_arguments,
    shell:
        "actionmd rollout --method {wildcards.method} --config {params.config:q} "
        "{params.models} --out {output} > {log} 2>&1"


rule md_rollout:
    """One rollout (argon NVE, water NVT): reference MD, direct, or symplectic at K iterations."""
    input:
        unpack(rollout_models),
        initial="results/{system}/datasets/initial.extxyz",
    output:
        "results/{system}/rollouts/{method}.npz",
    log:
        "results/logs/md_rollout/{system}_{method}.log",
    benchmark:
        "results/benchmarks/md_rollout/{system}_{method}.tsv"
    wildcard_constraints:
        system=MD_ROLLOUT_SYSTEMS,
        method=r"reference|direct|symplectic_k[0-9]+|symplectic_converged",
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        gpu=rollout_gpu,
        runtime=600,
    params:
        config=rollout_settings,
        models=model_arguments,
    shell:
        "actionmd md-rollout --system {wildcards.system} --method {wildcards.method} "
        "--config {params.config:q} "
        "--initial {input.initial} {params.models} --threads {threads} "
        "--out {output} > {log} 2>&1"


rule mlip_rollout:
    """One rollout (GeTe NVT, aluminium NPT) of one method from one initial state."""
    input:
        unpack(mlip_rollout_inputs),
    output:
        "results/{system}/rollouts/{method}_run{run}.npz",
    log:
        "results/logs/mlip_rollout/{system}_{method}_run{run}.log",
    benchmark:
        "results/benchmarks/mlip_rollout/{system}_{method}_run{run}.tsv"
    wildcard_constraints:
        system=MLIP_SYSTEMS,
        method=r"reference|direct|symplectic_k[0-9]+|symplectic_converged",
        run=r"[0-9]+",
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        gpu=rollout_gpu,
    params:
        config=rollout_settings,
        models=model_arguments,
        potential=potential_argument,
    shell:
        "actionmd mlip-rollout --system {wildcards.system} --method {wildcards.method} "
        "--run {wildcards.run} --config {params.config:q} --initial {input.initial} "
        "{params.models} {params.potential} --threads {threads} --out {output} > {log} 2>&1"
