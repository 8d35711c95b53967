"""Checks of plain function arguments, with one wording across the package.

Estimator parameters are checked by scikit-learn's ``_parameter_constraints``; these
helpers serve functions (and arguments of methods) that have no such table.
"""

from numbers import Integral


def check_int(value, name, *, min_value, allow_none=False):
    """``value`` as an ``int`` if it is an integer >= ``min_value`` (or None if allowed).

    Any integral type counts (``np.int64`` too); ``bool`` does not, although Python
    treats it as an int, since ``n=True`` is a mistake rather than ``n=1``.

    Raises
    ------
    TypeError
        ``value`` is not an integer (a float, a string, a bool), or None where not allowed.
    ValueError
        ``value`` is below ``min_value``.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.utils._validation import check_int
    >>> check_int(np.int64(3), "n", min_value=1)
    3
    >>> check_int(None, "size", min_value=1, allow_none=True) is None
    True
    >>> check_int(0, "n", min_value=1)
    Traceback (most recent call last):
    ...
    ValueError: n must be an int >= 1; got 0.
    >>> check_int(2.0, "n", min_value=1, allow_none=True)
    Traceback (most recent call last):
    ...
    TypeError: n must be an int >= 1 or None; got 2.0.
    """
    if value is None and allow_none:
        return None
    or_none = " or None" if allow_none else ""
    message = f"{name} must be an int >= {min_value}{or_none}; got {value!r}."
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(message)
    if value < min_value:
        raise ValueError(message)
    return int(value)
