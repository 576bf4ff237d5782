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
