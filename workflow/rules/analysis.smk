localrules:
    metrics,
    md_metrics,
    water_metrics,
    gete_metrics,
    aluminium_metrics,


rule metrics:
    """Energy error, drift, final position error and wall time of every rollout."""
    input:
        rollout_files,
    output:
        report(
            "results/{system}/metrics.csv",
            caption="../report/metrics.rst",
            category="{system}",
            labels={"system": "{system}", "type": "metrics table"},
        ),
    log:
        "results/logs/metrics/{system}.log",
    benchmark:
        "results/benchmarks/metrics/{system}.tsv"
    wildcard_constraints:
        system=FEW_BODY_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    shell:
        "actionmd metrics --out {output} {input} > {log} 2>&1"


rule md_metrics:
    """Energy and temperature drift, and wall time per simulated ps, of every rollout."""
    input:
        rollout_files,
    output:
        report(
            "results/{system}/metrics.csv",
            caption="../report/md_metrics.rst",
            category="{system}",
            labels={"system": "{system}", "type": "metrics table"},
        ),
    log:
        "results/logs/md_metrics/{system}.log",
    benchmark:
        "results/benchmarks/md_metrics/{system}.tsv"
    wildcard_constraints:
        system=LAMMPS_LJ_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    shell:
        "actionmd md-metrics --system {wildcards.system} --out {output} {input} > {log} 2>&1"


rule water_metrics:
    """Drift of the conserved quantity, T_O and T_H, g_OO peak, diffusion and cost of every rollout."""
    input:
        rollout_files,
    output:
        report(
            "results/{system}/metrics.csv",
            caption="../report/water_metrics.rst",
            category="{system}",
            labels={"system": "{system}", "type": "metrics table"},
        ),
    log:
        "results/logs/water_metrics/{system}.log",
    benchmark:
        "results/benchmarks/water_metrics/{system}.tsv"
    wildcard_constraints:
        system=WATER_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    params:
        config=lambda w: settings(w.system, "analysis"),
    shell:
        "actionmd md-metrics --system {wildcards.system} --config {params.config:q} "
        "--out {output} {input} > {log} 2>&1"


rule gete_metrics:
    """GeTe (Fig. 3): temperature, T_Ge - T_Te, final potential energy and cost per method, over the quenches."""
    input:
        rollout_files,
    output:
        report(
            "results/{system}/metrics.csv",
            caption="../report/gete_metrics.rst",
            category="{system}",
            labels={"system": "{system}", "type": "metrics table"},
        ),
    log:
        "results/logs/gete_metrics/{system}.log",
    benchmark:
        "results/benchmarks/gete_metrics/{system}.tsv"
    wildcard_constraints:
        system=GETE_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    shell:
        "actionmd gete-metrics --out {output} {input} > {log} 2>&1"


rule aluminium_metrics:
    """Aluminium (Table 1): mean T and V with error bars, wall time per 100 ps, speedup."""
    input:
        rollout_files,
    output:
        report(
            "results/{system}/table1.csv",
            caption="../report/aluminium_table.rst",
            category="{system}",
            labels={"system": "{system}", "type": "Table 1"},
        ),
    log:
        "results/logs/aluminium_metrics/{system}.log",
    benchmark:
        "results/benchmarks/aluminium_metrics/{system}.tsv"
    wildcard_constraints:
        system=ALUMINIUM_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    params:
        config=lambda w: settings(w.system, "analysis"),
    shell:
        "actionmd aluminium-metrics --config {params.config:q} --out {output} {input} > {log} 2>&1"
