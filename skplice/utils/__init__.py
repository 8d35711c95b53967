"""Shared helpers of every layer: validation, rows, devices, files, downloads, home.

The few helpers that tools built on skplice need too (its ``skplice`` command among
them) are public here: the cache folder, optional imports with an error naming the
extra to install, atomic file writes, and messages that long paths cannot bury.
Everything else in this package is private to skplice. The only modules of the package
that import scikit-learn's private names live here, so a scikit-learn upgrade that moves
one is fixed in one place.
"""

from skplice.utils._deps import import_optional
from skplice.utils._files import non_regular_kind, write_atomic
from skplice.utils._home import get_data_home
from skplice.utils._text import shorten_words

__all__ = [
    "get_data_home",
    "import_optional",
    "non_regular_kind",
    "shorten_words",
    "write_atomic",
]
