"""The q-TIP4P/f flexible water model (Habershon, Markland, Manolopoulos, J. Chem. Phys. 131, 024501, 2009).

Energy and forces of periodic liquid water, as the paper used it through i-PI's driver
(``i-pi-driver -m qtip4pf``). Atoms are ordered O H H per molecule and the cell is
orthorhombic. Units: positions and lengths A, energies eV, forces eV/A, stress eV/A^3,
charges e, masses u.

The energy is the sum of four terms:

* O-H stretch (quartic expansion of a Morse potential) per bond,
  ``V = D_r [a^2 dr^2 - a^3 dr^3 + (7/12) a^4 dr^4]`` with ``dr = r_OH - r_eq``;
* H-O-H bend ``V = (k_theta / 2) (theta - theta_eq)^2`` per molecule;
* O-O Lennard-Jones ``4 eps [(sigma/r)^12 - (sigma/r)^6]`` between different molecules
  (and periodic images), truncated at 9 A without shift and without tail correction;
* Coulomb between point charges q_H on each H and q_M on the massless site
  ``M = gamma O + (1 - gamma)/2 (H1 + H2)``, by Ewald summation over all charges with the
  three intramolecular pairs (H1-H2, H1-M, H2-M) excluded. Interactions of a molecule with
  its own periodic images are kept (they are intermolecular). The Ewald sum uses tin-foil
  boundary conditions (k = 0 term dropped); the cell is neutral, so no background term.

The exclusion is done by subtracting the bare Coulomb energy ``k_e q_i q_j / r_ij`` of each
excluded pair from the Ewald energy of all charges: the Ewald sum counts exactly that for a
pair of the same cell (erfc part in real space + erf part in reciprocal space), and the
self-energy of each Gaussian is removed by torch-pme itself.

The energy is written as a function of the O and H positions only (the M site and the
minimum-image intramolecular vectors are functions of them), so that forces ``F = -dE/dx``
redistribute the force on M onto O and the H atoms with the weights
``gamma, (1 - gamma)/2, (1 - gamma)/2``. Everything is float64.

Two implementations of the same energy: :meth:`QTIP4PF.energy_terms` in torch (torch-pme's
Ewald sum, differentiable, used for the stress by autograd), and the fast path behind
:meth:`QTIP4PF.energy_forces`, :meth:`QTIP4PF.energy_forces_batch` and
:meth:`QTIP4PF.energy_breakdown`: numpy with analytic forces, the same real-space pairs
(vesin), and the reciprocal sum over the same k vectors taken over half of them
(:class:`.ewald.ReciprocalSum`). The two agree to ~1e-14 relative (tested to 1e-9).

Constants: 1 kcal/mol = 0.0433641043 eV; Coulomb constant k_e = torchpme.prefactors.eV_A
= 14.399645478425667 eV A / e^2.

Modules: the parameters, units and input checks (:mod:`.parameters`), the differentiable
energy terms in torch (:mod:`.terms`), the fast path's reciprocal sum, k vectors and pair
helpers (:mod:`.ewald`), the model (:mod:`.model`), the ASE calculator (:mod:`.calculator`)
and the water box builder (:mod:`.box`). Every public name is re-exported here.
"""

from __future__ import annotations

from actionmd.potentials.qtip4pf.box import AVOGADRO, WATER_MOLAR_MASS, cubic_box_length, water_box, water_molecule
from actionmd.potentials.qtip4pf.calculator import QTIP4PFCalculator
from actionmd.potentials.qtip4pf.ewald import kvector_indices
from actionmd.potentials.qtip4pf.model import QTIP4PF
from actionmd.potentials.qtip4pf.parameters import (
    COULOMB_EV_A,
    KCAL_MOL_TO_EV,
    QTIP4PFParameters,
    check_atoms,
    orthorhombic_lengths,
)
from actionmd.potentials.qtip4pf.terms import (
    bend_angle,
    bend_energy,
    charge_sites,
    excluded_coulomb_energy,
    intramolecular_vectors,
    lennard_jones_energy,
    minimum_image,
    pair_distances,
    stretch_energy,
    total_dipole,
)

__all__ = [
    "AVOGADRO",
    "COULOMB_EV_A",
    "KCAL_MOL_TO_EV",
    "QTIP4PF",
    "WATER_MOLAR_MASS",
    "QTIP4PFCalculator",
    "QTIP4PFParameters",
    "bend_angle",
    "bend_energy",
    "charge_sites",
    "check_atoms",
    "cubic_box_length",
    "excluded_coulomb_energy",
    "intramolecular_vectors",
    "kvector_indices",
    "lennard_jones_energy",
    "minimum_image",
    "orthorhombic_lengths",
    "pair_distances",
    "stretch_energy",
    "total_dipole",
    "water_box",
    "water_molecule",
]
