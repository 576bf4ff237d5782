localrules:
    figure,


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
    conda:
        "../../envs/actionmd.yaml"
    shell:
        "actionmd figure --system {wildcards.system} --pdf {output.pdf} --png {output.png} "
        "{input} > {log} 2>&1"
