"""Row normalisation that neither overflows nor underflows.

``x / ||x||`` squares the entries of ``x``: rows with entries above about 1e154 (float64)
or 1e19 (float32) overflow to an infinite norm, and rows with entries below about 1e-154
or 1e-19 lose their norm to underflow; either way the direction is lost silently. Scaling
each row by a power of two first, so that its largest entry lies in [0.5, 1), avoids both
and is exact: multiplying by a power of two changes no significant bit, so a row of
ordinary magnitude gives bit for bit the same unit vector as without the scaling.
"""

import numpy as np
import scipy.sparse as sp


def scaled_rows(X):
    """``X`` with each row multiplied by the power of two that brings its largest
    absolute entry into [0.5, 1); zero rows stay zero. Returns a new array (or CSR matrix).

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.utils._rows import scaled_rows
    >>> scaled_rows(np.array([[3.0, -4.0], [1e300, 1e300], [0.0, 0.0]]))
    array([[ 0.375     , -0.5       ],
           [ 0.74...,  0.74...],
           [ 0.        ,  0.        ]])
    """
    if sp.issparse(X):
        # Scale the stored values in place of a product, keeping their order (and so the
        # summation order of a later product) unchanged.
        X = sp.csr_matrix(X, copy=True)
        _, exponents = np.frexp(abs(X).max(axis=1).toarray().ravel())
        X.data = np.ldexp(X.data, -np.repeat(exponents, np.diff(X.indptr)))
        return X
    X = np.asarray(X)
    if X.shape[1] == 0:
        return X.copy()
    _, exponents = np.frexp(np.abs(X).max(axis=1, keepdims=True))
    return np.ldexp(X, -exponents)


def unit_rows(X, *, allow_zero=False):
    """Rows of a dense ``X`` scaled to unit L2 norm (zero rows stay zero when allowed).

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.utils._rows import unit_rows
    >>> unit_rows(np.array([[3e200, 4e200], [3e-200, -4e-200]]))
    array([[ 0.6,  0.8],
           [ 0.6, -0.8]])
    """
    X = scaled_rows(X)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if allow_zero:
        norms[norms == 0] = 1
    return X / norms


def row_cosines(A, B):
    """Cosine similarity between each row of ``A`` and the same row of ``B`` (dense).

    A zero row has no direction and gets a cosine of 0.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.utils._rows import row_cosines
    >>> row_cosines(np.array([[1e300, 0.0], [0.0, 0.0]]), np.array([[1e-300, 1e-300], [1.0, 0.0]]))
    array([0.70710678, 0.        ])
    """
    return np.sum(unit_rows(A, allow_zero=True) * unit_rows(B, allow_zero=True), axis=1)
