# actionmd: regenerate every figure and table of "Learning the action for
# long-time-step simulations of molecular dynamics" (Bigi, Spies, Ceriotti).
#
#   snakemake --cores 8 figures/one_body.pdf          # one figure, demo scale
#   snakemake --cores 8 figures/argon.pdf             # LAMMPS + metatrain pipeline (Fig. 5)
#   snakemake --cores 8 results/aluminium/table1.csv  # Table 1 with the EAM reference (offline)
#   snakemake --cores 8 all --config preset=paper     # the SI protocol (targets before --config)
#   snakemake --profile profiles/slurm all --config preset=paper
#
# The chain per system: reference MD -> paired datasets -> trained models
# (direct, symplectic) -> rollouts at several iteration counts -> metrics ->
# figure. All logic lives in the `actionmd` package (src/actionmd).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/rollouts.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/figures.smk"


localrules:
    all,


rule all:
    default_target: True
    input:
        all_targets(),
