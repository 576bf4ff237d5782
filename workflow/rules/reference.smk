rule reference:
    """Velocity-Verlet reference trajectory of a few-body system at the small step."""
    output:
        "results/{system}/reference.npz",
    log:
        "results/logs/reference/{system}.log",
    benchmark:
        "results/benchmarks/reference/{system}.tsv"
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        config=lambda w: settings(w.system, "physics", "reference"),
    shell:
        "actionmd reference --config {params.config:q} --out {output} > {log} 2>&1"
