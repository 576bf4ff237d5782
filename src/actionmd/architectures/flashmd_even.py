"""FlashMD's generating function, made even in every atom's momentum by construction.

In metatrain's ``experimental.flashmd_symplectic`` the momenta enter S only through the
per-atom node encoder, an MLP of p_i. Here that MLP sees p_i and -p_i and its two
outputs are summed, so S(q, s_1 p_1, ..., s_N p_N) = S(q, p) for every choice of
signs: S is even in p (time reversal), and its increments need one evaluation instead
of the two (+p, -p) that :class:`actionmd.atomistic.model.SymmetrisedIncrement` makes
of a general S. Even per atom is a restriction: S cannot hold p_i . A . p_j terms
between atoms (the exact S has them from order Dt^3). The standard model trained on
water has none either, to float32 precision (README, "Benchmark"; measured with
``python -m actionmd.atomistic.model_errors --coupling``), so the restriction costs nothing
that model had.

Everything else (hyperparameters, trainer, losses, checkpoints) is metatrain's; the
checkpoint records this architecture's name so that ``mtt export`` rebuilds it, and
the exported model carries ``even_in_momentum = True`` for the integrator to read.
"""

from __future__ import annotations

import torch
from metatrain.experimental.flashmd.modules.encoder import NodeEncoder
from metatrain.experimental.flashmd_symplectic.model import FlashMDSymplectic
from metatrain.experimental.flashmd_symplectic.trainer import Trainer

from . import EVEN


class EvenNodeEncoder(NodeEncoder):
    """metatrain's node encoder with the momentum MLP symmetrised: m(p_i) + m(-p_i)."""

    def forward(self, features: torch.Tensor, momenta: torch.Tensor) -> torch.Tensor:
        center_features = self.center_encoder(features)
        momenta_features = self.momenta_encoder(momenta) + self.momenta_encoder(-momenta)
        return self.compressor(torch.cat([center_features, momenta_features], dim=-1))


class FlashMDEven(FlashMDSymplectic):
    """``experimental.flashmd_symplectic`` with :class:`EvenNodeEncoder` (same parameters)."""

    def __init__(self, hypers: dict, dataset_info) -> None:
        super().__init__(hypers, dataset_info)
        encoders = []
        for old in self.node_embedders:
            new = EvenNodeEncoder(old.center_encoder.num_embeddings, old.center_encoder.embedding_dim)
            encoders.append(new)
        self.node_embedders = torch.nn.ModuleList(encoders)
        self.even_in_momentum = True

    def get_checkpoint(self) -> dict:
        checkpoint = super().get_checkpoint()
        checkpoint["architecture_name"] = EVEN
        return checkpoint


__model__ = FlashMDEven
__trainer__ = Trainer
__authors__ = [("actionmd", "")]
__maintainers__ = [("actionmd", "")]
