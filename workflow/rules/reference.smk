localrules:
    water_potential,
    toy_potential,


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


# --- crystals driven by a reference ML potential (GeTe, aluminium) ---


rule toy_potential:
    """The tiny Morse metatomic model standing in for PET-MAD in tests and the test preset."""
    output:
        "results/potentials/toy.pt",
    log:
        "results/logs/toy_potential.log",
    conda:
        "../../envs/actionmd.yaml"
    shell:
        "actionmd export-toy-potential --out {output} > {log} 2>&1"


rule mlip_ramp:
    """NPT heating and cooling ramps with the reference potential, collecting the structures."""
    input:
        unpack(reference_potential),
    output:
        "results/{system}/reference/ramp.extxyz",
    log:
        "results/logs/mlip_ramp/{system}.log",
    wildcard_constraints:
        system=MLIP_SYSTEMS,
    # between-workflow cache (snakemake --cache): Snakemake refuses a benchmark on cached rules
    cache: True
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        gpu=potential_gpu,
    params:
        config=lambda w: mlip_settings(w.system),
        potential=potential_argument,
    shell:
        "actionmd mlip-ramp --system {wildcards.system} --config {params.config:q} "
        "{params.potential} --threads {threads} --out {output} > {log} 2>&1"


rule mlip_structure:
    """One structure of the ramps: Langevin NVT at its temperature, then NVE frames (the data)."""
    input:
        unpack(reference_potential),
        ramp="results/{system}/reference/ramp.extxyz",
    output:
        "results/{system}/reference/{leg}_T{temperature}.extxyz",
    log:
        "results/logs/mlip_structure/{system}_{leg}_T{temperature}.log",
    benchmark:
        "results/benchmarks/mlip_structure/{system}_{leg}_T{temperature}.tsv"
    wildcard_constraints:
        system=MLIP_SYSTEMS,
        leg="heat|cool",
        temperature=r"[0-9]+",
    # the data -> training -> ML rollouts chain is the critical path: before the reference rollouts
    priority: 1
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        gpu=potential_gpu,
    params:
        config=lambda w: mlip_settings(w.system),
        potential=potential_argument,
    shell:
        "actionmd mlip-structure --system {wildcards.system} --config {params.config:q} "
        "--leg {wildcards.leg} --temperature {wildcards.temperature} --ramp {input.ramp} "
        "{params.potential} --threads {threads} --out {output} > {log} 2>&1"


rule mlip_quench:
    """GeTe: samples of the liquid quenched to the rollout temperature (the rollouts' initial states)."""
    input:
        unpack(reference_potential),
        ramp="results/{system}/reference/ramp.extxyz",
    output:
        "results/{system}/reference/quenched.extxyz",
    log:
        "results/logs/mlip_quench/{system}.log",
    benchmark:
        "results/benchmarks/mlip_quench/{system}.tsv"
    wildcard_constraints:
        system=GETE_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        gpu=potential_gpu,
    params:
        config=lambda w: settings(
            w.system, "name", "physics", "reference", "quench", "rollout", "potential"
        ),
        potential=potential_argument,
    shell:
        "actionmd mlip-quench --system {wildcards.system} --config {params.config:q} "
        "--ramp {input.ramp} {params.potential} --threads {threads} --out {output} > {log} 2>&1"
