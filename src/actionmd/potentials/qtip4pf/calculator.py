"""ASE calculator for q-TIP4P/f water: energy (eV), forces (eV/A) and stress (eV/A^3) of a periodic box.

Atoms ordered O H H per molecule, positions in A, an orthorhombic cell periodic in all three
directions. The energy and forces come from :meth:`QTIP4PF.energy_forces` (numpy, analytic
forces); the stress, only when asked, from :meth:`QTIP4PF.energy_forces_stress` (autograd).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from actionmd.potentials.qtip4pf.model import QTIP4PF


class QTIP4PFCalculator(Calculator):
    """ASE calculator for q-TIP4P/f (energy eV, forces eV/A, stress eV/A^3); atoms O H H per molecule.

    Requires a periodic orthorhombic cell (``pbc`` all True). Keyword arguments other than
    ASE's are passed to :class:`QTIP4PF` (``ewald_cutoff``, ``smearing``, ``lr_wavelength``, ...).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model: QTIP4PF | None = None, **kwargs) -> None:
        model_keys = {"ewald_cutoff", "smearing", "lr_wavelength", "parameters", "skin", "n_threads"}
        model_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in model_keys}
        super().__init__(**kwargs)
        self.model = model or QTIP4PF(**model_kwargs)

    def calculate(self, atoms: Atoms | None = None, properties=("energy",), system_changes=all_changes) -> None:
        """Compute the requested properties (stress only when asked: it costs a second graph)."""
        super().calculate(atoms, properties, system_changes)
        if not np.all(self.atoms.pbc):
            raise ValueError(f"q-TIP4P/f needs a cell periodic in all three directions, got pbc={self.atoms.pbc}")
        args = (self.atoms.positions, np.asarray(self.atoms.cell), self.atoms.numbers)
        if "stress" in properties:
            energy, forces, stress = self.model.energy_forces_stress(*args)
            self.results["stress"] = stress.reshape(9)[[0, 4, 8, 5, 2, 1]]
        else:
            energy, forces = self.model.energy_forces(*args)
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["forces"] = forces
