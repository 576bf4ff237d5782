localrules:
    metrics,


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
    conda:
        "../../envs/actionmd.yaml"
    shell:
        "actionmd metrics --out {output} {input} > {log} 2>&1"
