"""Fitted state that must not outlive the parameters it was computed from.

``set_params(center=False)`` after ``fit`` would otherwise mix concepts centred at fit
with inputs left uncentred at transform, silently. Each estimator names, in a class-level
tuple ``_state_params``, the parameters its fitted state depends on (and may name, in
``_unused_state_params()``, those its current configuration ignores); ``fit`` stores a
digest of each (:func:`record_state_params`) as a plain fitted attribute, and the
methods that use the fitted state call :func:`check_state_params` first, which asks for
a refit naming the parameters that changed.

Digests are deterministic across processes (pickles keep working), cheap (arrays are
hashed once per array object; encoders by the parameters that decide their output, never
by their loaded weights), and compare values, so setting a parameter back to an equal
value is no change. An array changed in place keeps its digest: replace it instead. An
encoder that is neither a skplice embedder nor a scikit-learn estimator is known by its
type only.
"""

import hashlib
import json
import os
import threading
import weakref
from collections.abc import Mapping
from numbers import Number

import numpy as np
from sklearn.exceptions import NotFittedError

#: Name of the fitted attribute that holds the digests.
ATTRIBUTE = "_state_param_digests_"

_ARRAY_DIGESTS = {}  # id(array) -> (weak reference, digest)
_LOCK = threading.Lock()


def record_state_params(estimator):
    """Store the digest of each of ``estimator``'s ``_state_params`` (call at the end of fit).

    The attribute is a NumPy array of "name:digest" strings, as all fitted state is.
    """
    digests = [f"{name}:{value}" for name, value in _digests(estimator).items()]
    setattr(estimator, ATTRIBUTE, np.asarray(digests))


def check_state_params(estimator):
    """Raise NotFittedError naming the ``_state_params`` changed since fit.

    Estimators fitted before digests were recorded (older pickles) are not checked.
    """
    recorded = getattr(estimator, ATTRIBUTE, None)
    if recorded is None:
        return
    recorded = dict(str(entry).split(":", 1) for entry in recorded)
    current = _digests(estimator)
    changed = [name for name in current if name in recorded and recorded[name] != current[name]]
    if not changed and current.keys() != recorded.keys():  # not expected: the deciding
        changed = sorted(current.keys() ^ recorded.keys())  # parameter is recorded too
    if changed:
        many = len(changed) > 1
        raise NotFittedError(
            f"{type(estimator).__name__}'s parameter{'s' if many else ''} "
            f"{', '.join(changed)} changed since fit (set_params after fit?), but the fitted "
            f"state was computed with the old value{'s' if many else ''}. Call fit again to "
            f"use the new one{'s' if many else ''}, or set {'them' if many else 'it'} back."
        )


def _digests(estimator):
    # A configuration may leave some of them unused (a given dictionary needs no encoder);
    # the parameter that decides so is itself one of them, so a change of it is seen.
    unused = getattr(estimator, "_unused_state_params", tuple)()
    names = [name for name in type(estimator)._state_params if name not in unused]
    return {name: digest(getattr(estimator, name)) for name in names}


def digest(value):
    """A deterministic digest of a parameter value.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.utils._refit import digest
    >>> digest([1.0, "a"]) == digest((1.0, "a")), digest(np.ones(3)) == digest(np.ones(3))
    (True, True)
    >>> digest(0) == digest(False)
    False
    """
    return hashlib.sha256(_describe(value).encode("utf-8", "surrogatepass")).hexdigest()


def _describe(value):
    if value is None or isinstance(value, (str, Number)):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, os.PathLike):
        return f"path:{os.fspath(value)!r}"
    if isinstance(value, np.ndarray):
        return _array_digest(value)
    if isinstance(value, (list, tuple)):
        if all(type(item) is str for item in value):  # a vocabulary: the common, long case
            return "strings:" + json.dumps(value)
        return "sequence:[" + ",".join(map(_describe, value)) + "]"
    if isinstance(value, Mapping):
        items = sorted((_describe(key), _describe(item)) for key, item in value.items())
        return "mapping:{" + ",".join(f"{key}={item}" for key, item in items) + "}"
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    identity_params = getattr(type(value), "_identity_params", None)
    if identity_params is not None and hasattr(value, "get_params"):
        # An embedder: the parameters that decide its output, not device or batch size.
        params = value.get_params(deep=False)
        return f"{kind}:" + _describe({name: params[name] for name in identity_params})
    if hasattr(value, "get_params"):  # another scikit-learn estimator
        return f"{kind}:" + _describe(value.get_params(deep=False))
    if hasattr(value, "__array__") and hasattr(value, "shape"):  # pandas, ...
        return _describe(np.asarray(value))
    # Any other object (a user's encoder): what it holds (a model, counters, caches)
    # cannot be digested cheaply and deterministically, so its type must do.
    return f"object:{kind}"


def _array_digest(array):
    key = id(array)
    with _LOCK:
        known = _ARRAY_DIGESTS.get(key)
    if known is not None and known[0]() is array:
        return known[1]
    if array.dtype.hasobject:
        text = "object-array:" + _describe(array.tolist()) + str(array.shape)
        value = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    else:
        hasher = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
        hasher.update(np.ascontiguousarray(array).data)
        value = "array:" + hasher.hexdigest()
    try:
        reference = weakref.ref(array, lambda _, key=key: _ARRAY_DIGESTS.pop(key, None))
    except TypeError:
        return value
    with _LOCK:
        _ARRAY_DIGESTS[key] = (reference, value)
    return value
