"""``python -m skplice``: the ``skplice`` command (see :mod:`skplice.cli._commands`)."""

import sys

from skplice.cli import main

if __name__ == "__main__":
    sys.exit(main())
