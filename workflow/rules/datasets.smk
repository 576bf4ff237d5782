rule dataset:
    """Pairs at the long-step lag, with time reversal; midpoint form for the symplectic model."""
    input:
        "results/{system}/reference.npz",
    output:
        "results/{system}/datasets/{kind}.npz",
    log:
        "results/logs/dataset/{system}_{kind}.log",
    benchmark:
        "results/benchmarks/dataset/{system}_{kind}.tsv"
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        config=lambda w: settings(w.system, "pairing"),
    shell:
        "actionmd dataset --kind {wildcards.kind} --trajectory {input} "
        "--config {params.config:q} --out {output} > {log} 2>&1"
