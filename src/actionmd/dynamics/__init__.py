"""Ensembles around any long-step map or the reference integrator.

Thermostat (SVR, OBABO split, velocity Verlet as a map: :mod:`.thermostat`),
barostat (:mod:`.barostat`), the loop that applies a stepper and saves frames
(:mod:`.stepping`), kinetic energy, temperatures and the conserved quantity
(:mod:`.energy`), and the state-point protocol (Langevin NVT, then NVE frames)
of every reference data set (:mod:`.state_point`).
"""
