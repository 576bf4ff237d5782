"""What the exported metatomic potentials of this project share: energy output, forward, model, export.

The exported potentials (q-TIP4P/f water, the toy Morse model) each compute per-atom
energies (eV) of a system given in A; everything around that is here and TorchScript-compatible:

* :func:`energy_output`, the ``"energy"`` TensorMap: per-system sums or per-atom values,
  restricted to ``selected_atoms`` when the engine asks for a subset;
* :class:`AtomicEnergyModule`, the ``forward`` of metatomic's ``ModelInterface`` built on a
  subclass's :meth:`~AtomicEnergyModule.check_system` and
  :meth:`~AtomicEnergyModule.atomic_energies`;
* :func:`energy_atomistic_model`, the ``AtomisticModel`` with the capabilities they share
  (one per-atom ``"energy"`` output in eV, lengths in angstrom, float64);
* :func:`save_atomically`, the TorchScript export through a temporary file and a rename.

Engines take forces (eV/A) and stress (eV/A^3) by autograd of the energy. No
``from __future__ import annotations`` here: metatomic compares ``forward``'s annotations
with typing's generics themselves, not with strings.
"""

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Dict, List, Optional  # noqa: UP035 (TorchScript and metatomic need typing's generics)

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import AtomisticModel, ModelCapabilities, ModelMetadata, ModelOutput, System


def energy_output(
    atomic_energies: List[torch.Tensor],  # noqa: UP006
    per_atom: bool,
    selected_atoms: Optional[Labels],  # noqa: UP045
    device: torch.device,
) -> TensorMap:
    """A TensorMap with one block of energies (samples 'system' or 'system', 'atom'; property 'energy')."""
    values: List[torch.Tensor] = []  # noqa: UP006
    sample_values: List[torch.Tensor] = []  # noqa: UP006
    for s, energies in enumerate(atomic_energies):
        if selected_atoms is None:
            atoms = torch.arange(energies.shape[0], device=device)
        else:
            selected = selected_atoms.values.to(device)
            atoms = selected[selected[:, 0] == s][:, 1].to(torch.long)
        if per_atom:
            values.append(energies[atoms])
            sample_values.append(torch.stack([torch.full_like(atoms, s), atoms], dim=1))
        else:
            values.append(torch.sum(energies[atoms]).reshape(1))
            sample_values.append(torch.tensor([[s]], device=device))
    if per_atom:
        names = ["system", "atom"]
    else:
        names = ["system"]
    if len(atomic_energies) > 0:
        energy_values = torch.cat(values).reshape(-1, 1)
        samples = Labels(names, torch.cat(sample_values).to(torch.int32))
    else:
        energy_values = torch.zeros((0, 1), dtype=torch.float64, device=device)
        samples = Labels(names, torch.zeros((0, len(names)), dtype=torch.int32, device=device))
    block = TensorBlock(
        values=energy_values,
        samples=samples,
        components=torch.jit.annotate(List[Labels], []),  # noqa: UP006
        properties=Labels(["energy"], torch.tensor([[0]], dtype=torch.int32, device=device)),
    )
    return TensorMap(Labels(["_"], torch.tensor([[0]], dtype=torch.int32, device=device)), [block])


class AtomicEnergyModule(torch.nn.Module):
    """Base of a metatomic model whose one output, ``"energy"`` (eV), is built from per-atom energies.

    Subclasses define :meth:`atomic_energies` and ``requested_neighbor_lists`` and may override
    :meth:`check_system`; :meth:`forward` follows metatomic's ``ModelInterface``.
    """

    def check_system(self, system: System) -> None:
        """Raise ValueError if the model cannot evaluate ``system``; here every system is accepted."""
        return None

    def atomic_energies(self, system: System) -> torch.Tensor:
        """Per-atom energies (N,) in eV of one system; they sum to its energy."""
        raise NotImplementedError("subclasses of AtomicEnergyModule define atomic_energies")

    def forward(
        self,
        systems: List[System],  # noqa: UP006 (metatomic checks for these exact annotations)
        outputs: Dict[str, ModelOutput],  # noqa: UP006
        selected_atoms: Optional[Labels] = None,  # noqa: UP045
    ) -> Dict[str, TensorMap]:  # noqa: UP006
        """The ``"energy"`` output (eV) of each system, per system or per atom, for ``selected_atoms`` if given."""
        results: dict[str, TensorMap] = {}
        if "energy" not in outputs:
            return results
        per_atom = outputs["energy"].sample_kind == "atom"
        device = systems[0].positions.device if len(systems) > 0 else torch.device("cpu")
        energies: List[torch.Tensor] = []  # noqa: UP006
        for system in systems:
            self.check_system(system)
            energies.append(self.atomic_energies(system))
        results["energy"] = energy_output(energies, per_atom, selected_atoms, device)
        return results


def energy_atomistic_model(
    module: AtomicEnergyModule,
    name: str,
    description: str,
    references: dict[str, list[str]],
    atomic_types: Sequence[int],
    interaction_range: float,
    supported_devices: Sequence[str] = ("cpu",),
) -> AtomisticModel:
    """``module`` (put in eval mode) wrapped in a metatomic ``AtomisticModel`` (not yet scripted).

    Capabilities: one ``"energy"`` output in eV, per atom available; ``atomic_types``;
    ``interaction_range`` in A (``math.inf`` for a model that needs the whole periodic system);
    lengths in angstrom; float64; ``supported_devices``.
    """
    metadata = ModelMetadata(name=name, description=description, references=references)
    capabilities = ModelCapabilities(
        outputs={"energy": ModelOutput(unit="eV", sample_kind="atom")},
        atomic_types=list(atomic_types),
        interaction_range=interaction_range,
        length_unit="angstrom",
        supported_devices=list(supported_devices),
        dtype="float64",
    )
    return AtomisticModel(module.eval(), metadata, capabilities)


def save_atomically(model: AtomisticModel, path: str | os.PathLike) -> None:
    """Save ``model`` (TorchScript ``.pt``) to ``path`` through a temporary file in the same folder and a rename.

    A reader never sees a half-written file; the temporary file is removed if saving fails.
    The folder must exist.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
