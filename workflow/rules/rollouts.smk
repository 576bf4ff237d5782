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
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        gpu=needs_gpu,
        mem_mb=2000,
        runtime=120,
    params:
        config=rollout_settings,
        models=model_arguments,
    shell:
        "actionmd rollout --method {wildcards.method} --config {params.config:q} "
        "{params.models} --out {output} > {log} 2>&1"
