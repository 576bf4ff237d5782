"""``mtt`` with our architectures registered: ``python -m actionmd.architectures train options.yaml``.

``ACTIONMD_SCHEDULE_EPOCHS=N`` and ``ACTIONMD_SCHEDULE_FROM_EPOCH=e`` (set by
:func:`actionmd.atomistic.training.train` when it resumes): the FlashMD trainers'
learning-rate schedule (warm-up, cosine decay) is that of all N epochs, from epoch e on.
metatrain's ``--restart`` trains ``num_epochs`` *more* epochs on a schedule rebuilt from that
number and from step 0; a resume after epoch e - 1 of N runs ``num_epochs = N - e`` on the
whole run's schedule, so it ends where an uninterrupted run ends.
"""

import os

from actionmd.architectures import register, schedule_over

register()
if os.environ.get("ACTIONMD_SCHEDULE_EPOCHS"):
    schedule_over(int(os.environ["ACTIONMD_SCHEDULE_EPOCHS"]), int(os.environ.get("ACTIONMD_SCHEDULE_FROM_EPOCH", 0)))

from metatrain.__main__ import main  # noqa: E402

main()
