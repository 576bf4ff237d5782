"""``mtt`` with our architectures registered: ``python -m actionmd.architectures train options.yaml``."""

from actionmd.architectures import register

register()

from metatrain.__main__ import main  # noqa: E402

main()
