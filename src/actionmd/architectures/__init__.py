"""Architectures of ours that metatrain trains and exports, registered without forking it.

metatrain finds an architecture by importing ``metatrain.<name>`` and
``metatrain.<name>.documentation`` (its hyperparameter classes); Python's import
system answers both from ``sys.modules`` first. Loading a checkpoint also checks
the name against ``find_all_architectures()``, a scan of metatrain's own folder.
:func:`register` puts our modules in ``sys.modules`` under those names and adds
our names to that list (in ``metatrain.utils.architectures`` and in
``metatrain.utils.io``, which imported it by name), so that ``mtt train`` and
``mtt export`` run in a
process started by :mod:`actionmd.architectures.__main__` (``python -m
actionmd.architectures train options.yaml``, everything else as ``mtt``) find
them like their own. The exported models are TorchScript and need none of this
to run.

* ``actionmd_flashmd_even`` (:mod:`.flashmd_even`): metatrain's
  ``experimental.flashmd_symplectic`` with a generating function even in every
  atom's momentum by construction, so the integrator evaluates it once per
  fixed-point iteration instead of at +p and -p.
"""

from __future__ import annotations

import sys

EVEN = "actionmd_flashmd_even"
ARCHITECTURES = (EVEN,)


def register() -> None:
    """Make our architectures importable as ``metatrain.<name>`` in this process."""
    # here, not at the top: metatrain takes 1.2 s to import and is patched only where mtt runs (__main__), while
    # every CLI process imports EVEN from this package (atomistic.training); flashmd_even imports EVEN back (a cycle)
    import metatrain.utils.architectures as arch
    import metatrain.utils.io as io
    from metatrain.experimental.flashmd_symplectic import documentation

    from . import flashmd_even

    sys.modules[f"metatrain.{EVEN}"] = flashmd_even
    sys.modules[f"metatrain.{EVEN}.documentation"] = documentation
    if getattr(arch.find_all_architectures, "actionmd", False):
        return
    scan = arch.find_all_architectures

    def find_all_architectures() -> list[str]:
        return [*scan(), *ARCHITECTURES]

    find_all_architectures.actionmd = True  # type: ignore[attr-defined]
    arch.find_all_architectures = find_all_architectures
    io.find_all_architectures = find_all_architectures


def schedule_over(epochs: int, start_epoch: int = 0) -> None:
    """Make the FlashMD trainers' learning-rate schedule span ``epochs`` epochs and begin at ``start_epoch``.

    For a resumed training: metatrain's ``--restart`` rebuilds the schedule from ``num_epochs``
    (the epochs left) and, for these trainers, from step 0: the saved optimiser and scheduler
    states are not loaded back (measured: Adam's and the scheduler's step counts restart at 0).
    Here the schedule is the whole run's, offset by the steps already made; if metatrain does
    load a saved scheduler state, that state's step count is used instead.
    """
    from metatrain.experimental.flashmd import trainer as direct
    from metatrain.experimental.flashmd_symplectic import trainer as symplectic
    from torch.optim.lr_scheduler import LambdaLR

    class ResumedSchedule(LambdaLR):
        def __init__(self, optimizer, schedule: LambdaLR, offset: int) -> None:
            self.offset = offset  # saved with the state (an int); the schedule stays in the closure
            whole = schedule.lr_lambdas[0]
            super().__init__(optimizer, lr_lambda=lambda step: whole(step + self.offset))

        def load_state_dict(self, state_dict) -> None:
            self.offset = 0  # the saved step count already counts the steps made
            super().load_state_dict({**state_dict, "lr_lambdas": [None]})

    for module in (direct, symplectic):
        original = getattr(module.get_scheduler, "actionmd_original", module.get_scheduler)

        def get_scheduler(optimizer, train_hypers, steps_per_epoch, original=original):
            whole = original(optimizer, {**train_hypers, "num_epochs": epochs}, steps_per_epoch)
            return ResumedSchedule(optimizer, whole, start_epoch * steps_per_epoch)

        get_scheduler.actionmd_original = original  # type: ignore[attr-defined]
        module.get_scheduler = get_scheduler
