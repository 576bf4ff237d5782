"""Constant pressure around long-step maps: an isotropic stochastic barostat (NPT).

The barostat is the isotropic one of Bussi, Zykova-Timan and Parrinello
(J. Chem. Phys. 130, 074101, 2009) in the form i-PI implements ("BZP"), which
the paper's SI cites: the cell has a strain eps (V = V_0 exp(3 eps)) with a
momentum p_eps and a mass W = 3 N k_B T tau^2, the strain momentum feels the pressure difference,

    dp_eps/dt = 3 V (P_int - P_ext) + 3 k_B T,      deps/dt = v = p_eps / W,

and a Langevin thermostat with time constant ``cell_tau`` acts on p_eps. Atoms
follow the dilation, dq/dt = p/m + v q, dp/dt = F - v p. P_int is the virial
pressure, (2 K / 3 + V P_conf) / V with P_conf = -trace(stress) / 3 from the
reference potential. The 3 k_B T term (one k_B T per dilation degree of freedom,
as in i-PI) makes the stationary distribution the isothermal-isobaric one,
exp(-(H + P_ext V) / k_B T) dV dq dp. Without thermostats the flow conserves

    H_ext = H(q, p) + P_ext V + p_eps^2 / (2 W) - k_B T ln V,

and with them, H_ext minus the energy the thermostats added (the conserved
quantity reported for every NPT run). Why this barostat: it is the paper's
(SI I.2.4, I.2.6, I.4.6), it is stochastic like the SVR thermostat (fast,
ergodic volume equilibration with no Nose-Hoover oscillations), and, unlike a
cell-rescaling scheme without inertia, its splitting puts the dilation and the
particle map side by side, so any long-step map can stand for the particles.

:class:`NPTIntegrator` is the Trotter splitting, symmetric in time, with O the
SVR thermostat of the particles and the Langevin thermostat of the cell:

* reference MD (no inner map): O - B_eps B - A A_eps - B B_eps - O, velocity
  Verlet in which the drift and the dilation are one exact flow; one force and
  stress evaluation per step, as in i-PI;
* a long-step map M (direct or symplectic model): O - B_eps - A_eps(Dt/2) - M(Dt)
  - A_eps(Dt/2) - B_eps - O (the arrangement of FlashMD's i-PI NPT stepper with
  B_eps outermost, so the stress of the end state serves the next step's first
  kick): one stress evaluation of the reference potential per long step, the
  only call to it.

Units: A, fs (ASE time internally), eV, u, (eV*u)^(1/2) for momenta, bar for the
external pressure, K.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from ase import units

from actionmd.dynamics.energy import KB, kinetic_energy
from actionmd.dynamics.thermostat import LongStepMap, SVRThermostat
from actionmd.io.checkpoint import restore, state_of

Evaluate = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray, np.ndarray]]
"""(positions (N, 3) A, cell (3, 3) A) -> (energy eV, forces (N, 3) eV/A, stress (3, 3) eV/A^3, ASE sign)."""


class UnphysicalState(RuntimeError):
    """The state left the physical range (non-finite, or the cell collapsed or exploded): the run has blown up."""


MAX_VOLUME_CHANGE = 3.0  # a cell that shrank or grew by more than this factor has blown up


class IsotropicBarostat:
    """State of the BZP barostat: strain momentum p_eps (eV * ASE time), mass W (eV * ASE time^2).

    W = 3 N k_B T tau^2, i-PI's convention for the barostat's ``tau``: an ideal gas then
    oscillates in volume with angular frequency sqrt(3) / tau, a solid of bulk modulus B with
    sqrt(9 V B / W) (aluminium, tau = 1 ps: a period of about 200 fs, so a 30 fs long step
    integrates it stably; with (tau / 2 pi)^2 in place of tau^2 the period would be 33 fs and
    the long-step NPT runs blow up). ``cell_tau_fs`` is the Langevin time constant on p_eps
    (``inf``: no thermostat on the cell). ``work`` is the energy (eV) the cell thermostat has
    added so far.
    """

    def __init__(
        self,
        pressure_bar: float,
        temperature: float,
        tau_fs: float,
        cell_tau_fs: float,
        n_atoms: int,
        seed: int | None = None,
    ) -> None:
        if not (temperature > 0 and tau_fs > 0 and cell_tau_fs > 0 and n_atoms > 0):
            raise ValueError("temperature, tau_fs, cell_tau_fs and n_atoms must be positive")
        self.pressure = float(pressure_bar) * units.bar  # eV/A^3
        self.temperature = float(temperature)
        self.tau_fs = float(tau_fs)
        self.cell_tau_fs = float(cell_tau_fs)
        self.mass = 3 * n_atoms * KB * self.temperature * (self.tau_fs * units.fs) ** 2
        self.momentum = 0.0
        self.work = 0.0
        self.rng = np.random.default_rng(seed)

    def checkpoint_state(self) -> dict:
        """p_eps, the cell thermostat's work, the target temperature and the random generator's state."""
        return {
            "momentum": self.momentum,
            "work": self.work,
            "temperature": self.temperature,
            "rng": self.rng.bit_generator.state,
        }

    def restore_state(self, state: dict) -> None:
        self.momentum, self.work, self.temperature = state["momentum"], state["work"], state["temperature"]
        self.rng.bit_generator.state = state["rng"]

    @property
    def kT(self) -> float:
        return KB * self.temperature

    @property
    def velocity(self) -> float:
        """v = deps/dt = p_eps / W, in 1 / ASE time."""
        return self.momentum / self.mass

    @property
    def kinetic_energy(self) -> float:
        """p_eps^2 / 2W (eV)."""
        return 0.5 * self.momentum**2 / self.mass

    def thermostat(self, dt_fs: float) -> None:
        """Exact Ornstein-Uhlenbeck (Langevin) step of p_eps over ``dt_fs``; the energy change goes to ``work``."""
        if math.isinf(self.cell_tau_fs) or dt_fs == 0.0:
            return
        c = math.exp(-dt_fs / self.cell_tau_fs)
        before = self.kinetic_energy
        self.momentum = c * self.momentum + math.sqrt((1 - c * c) * self.mass * self.kT) * self.rng.standard_normal()
        self.work += self.kinetic_energy - before

    def kick(self, dt_fs: float, volume: float, internal_pressure: float) -> None:
        """p_eps += dt * 3 (V (P_int - P_ext) + k_B T); V in A^3, P_int in eV/A^3."""
        self.momentum += dt_fs * units.fs * 3.0 * (volume * (internal_pressure - self.pressure) + self.kT)


def internal_pressure(stress: np.ndarray, kinetic: float, volume: float) -> float:
    """Virial pressure (eV/A^3): 2K / 3V from the momenta plus -trace(stress) / 3 from the potential."""
    return 2.0 * kinetic / (3.0 * volume) - float(np.trace(stress)) / 3.0


class NPTIntegrator:
    """One NPT step of length ``dt_fs``: reference velocity Verlet (``inner`` None) or a long-step map.

    Args:
        masses: (N,) in u.
        cell: the initial (3, 3) cell in A (rows are cell vectors); scaled isotropically.
        evaluate: the reference potential, ``(q, cell) -> (E, F, stress)`` (see :data:`Evaluate`);
            it should cache its last result (the splitting asks for the same state twice).
        barostat: the cell's state and parameters.
        thermostat: SVR on the particles (None: no particle thermostat).
        dt_fs: the step (fs): the MD step, or the long step of ``inner``.
        inner: a long-step map ``step(q, p)`` at fixed cell, or None for velocity Verlet.
        set_cell: called with the new cell before ``inner`` runs (the ML models need it).
        max_volume_change: a cell whose volume changed by more than this factor raises
            :class:`UnphysicalState` (a blown-up run) before the potential is called.

    Bookkeeping after each step: ``cell``, ``volume``, ``potential_energy`` (eV, of the
    current state), ``thermostat_work`` and ``barostat.work`` (eV), :meth:`conserved`.
    """

    def __init__(
        self,
        masses: np.ndarray,
        cell: np.ndarray,
        evaluate: Evaluate,
        barostat: IsotropicBarostat,
        thermostat: SVRThermostat | None,
        dt_fs: float,
        inner: LongStepMap | None = None,
        set_cell: Callable[[np.ndarray], None] | None = None,
        max_volume_change: float = MAX_VOLUME_CHANGE,
    ) -> None:
        cell = np.asarray(cell, dtype=np.float64)
        if np.count_nonzero(cell - np.diag(np.diagonal(cell))):
            raise ValueError("the NPT integrator scales orthorhombic cells only")
        self.masses = np.asarray(masses, dtype=np.float64)
        self.cell = cell.copy()
        self.evaluate = evaluate
        self.barostat = barostat
        self.thermostat = thermostat
        self.dt_fs = float(dt_fs)
        self.inner = inner
        self.set_cell = set_cell
        self.thermostat_work = 0.0
        self.potential_energy = float("nan")
        self.initial_volume = self.volume
        self.max_volume_change = float(max_volume_change)

    @property
    def volume(self) -> float:
        return float(np.linalg.det(self.cell))

    def checkpoint_state(self) -> dict:
        """Cell, works, the barostat's and thermostat's states, the reference potential's call count."""
        return {
            "cell": self.cell.copy(),
            "initial_volume": self.initial_volume,
            "thermostat_work": self.thermostat_work,
            "potential_energy": self.potential_energy,
            "barostat": self.barostat.checkpoint_state(),
            "thermostat": state_of(self.thermostat),
            "inner": state_of(self.inner),
            "calls": getattr(self.evaluate, "calls", None),
        }

    def restore_state(self, state: dict) -> None:
        self.cell = state["cell"].copy()
        self.initial_volume = state["initial_volume"]
        self.thermostat_work = state["thermostat_work"]
        self.potential_energy = state["potential_energy"]
        self.barostat.restore_state(state["barostat"])
        restore(self.thermostat, state["thermostat"])
        restore(self.inner, state["inner"])
        if state["calls"] is not None:
            self.evaluate.calls = state["calls"]
        if self.set_cell is not None:
            self.set_cell(self.cell)

    def _thermostat(self, p: torch.Tensor, dt_fs: float) -> torch.Tensor:
        if self.thermostat is None:
            return p
        p, delta = self.thermostat.apply(p, self.masses, dt_fs)
        self.thermostat_work += float(delta)
        return p

    def _evaluate(self, q: torch.Tensor, p: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Forces and stress of (q, cell), after checking the state is physical (:class:`UnphysicalState`)."""
        ratio = self.volume / self.initial_volume
        finite = bool(torch.isfinite(q).all() and torch.isfinite(p).all())
        if not (finite and 1 / self.max_volume_change < ratio < self.max_volume_change):
            raise UnphysicalState(f"volume {ratio:.3g} x the initial one, or a non-finite state")
        energy, forces, stress = self.evaluate(q.numpy(), self.cell)
        self.potential_energy = float(energy)
        return forces, stress

    def _kick_cell(self, p: torch.Tensor, stress: np.ndarray, dt_fs: float) -> None:
        """B_eps over dt_fs with the potential's ``stress`` and the kinetic pressure of ``p``."""
        kin = float(kinetic_energy(p, self.masses))
        self.barostat.kick(dt_fs, self.volume, internal_pressure(stress, kin, self.volume))

    def _dilate(self, q: torch.Tensor, p: torch.Tensor, dt_fs: float, drift: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact flow of dq/dt = v q (+ p/m if ``drift``), dp/dt = -v p, cell scaled by exp(v dt)."""
        x = self.barostat.velocity * dt_fs * units.fs
        grow = math.exp(x)
        if drift:
            h = dt_fs * units.fs * (math.sinh(x) / x if x != 0.0 else 1.0)
            q = grow * q + h * p / torch.as_tensor(self.masses)[:, None]
        else:
            q = grow * q
        self.cell = grow * self.cell
        return q, p / grow

    def step(self, q: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance (q, p) (float64 CPU tensors (N, 3), A and (eV*u)^(1/2)) and the cell by ``dt_fs``."""
        half = 0.5 * self.dt_fs
        baro = self.barostat
        p = self._thermostat(p, half)
        baro.thermostat(half)
        forces, stress = self._evaluate(q, p)  # the previous step's end state: cached
        self._kick_cell(p, stress, half)
        if self.inner is None:
            h = half * units.fs
            p = p + h * torch.from_numpy(forces)
            q, p = self._dilate(q, p, self.dt_fs, drift=True)
            forces, stress = self._evaluate(q, p)
            p = p + h * torch.from_numpy(forces)
        else:
            q, p = self._dilate(q, p, half, drift=False)
            if self.set_cell is not None:
                self.set_cell(self.cell)
            q, p = self.inner.step(q, p)
            q, p = self._dilate(q, p, half, drift=False)
            _, stress = self._evaluate(q, p)
        self._kick_cell(p, stress, half)
        baro.thermostat(half)
        p = self._thermostat(p, half)
        return q, p

    def conserved(self, p: torch.Tensor) -> float:
        """H + P_ext V + p_eps^2/2W - k_B T ln V - thermostat work - cell-thermostat work (eV), current state."""
        baro = self.barostat
        kin = float(kinetic_energy(p, self.masses))
        return (
            self.potential_energy
            + kin
            + baro.pressure * self.volume
            + baro.kinetic_energy
            - baro.kT * math.log(self.volume)
            - self.thermostat_work
            - baro.work
        )

    def state(self, q: torch.Tensor, p: torch.Tensor) -> dict[str, np.ndarray]:
        """Per-frame record: cell, volume, potential energy, cell-thermostat work, p_eps, conserved quantity.

        The particle thermostat's work is ``thermostat_work``, which :func:`actionmd.dynamics.stepping.run_steps`
        records for every stepper that has it.
        """
        self.potential_energy = float(self.evaluate(q.numpy(), self.cell)[0])  # cached after a step
        return {
            "cell": self.cell.copy(),
            "volume": np.array(self.volume),
            "potential_energy": np.array(self.potential_energy),
            "barostat_work": np.array(self.barostat.work),
            "barostat_momentum": np.array(self.barostat.momentum),
            "conserved": np.array(self.conserved(p)),
        }
