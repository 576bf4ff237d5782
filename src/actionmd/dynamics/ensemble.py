"""One stepper factory for the three ensembles, around any long-step map or the reference integrator.

As i-PI's ``Dynamics(mode=nve|nvt|npt)``: the inner map (a learned long step, or
velocity Verlet with the reference potential) is bound to a thermostat and, for NPT, a
barostat, in one symmetric split:

* NVE: the map itself;
* NVT: OBABO, half a stochastic-velocity-rescaling step on each side of the map
  (:class:`actionmd.dynamics.thermostat.OBABOIntegrator`); the stepper's
  ``thermostat_work`` (eV) is the energy the thermostat added;
* NPT: the isotropic barostat around the NVT split
  (:class:`actionmd.dynamics.barostat.NPTIntegrator`), which also reports the cell,
  volume, potential energy and its own conserved quantity every step.

The conserved quantity of every ensemble is :func:`actionmd.dynamics.energy.conserved_quantity`.
Times in fs, masses in u.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from actionmd.dynamics.barostat import IsotropicBarostat, NPTIntegrator
from actionmd.dynamics.thermostat import LongStepMap, OBABOIntegrator, SVRThermostat

ENSEMBLES = ("nve", "nvt", "npt")


def stepper(
    inner: LongStepMap | None,
    masses: np.ndarray,
    dt: float | None = None,
    thermostat: SVRThermostat | None = None,
    barostat: IsotropicBarostat | None = None,
    cell: np.ndarray | None = None,
    evaluate: Callable | None = None,
    set_cell: Callable[[np.ndarray], Any] | None = None,
) -> Any:
    """The ensemble's stepper around ``inner`` (a map with ``step(q, p)``), stepping ``dt`` fs at a time.

    NVE without a thermostat; NVT with one; NPT with a barostat too, which then needs the
    initial ``cell`` (A), the reference potential ``evaluate(q, cell) -> (energy, forces,
    stress)`` and, for a learned inner map that sees the cell, ``set_cell``. NPT with
    ``inner`` None integrates with the barostat's own velocity Verlet (drift and dilation in
    one flow).
    """
    if barostat is not None:
        if thermostat is None or dt is None or cell is None or evaluate is None:
            raise ValueError("an NPT rollout needs a thermostat, the step dt, the cell and the reference potential")
        return NPTIntegrator(masses, cell, evaluate, barostat, thermostat, dt, inner, set_cell)
    if inner is None:
        raise ValueError("NVE and NVT rollouts need an inner map")
    if thermostat is None:
        return inner
    if dt is None:
        raise ValueError("an NVT rollout needs the long step (fs) for its thermostat")
    return OBABOIntegrator(inner, thermostat, dt, masses)
