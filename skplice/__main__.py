"""``python -m skplice``: the ``skplice`` command (see :mod:`skplice.cli`)."""

import sys

from skplice.cli import main

if __name__ == "__main__":
    sys.exit(main())
