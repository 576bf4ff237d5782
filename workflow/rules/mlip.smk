localrules:
    toy_potential,
    gete_analysis,
    aluminium_analysis,


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
        mem_mb=4000,
        runtime=1440,
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
        mem_mb=4000,
        runtime=1440,
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
        system="gete",
    conda:
        "../../envs/actionmd.yaml"
    threads: 1
    resources:
        gpu=potential_gpu,
        mem_mb=4000,
        runtime=1440,
    params:
        config=lambda w: settings(
            w.system, "name", "physics", "reference", "quench", "rollout", "potential"
        ),
        potential=potential_argument,
    shell:
        "actionmd mlip-quench --system {wildcards.system} --config {params.config:q} "
        "--ramp {input.ramp} {params.potential} --threads {threads} --out {output} > {log} 2>&1"


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
        gpu=mlip_rollout_gpu,
        mem_mb=4000,
        runtime=1440,
    params:
        config=md_rollout_settings,
        models=model_arguments,
        potential=potential_argument,
    shell:
        "actionmd mlip-rollout --system {wildcards.system} --method {wildcards.method} "
        "--run {wildcards.run} --config {params.config:q} --initial {input.initial} "
        "{params.models} {params.potential} --threads {threads} --out {output} > {log} 2>&1"


rule gete_analysis:
    """GeTe (Fig. 3): potential energy vs log time over the quenches, T_Ge - T_Te per method."""
    input:
        mlip_rollout_files,
    output:
        csv=report(
            "results/{system}/metrics.csv",
            caption="../report/gete_metrics.rst",
            category="{system}",
            labels={"system": "{system}", "type": "metrics table"},
        ),
        pdf=report(
            "figures/{system}.pdf",
            caption="../report/gete_figure.rst",
            category="{system}",
            labels={"system": "{system}", "type": "figure (pdf)"},
        ),
        png="figures/{system}.png",
    log:
        "results/logs/gete_analysis/{system}.log",
    wildcard_constraints:
        system="gete",
    conda:
        "../../envs/actionmd.yaml"
    shell:
        "actionmd gete-analysis --csv {output.csv} --pdf {output.pdf} --png {output.png} "
        "{input} > {log} 2>&1"


rule aluminium_analysis:
    """Aluminium (Table 1): mean T and V with error bars, wall time per 100 ps, speedup."""
    input:
        mlip_rollout_files,
    output:
        csv=report(
            "results/{system}/table1.csv",
            caption="../report/aluminium_table.rst",
            category="{system}",
            labels={"system": "{system}", "type": "Table 1"},
        ),
        pdf=report(
            "figures/{system}.pdf",
            caption="../report/aluminium_figure.rst",
            category="{system}",
            labels={"system": "{system}", "type": "figure (pdf)"},
        ),
        png="figures/{system}.png",
    log:
        "results/logs/aluminium_analysis/{system}.log",
    wildcard_constraints:
        system="aluminium",
    conda:
        "../../envs/actionmd.yaml"
    params:
        config=lambda w: settings(w.system, "analysis"),
    shell:
        "actionmd aluminium-analysis --config {params.config:q} --csv {output.csv} "
        "--pdf {output.pdf} --png {output.png} {input} > {log} 2>&1"
