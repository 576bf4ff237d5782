"""Reference potentials and engines.

Named reference potentials (metatomic models such as PET-MAD, EAM, any ASE
calculator, the toy Morse model: :mod:`.reference`), LAMMPS (:mod:`.lammps`,
argon's Lennard-Jones runs :mod:`.lammps_lj`), q-TIP4P/f water
(:mod:`.qtip4pf`, as a metatomic model :mod:`.qtip4pf_metatomic`), the toy
Morse model (:mod:`.toy`) and the metatomic energy output they share
(:mod:`.metatomic_energy`).
"""
