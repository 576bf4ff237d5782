localrules:
    water_potential,


rule reference:
    """Velocity-Verlet reference trajectory of a few-body system at the small step."""
    output:
        "results/{system}/reference.npz",
    log:
        "results/logs/reference/{system}.log",
    benchmark:
        "results/benchmarks/reference/{system}.tsv"
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
    """One LAMMPS reference run of an atomistic system: NPT equilibration, then NVE frames."""
    output:
        "results/{system}/reference/run{run}.extxyz",
    log:
        "results/logs/md_reference/{system}_run{run}.log",
    benchmark:
        "results/benchmarks/md_reference/{system}_run{run}.tsv"
    wildcard_constraints:
        system=LAMMPS_LJ_SYSTEMS,
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


rule water_equilibrate:
    """q-TIP4P/f liquid at the experimental density, Langevin NVT from a lattice at 300 K."""
    output:
        "results/{system}/reference/equilibrated.extxyz",
    log:
        "results/logs/water_equilibrate/{system}.log",
    benchmark:
        "results/benchmarks/water_equilibrate/{system}.tsv"
    wildcard_constraints:
        system=WATER_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=600,
    params:
        config=lambda w: water_run_settings(
            w.system, "physics", "box", "equilibration", "reference"
        ),
    shell:
        "actionmd water-equilibrate --config {params.config:q} --threads {threads} "
        "--out {output} > {log} 2>&1"


rule water_state_point:
    """One state point: the equilibrated cell rescaled, Langevin NVT, then NVE frames."""
    input:
        "results/{system}/reference/equilibrated.extxyz",
    output:
        "results/{system}/reference/V{volume}_T{temperature}.extxyz",
    log:
        "results/logs/water_state_point/{system}_V{volume}_T{temperature}.log",
    benchmark:
        "results/benchmarks/water_state_point/{system}_V{volume}_T{temperature}.tsv"
    wildcard_constraints:
        system=WATER_SYSTEMS,
        volume=r"[0-9]+\.[0-9]+",
        temperature=r"[0-9]+",
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=1440,
    params:
        config=lambda w: water_run_settings(w.system, "physics", "reference"),
    shell:
        "actionmd water-state-point --config {params.config:q} --volume {wildcards.volume} "
        "--temperature {wildcards.temperature} --initial {input} --threads {threads} "
        "--out {output} > {log} 2>&1"


rule water_potential:
    """q-TIP4P/f with the configured Ewald parameters as a metatomic model, for other engines."""
    output:
        "results/{system}/qtip4pf.pt",
    log:
        "results/logs/water_potential/{system}.log",
    wildcard_constraints:
        system=WATER_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    params:
        config=lambda w: settings(w.system, "physics"),
    shell:
        "actionmd export-qtip4pf --config {params.config:q} --out {output} > {log} 2>&1"
