rule train:
    """Train the direct MLP or the generating function S; resumes from its checkpoint."""
    input:
        "results/{system}/datasets/{kind}.npz",
    output:
        "results/{system}/models/{kind}.pt",
    log:
        "results/logs/train/{system}_{kind}.log",
    benchmark:
        "results/benchmarks/train/{system}_{kind}.tsv"
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=240,
    params:
        config=lambda w: settings(w.system, "training", "device"),
        checkpoint="results/{system}/models/{kind}.ckpt",
    shell:
        "actionmd train --kind {wildcards.kind} --dataset {input} --config {params.config:q} "
        "--checkpoint {params.checkpoint} --threads {threads} --out {output} > {log} 2>&1"
