"""One process-wide cache of loaded models, shared by every estimator.

Estimators never hold a model: they build a key from their parameters, e.g.
``("open_clip", model, weights, device, precision)``, and ask this cache. Two estimators
with the same spec therefore share one copy of the weights, pickles stay small, and
``transform`` sets no attribute on ``self``. Loading happens under one lock, so
concurrent first uses load a model once (and random-weight models are built while no
other model construction draws from torch's global generator).
"""

import threading

_MODELS = {}
_LOAD_LOCK = threading.RLock()


def get_or_load(key, loader):
    """Return the cached value for ``key``, calling ``loader()`` once to create it.

    Examples
    --------
    >>> from skplice import _model_cache
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
        return _MODELS[key]


def cached_keys():
    """Keys of the models currently held, in load order."""
    return list(_MODELS)


def clear(predicate=None):
    """Drop cached models (those whose key satisfies ``predicate``, or all).

    Returns the number of entries dropped. Estimators reload lazily on next use.
    """
    with _LOAD_LOCK:
        keys = [k for k in _MODELS if predicate is None or predicate(k)]
        for key in keys:
            del _MODELS[key]
    return len(keys)
