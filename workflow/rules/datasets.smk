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
    wildcard_constraints:
        system=FEW_BODY_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        runtime=30,
    params:
        config=lambda w: settings(w.system, "pairing"),
    shell:
        "actionmd dataset --kind {wildcards.kind} --trajectory {input} "
        "--config {params.config:q} --out {output} > {log} 2>&1"


rule md_dataset:
    """metatrain datasets of both models, split by run (state point); the rollouts' initial states."""
    input:
        unpack(md_dataset_inputs),
    output:
        datasets=expand("results/{{system}}/datasets/{name}", name=MD_DATASETS),
        initial="results/{system}/datasets/initial.extxyz",
    log:
        "results/logs/md_dataset/{system}.log",
    benchmark:
        "results/benchmarks/md_dataset/{system}.tsv"
    wildcard_constraints:
        system=ATOMISTIC_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        runtime=30,
    params:
        config=md_dataset_settings,
        out_dir=lambda w, output: Path(output.initial).parent,
        extra=md_dataset_extra,
    shell:
        "actionmd md-dataset --system {wildcards.system} --config {params.config:q} "
        "--out-dir {params.out_dir} {params.extra} {input.runs} > {log} 2>&1"
