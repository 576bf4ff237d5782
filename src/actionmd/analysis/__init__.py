"""Analyses and figures: shared plotting (:mod:`.plotting`) and statistics
(:mod:`.observables`), the cost-accuracy frontier (:mod:`.frontier`), and one module per
paper figure or table.
"""
