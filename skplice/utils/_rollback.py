"""Fits that fail leave no trace on the estimator."""

from contextlib import contextmanager


@contextmanager
def unchanged_on_error(estimator):
    """Restore ``estimator``'s attributes, as they were on entry, if the block raises.

    scikit-learn's ``validate_data`` records ``n_features_in_`` and ``feature_names_in_``
    before later checks can fail: a failed ``fit`` or ``partial_fit`` would otherwise
    leave a half-fitted estimator. The attributes themselves are restored (added ones
    removed, replaced or deleted ones put back); objects mutated in place are not.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from skplice.utils._rollback import unchanged_on_error
    >>> estimator = SimpleNamespace(n_features_in_=3)
    >>> try:
    ...     with unchanged_on_error(estimator):
    ...         estimator.n_features_in_, estimator.mean_ = 5, 0.0
    ...         raise ValueError("bad input")
    ... except ValueError:
    ...     pass
    >>> vars(estimator)
    {'n_features_in_': 3}
    """
    before = dict(vars(estimator))
    try:
        yield
    except BaseException:
        vars(estimator).clear()
        vars(estimator).update(before)
        raise
