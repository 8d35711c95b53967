"""Pickles that say which skplice wrote them, as scikit-learn's do for scikit-learn."""

import warnings

from skplice._version import __version__
from skplice.exceptions import InconsistentVersionWarning

_KEY = "_skplice_version"
#: The version reported for pickles written before skplice stamped them.
UNSTAMPED = "unknown (a pickle without a skplice version)"


class _VersionedPickleMixin:
    """Stamp the pickled state with the skplice version; warn on a mismatch when loading.

    Place it left of ``BaseEstimator``, whose ``__getstate__``/``__setstate__`` it extends.
    """

    def __getstate__(self):
        return {**super().__getstate__(), _KEY: __version__}

    def __setstate__(self, state):
        state = dict(state)
        version = state.pop(_KEY, UNSTAMPED)
        if version != __version__:
            warnings.warn(
                InconsistentVersionWarning(
                    estimator_name=type(self).__name__,
                    current_version=__version__,
                    original_version=version,
                ),
                stacklevel=2,
            )
        super().__setstate__(state)
