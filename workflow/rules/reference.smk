rule reference:
    output:
        "results/{system}/reference.npz",
    log:
        "results/logs/reference/{system}.log",
    benchmark:
        "results/benchmarks/reference/{system}.tsv"
    """Velocity-Verlet reference trajectory of a few-body system at the small step."""
    wildcard_constraints:
        system=FEW_BODY_SYSTEMS,
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


rule md_reference:
    output:
        "results/{system}/reference/run{run}.extxyz",
    log:
        "results/logs/md_reference/{system}_run{run}.log",
    benchmark:
        "results/benchmarks/md_reference/{system}_run{run}.tsv"
    """One LAMMPS reference run of an atomistic system: NPT equilibration, then NVE frames."""
    wildcard_constraints:
        system=ATOMISTIC_SYSTEMS,
        run=r"[0-9]+",
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        config=lambda w: settings(w.system, "physics", "reference"),
        workdir="results/{system}/reference/.run{run}",
    shell:
        "actionmd md-reference --config {params.config:q} --run {wildcards.run} "
        "--workdir {params.workdir} --out {output} > {log} 2>&1"
