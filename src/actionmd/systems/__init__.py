"""One module per paper system (few-body systems: :mod:`actionmd.fewbody.steps`), each
supplying what differs: the reference data, the initial state, the rollout's ensemble.

:mod:`.argon` (Fig. 5, LAMMPS Lennard-Jones, NVE), :mod:`.water` (Fig. 2, q-TIP4P/f,
NVT), :mod:`.crystals` (GeTe, Fig. 3, NVT, and aluminium, Table 1, NPT, driven by a
reference ML potential).
"""
