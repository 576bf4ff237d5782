"""The paper's method, independent of any system.

Pairs of states one long step apart (:mod:`.pairing`), the implicit midpoint
solve of the generating-function map (:mod:`.fixed_point`), the direct and
symplectic long-step integrators built on it (:mod:`.integrators`), random
rotations for training (:mod:`.augmentation`) and the choice of device
(:mod:`.device`).
"""
