"""actionmd: learning the action for long-time-step molecular dynamics.

The package holds all logic of the workflow that reproduces Bigi, Spies and
Ceriotti, "Learning the action for long-time-step simulations of molecular
dynamics" (arXiv 2508.01068). Snakemake rules only call into it.
"""

__version__ = "0.1.0"
