localrules:
    figure,
    md_figure,
    water_figure,
    gete_figure,
    aluminium_figure,
    frontier,


rule figure:
    """The paper's figure for a system (PDF for print, PNG for the report)."""
    input:
        rollout_files,
    output:
        pdf="figures/{system}.pdf",
        png=report(
            "figures/{system}.png",
            caption="../report/figure.rst",
            category="{system}",
            labels={"system": "{system}", "type": "figure"},
        ),
    log:
        "results/logs/figure/{system}.log",
    benchmark:
        "results/benchmarks/figure/{system}.tsv"
    wildcard_constraints:
        system=FEW_BODY_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    shell:
        "actionmd figure --system {wildcards.system} --pdf {output.pdf} --png {output.png} "
        "{input} > {log} 2>&1"


rule md_figure:
    """Total energy and kinetic temperature vs time of every rollout (paper Fig. 5 for argon)."""
    input:
        rollout_files,
    output:
        pdf="figures/{system}.pdf",
        png=report(
            "figures/{system}.png",
            caption="../report/md_figure.rst",
            category="{system}",
            labels={"system": "{system}", "type": "figure"},
        ),
    log:
        "results/logs/md_figure/{system}.log",
    benchmark:
        "results/benchmarks/md_figure/{system}.tsv"
    wildcard_constraints:
        system=LAMMPS_LJ_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    shell:
        "actionmd md-figure --system {wildcards.system} --pdf {output.pdf} --png {output.png} {input} > {log} 2>&1"


rule water_figure:
    """Paper Fig. 2: conserved-quantity drift, T_O and T_H, g_OO(r), O mean-square displacement."""
    input:
        rollout_files,
    output:
        pdf="figures/{system}.pdf",
        png=report(
            "figures/{system}.png",
            caption="../report/water_figure.rst",
            category="{system}",
            labels={"system": "{system}", "type": "figure"},
        ),
    log:
        "results/logs/water_figure/{system}.log",
    benchmark:
        "results/benchmarks/water_figure/{system}.tsv"
    wildcard_constraints:
        system=WATER_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    params:
        config=lambda w: settings(w.system, "analysis"),
    shell:
        "actionmd md-figure --system {wildcards.system} --config {params.config:q} "
        "--pdf {output.pdf} --png {output.png} {input} > {log} 2>&1"


rule gete_figure:
    """GeTe (Fig. 3): potential energy vs log time over the quenches, T_Ge - T_Te per method."""
    input:
        rollout_files,
    output:
        pdf=report(
            "figures/{system}.pdf",
            caption="../report/gete_figure.rst",
            category="{system}",
            labels={"system": "{system}", "type": "figure (pdf)"},
        ),
        png="figures/{system}.png",
    log:
        "results/logs/gete_figure/{system}.log",
    benchmark:
        "results/benchmarks/gete_figure/{system}.tsv"
    wildcard_constraints:
        system=GETE_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    shell:
        "actionmd gete-figure --pdf {output.pdf} --png {output.png} {input} > {log} 2>&1"


rule aluminium_figure:
    """Aluminium (Table 1 as a figure): V per atom and T against time per method, the table below."""
    input:
        rollout_files,
    output:
        pdf=report(
            "figures/{system}.pdf",
            caption="../report/aluminium_figure.rst",
            category="{system}",
            labels={"system": "{system}", "type": "figure (pdf)"},
        ),
        png="figures/{system}.png",
    log:
        "results/logs/aluminium_figure/{system}.log",
    benchmark:
        "results/benchmarks/aluminium_figure/{system}.tsv"
    wildcard_constraints:
        system=ALUMINIUM_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    params:
        config=lambda w: settings(w.system, "analysis"),
    shell:
        "actionmd aluminium-figure --config {params.config:q} --pdf {output.pdf} "
        "--png {output.png} {input} > {log} 2>&1"


rule frontier:
    """Cost-accuracy frontier: drift and equipartition error against wall time per simulated ps."""
    input:
        metrics_table,
    output:
        pdf="figures/{system}_frontier.pdf",
        png=report(
            "figures/{system}_frontier.png",
            caption="../report/frontier.rst",
            category="{system}",
            labels={"system": "{system}", "type": "cost-accuracy frontier"},
        ),
    log:
        "results/logs/frontier/{system}.log",
    wildcard_constraints:
        system=ATOMISTIC_SYSTEMS,
    conda:
        "../../envs/actionmd.yaml"
    shell:
        "actionmd frontier --system {wildcards.system} --metrics {input} "
        "--pdf {output.pdf} --png {output.png} > {log} 2>&1"
