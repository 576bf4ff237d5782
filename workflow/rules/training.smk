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
    wildcard_constraints:
        system=FEW_BODY_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        gpu=1,
        runtime=240,
    params:
        config=lambda w: settings(w.system, "training", "device", "physics"),
        checkpoint="results/{system}/models/{kind}.ckpt",
    shell:
        "actionmd train --kind {wildcards.kind} --dataset {input} --config {params.config:q} "
        "--checkpoint {params.checkpoint} --threads {threads} --out {output} > {log} 2>&1"


rule md_train:
    """Train and export a FlashMD model with metatrain (mtt train / mtt export); resumes."""
    input:
        lambda w: expand(
            "results/{system}/datasets/{kind}_{split}.extxyz",
            system=w.system,
            kind=w.kind,
            split=["train", "val"],
        ),
    output:
        "results/{system}/models/{kind}.pt",
    log:
        "results/logs/md_train/{system}_{kind}.log",
    benchmark:
        "results/benchmarks/md_train/{system}_{kind}.tsv"
    wildcard_constraints:
        system=ATOMISTIC_SYSTEMS,
    # on the critical path (data -> training -> ML rollouts): before reference rollouts that can wait
    priority: 1
    conda:
        "../../envs/actionmd.yaml"
    threads: training_threads
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=720,
    params:
        config=training_settings,
        datasets="results/{system}/datasets",
        workdir="results/{system}/training/{kind}",
    shell:
        "actionmd md-train --kind {wildcards.kind} --config {params.config:q} "
        "--datasets {params.datasets} --workdir {params.workdir} --threads {threads} "
        "--out {output} > {log} 2>&1"


rule md_model_errors:
    """Validation RMSE of both exported models per species and target, and how odd in p S is."""
    input:
        direct="results/{system}/models/direct.pt",
        symplectic="results/{system}/models/symplectic.pt",
        direct_val="results/{system}/datasets/direct_val.extxyz",
        symplectic_val="results/{system}/datasets/symplectic_val.extxyz",
    output:
        report(
            "results/{system}/training/summary.csv",
            caption="../report/model_errors.rst",
            category="{system}",
            labels={"system": "{system}", "type": "validation errors"},
        ),
    log:
        "results/logs/md_model_errors/{system}.log",
    benchmark:
        "results/benchmarks/md_model_errors/{system}.tsv"
    wildcard_constraints:
        system=ATOMISTIC_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        gpu=0,
        runtime=30,
    shell:
        "actionmd md-model-errors --direct {input.direct} --direct-val {input.direct_val} "
        "--symplectic {input.symplectic} --symplectic-val {input.symplectic_val} "
        "--threads {threads} --out {output} > {log} 2>&1"
