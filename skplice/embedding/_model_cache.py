"""One process-wide cache of loaded models, shared by every estimator.

Estimators never hold a model: they build a key from their parameters, e.g.
``("open_clip", model, weights, device, precision)``, and ask this cache. Two estimators
with the same spec therefore share one copy of the weights, pickles stay small, and
``transform`` sets no attribute on ``self``. Loading happens under one lock, so
concurrent first uses load a model once (and random-weight models are built while no
other model construction draws from torch's global generator).
"""

import threading
from collections import Counter

_MODELS = {}
_LOADS = Counter()  # how many times each key was loaded in this process
_LOAD_LOCK = threading.RLock()


def get_or_load(key, loader):
    """Return the cached value for ``key``, calling ``loader()`` once to create it.

    Examples
    --------
    >>> from skplice.embedding import _model_cache
    >>> _model_cache.get_or_load(("doctest", 1), lambda: object()) is \\
    ...     _model_cache.get_or_load(("doctest", 1), lambda: object())
    True
    >>> _model_cache.clear(lambda key: key[0] == "doctest")
    1
    """
    try:
        return _MODELS[key]
    except KeyError:
        pass
    with _LOAD_LOCK:
        if key not in _MODELS:
            _MODELS[key] = loader()
            _LOADS[key] += 1
        return _MODELS[key]


def cached_keys():
    """Keys of the models currently held, in load order."""
    return list(_MODELS)


def load_counts():
    """How many times each key was loaded in this process (reloads after ``clear`` count).

    A diagnostic: on a Dask worker, ``client.run(load_counts)`` shows that each
    worker process loaded its model once, however many tasks it ran.

    Examples
    --------
    >>> from skplice.embedding import _model_cache
    >>> _ = _model_cache.get_or_load(("doctest-count",), object)
    >>> _ = _model_cache.get_or_load(("doctest-count",), object)
    >>> _model_cache.load_counts()[("doctest-count",)]
    1
    >>> _model_cache.clear(lambda key: key[0] == "doctest-count")
    1
    """
    return dict(_LOADS)


def clear(predicate=None):
    """Drop cached models (those whose key satisfies ``predicate``, or all).

    Returns the number of entries dropped. Estimators reload lazily on next use.
    """
    with _LOAD_LOCK:
        keys = [k for k in _MODELS if predicate is None or predicate(k)]
        for key in keys:
            del _MODELS[key]
    return len(keys)
