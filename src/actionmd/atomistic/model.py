"""Exported metatomic models as maps of the atomistic phase space.

A model trained by metatrain (``experimental.flashmd`` or
``experimental.flashmd_symplectic``) and exported with ``mtt export`` is a
TorchScript :class:`metatomic.torch.AtomisticModel`. It takes systems with
positions (A), cell (A), atomic types, and two per-atom inputs, ``momentum``
((eV*u)^(1/2), as in ASE) and ``mass`` (u), and returns per-atom outputs
``position`` and ``momentum``:

* direct model: the state one long step later, (q', p');
* symplectic model: the increments (dS/dpbar, -dS/dqbar) = (q' - q, p' - p)
  of the generating function S at the midpoint (qbar, pbar).

Everything outside the model runs in float64 on tensors of shape (N, 3); the
model runs in its exported dtype (float32 or float64) on CPU or CUDA. To keep
float32 round-off at the level of the increments rather than of absolute
positions, positions enter the model wrapped into the cell and only the
difference the model adds is carried back onto the (unwrapped) state.
Neighbour lists come from vesin, recomputed at every evaluation.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import ModelEvaluationOptions, ModelOutput, System, load_atomistic_model
from vesin.metatomic import neighbor_lists_for_model

from actionmd.io import InputError

OUTPUTS = ("position", "momentum")


def _labels_atoms(n: int, device: torch.device):
    idx = torch.arange(n, dtype=torch.int32, device=device)
    return Labels(["system", "atom"], torch.stack([torch.zeros_like(idx), idx], dim=1))


def _per_atom(values: torch.Tensor, name: str):
    """A metatensor TensorMap of per-atom data: (N, 3) vectors or (N,) scalars."""
    device = values.device
    props = Labels([name], torch.tensor([[0]], dtype=torch.int32, device=device))
    if values.dim() == 2:
        xyz = Labels(["xyz"], torch.arange(3, dtype=torch.int32, device=device).reshape(-1, 1))
        block = TensorBlock(values.unsqueeze(-1), _labels_atoms(len(values), device), [xyz], props)
    else:
        block = TensorBlock(values.unsqueeze(-1), _labels_atoms(len(values), device), [], props)
    return TensorMap(Labels.single().to(device), [block])


def one_graph_per_model() -> None:
    """TorchScript models run the same graph at every call, in this process.

    TorchScript's profiling executor re-optimises a model after its first calls, and the fused
    kernels round differently, so the n-th evaluation in a process depended on n: a rollout
    resumed from a checkpoint left the uninterrupted one by 2e-9 A at its first step (water, test
    preset), and an MD run with a metatomic reference potential by its last digits. With one graph
    an evaluation depends on its inputs only. On the CPU it is not slower once warm (water test
    model, one thread: 14.5 vs 16.0 ms per symmetrised call) and skips the 0.6-1.2 s the
    re-optimisation costs in the first calls.
    """
    torch._C._set_graph_executor_optimize(False)


class ExportedModel:
    """An exported FlashMD-type model evaluated on one periodic system.

    ``types`` (N,) atomic numbers, ``cell`` (3, 3) in A (rows are cell
    vectors), ``masses`` (N,) in u. :meth:`__call__` maps float64 tensors
    (B, N, 3) of positions and momenta (B systems sharing types and cell,
    evaluated in one batched model call) to the model's two outputs, float64.
    """

    def __init__(
        self,
        path: str | Path,
        types: torch.Tensor,
        cell: torch.Tensor,
        masses: torch.Tensor,
        device: torch.device | str = "cpu",
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: exported model not found; run the workflow's training rule that exports it")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = load_atomistic_model(str(path))
        except Exception as exc:
            raise InputError(f"{path}: not a loadable metatomic model ({exc}); delete it and retrain") from exc
        caps = model.capabilities()
        missing = [o for o in OUTPUTS if o not in caps.outputs]
        if missing:
            raise InputError(f"{path}: model has no {missing} output; is it a FlashMD model?")
        self.path = path
        self.device = torch.device(device)
        self.dtype = {"float32": torch.float32, "float64": torch.float64}[caps.dtype]
        self.model = model.to(self.device)
        self.symplectic = "mtt::S3" in caps.outputs
        # actionmd.architectures.flashmd_even: S even in every atom's momentum by construction
        self.even_in_momentum = bool(getattr(model.module, "even_in_momentum", False))
        # FlashMD models record the long step they were trained for (fs); NaN if unknown
        self.timestep = float(getattr(model.module, "timestep", float("nan")))
        self.types = torch.as_tensor(types, dtype=torch.int32, device=self.device)
        self.set_cell(cell)
        self.masses = torch.as_tensor(masses, dtype=torch.float64)
        self._options = ModelEvaluationOptions(
            length_unit="A",
            outputs={
                "position": ModelOutput(unit="A", sample_kind="atom"),
                "momentum": ModelOutput(unit="(eV*u)^(1/2)", sample_kind="atom"),
            },
        )
        self._neighbor_lists = neighbor_lists_for_model("A", self.model)
        self.calls = 0
        one_graph_per_model()

    def set_cell(self, cell) -> None:
        """The (3, 3) orthorhombic cell (A) of the next evaluations (NPT rollouts change it every step)."""
        cell = torch.as_tensor(cell, dtype=torch.float64).reshape(3, 3)
        if torch.count_nonzero(cell - torch.diag(torch.diagonal(cell))) > 0:
            raise ValueError("only orthorhombic cells are supported")
        self.cell = cell
        self.lengths = torch.diagonal(cell)

    def check_timestep(self, timestep: float) -> None:
        """Refuse a model trained for another long step than ``timestep`` (fs)."""
        if self.timestep == self.timestep and abs(self.timestep - timestep) > 1e-6 * timestep:
            raise InputError(
                f"{self.path}: trained for a step of {self.timestep} fs, the rollout asks for {timestep} fs; retrain"
            )

    def _system(self, positions: torch.Tensor, momenta: torch.Tensor):
        system = System(
            types=self.types,
            positions=positions.to(self.device, self.dtype),
            cell=self.cell.to(self.device, self.dtype),
            pbc=torch.ones(3, dtype=torch.bool, device=self.device),
        )
        system.add_data("momentum", _per_atom(momenta.to(self.device, self.dtype), "momentum"))
        system.add_data("mass", _per_atom(self.masses.to(self.device, self.dtype), "mass"))
        return system

    def __call__(
        self, positions: torch.Tensor, momenta: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model outputs for a batch: (position, momentum, wrapped input positions), all float64 (B, N, 3)."""
        wrapped = positions - torch.floor(positions / self.lengths) * self.lengths
        systems = [self._system(q, p) for q, p in zip(wrapped, momenta, strict=True)]
        for calculator in self._neighbor_lists:
            calculator.add_neighbor_list(systems)
        # the symplectic model differentiates S inside its forward pass: it needs autograd on
        with torch.enable_grad():
            out = self.model(systems, self._options, check_consistency=False)
        self.calls += 1
        shape = positions.shape
        q_out = out["position"].block().values.detach().reshape(shape).to("cpu", torch.float64)
        p_out = out["momentum"].block().values.detach().reshape(shape).to("cpu", torch.float64)
        return q_out, p_out, wrapped


class DirectMap:
    """x' = F(x) with a direct model; the total momentum is restored to its input value.

    The model's position output is carried onto the unwrapped input as the
    displacement it predicts. Any change of the total momentum P is removed
    with the mass-weighted correction p_i' -= m_i (P' - P) / M, i.e. a uniform
    velocity shift, so the centre of mass moves freely and uniformly.
    """

    def __init__(self, model: ExportedModel) -> None:
        if model.symplectic:
            raise ValueError(f"{model.path}: a symplectic (generating-function) model is not a direct map")
        self.model = model
        self.weights = (model.masses / model.masses.sum()).reshape(-1, 1)

    def __call__(self, q: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batched = q.dim() == 3
        qb, pb = (q, p) if batched else (q.unsqueeze(0), p.unsqueeze(0))
        q_out, p_out, wrapped = self.model(qb, pb)
        q_new = qb + (q_out - wrapped)
        p_new = p_out - self.weights * (p_out - pb).sum(dim=-2, keepdim=True)
        return (q_new, p_new) if batched else (q_new[0], p_new[0])


class SymmetrisedIncrement:
    """Increments of the generating function made even in the momenta.

    metatrain's symplectic model learns S(qbar, pbar) with no symmetry in pbar.
    The integrator uses S_sym(q, p) = [S(q, p) + S(q, -p)] / 2, whose gradients are

        dq = dS_sym/dp = [dq(q, p) - dq(q, -p)] / 2
        dp = -dS_sym/dq = [dp(q, p) + dp(q, -p)] / 2,

    with both evaluations in one batched model call. With S_sym even in p the
    converged map is exactly time-reversible. A model even in p by construction
    (``even_in_momentum``, :mod:`actionmd.architectures.flashmd_even`) is used as
    it is, one evaluation per call. ``symmetrise=False`` gives the raw model (for
    tests that show the difference).
    """

    def __init__(self, model: ExportedModel, symmetrise: bool = True) -> None:
        if not model.symplectic:
            raise ValueError(f"{model.path}: a direct model has no generating function")
        self.model = model
        self.symmetrise = symmetrise and not model.even_in_momentum

    def __call__(self, qbar: torch.Tensor, pbar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.symmetrise:
            dq, dp, _ = self.model(qbar.unsqueeze(0), pbar.unsqueeze(0))
            return dq[0], dp[0]
        dq, dp, _ = self.model(torch.stack([qbar, qbar]), torch.stack([pbar, -pbar]))
        return 0.5 * (dq[0] - dq[1]), 0.5 * (dp[0] + dp[1])
