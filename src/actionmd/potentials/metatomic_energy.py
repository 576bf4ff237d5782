"""The ``"energy"`` output of a metatomic model built from per-atom energies (TorchScript-compatible).

Shared by the exported potentials of this project (q-TIP4P/f, the toy Morse
model): given each system's per-atom energies (eV), the output block holds
either the per-system sums or the per-atom values, restricted to
``selected_atoms`` when the engine asks for a subset.
"""

from __future__ import annotations

from typing import List, Optional  # noqa: UP035 (TorchScript needs typing's generics)

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap


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
