"""Concept-weight matrices and their concept names: where names come from, and checks.

Concept names travel with the weights in one of two ways: the columns of a DataFrame, or
the ``concept_names`` attribute that :meth:`SpLiCETransformer.transform` sets on its
sparse output (see ``_carried_names``). A caller may also give them explicitly. Names,
never column indices, are the interface: indices shift whenever the vocabulary changes.
"""

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.validation import check_array

from skplice.concepts._names import check_concept_names
from skplice.decomposition._carried_names import attached_concept_names
from skplice.utils._sklearn_compat import _get_feature_names


def carried_names(X):
    """The concept names ``X`` carries (DataFrame columns, ``concept_names``), or None."""
    names = _get_feature_names(X)
    if names is None:
        names = attached_concept_names(X)
    return None if names is None else check_concept_names(names, "the names X carries")


def resolve_names(carried, explicit, *, n_columns, argument):
    """Concept names for ``n_columns`` columns from what X carries and an explicit list.

    Both sources must agree when both are given; returns None when neither is.
    """
    if explicit is not None:
        explicit = check_concept_names(explicit, argument)
        if carried is not None:
            check_same_names(explicit, carried, argument, "the names X carries")
    names = carried if explicit is None else explicit
    if names is not None and names.shape[0] != n_columns:
        raise ValueError(
            f"There are {names.shape[0]} concept names but X has {n_columns} columns: "
            "give exactly one name per column, in column order."
        )
    return names


def check_same_names(first, second, first_label, second_label):
    """Raise a ValueError naming the first difference unless the two name lists are equal."""
    if np.array_equal(first, second):
        return
    if len(first) != len(second):
        detail = f"{first_label} has {len(first)} names, {second_label} {len(second)}"
    else:
        i = int(np.flatnonzero(np.asarray(first) != np.asarray(second))[0])
        detail = f"column {i} is {first[i]!r} in {first_label} but {second[i]!r} in {second_label}"
    raise ValueError(
        f"Concept names differ between {first_label} and {second_label} ({detail}): the "
        "columns would not mean the same concepts. Use weights from the same vocabulary, in "
        "the same order."
    )


def require_names(names, purpose, argument):
    """Return ``names``, or raise the error that explains the three ways to provide them."""
    if names is None:
        raise ValueError(
            f"{purpose} needs concept names, and none were found. They can come from (1) a "
            "pandas or polars DataFrame whose columns are the concept names, e.g. from "
            "SpLiCETransformer(sparse_output=False).set_output(transform='pandas'); (2) "
            "the sparse matrix returned by SpLiCETransformer.transform, which carries them "
            "in its concept_names attribute (scipy operations that build a new matrix drop "
            "it, e.g. the row splits of cross-validation: in a grid search, put the "
            "SpLiCETransformer in the same Pipeline, before this step); or (3) "
            f"{argument}=<list of names, one per column>, e.g. "
            f"{argument}=splice.get_feature_names_out()."
        )
    return names


def check_weights(W, concept_names=None):
    """Validate a matrix of concept weights for inspection.

    Returns
    -------
    W : scipy.sparse.csr_array of float
    names : ndarray of str objects, one per column
    samples : pandas.Index
        The DataFrame's index when ``W`` is a pandas DataFrame, else 0..n_samples-1.
    """
    carried = carried_names(W)
    samples = W.index if isinstance(W, pd.DataFrame) else None
    W = sp.csr_array(
        check_array(W, accept_sparse="csr", dtype=[np.float64, np.float32], input_name="W")
    )
    if W.nnz and W.data.min() < 0:
        raise ValueError(
            "W has negative entries, but SpLiCE concept weights are non-negative: pass "
            "the output of SpLiCETransformer.transform, not the embeddings themselves."
        )
    names = resolve_names(carried, concept_names, n_columns=W.shape[1], argument="concept_names")
    names = require_names(names, "Reading concept weights", "concept_names")
    return W, names, pd.RangeIndex(W.shape[0]) if samples is None else samples


def check_labels(labels, n_samples, argument):
    """One label per sample, as a 1-D ndarray, with no missing values."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n_samples:
        raise ValueError(
            f"{argument} must be 1-D with one label per sample ({n_samples}); got shape "
            f"{labels.shape}."
        )
    if pd.isna(labels).any():
        raise ValueError(f"{argument} has missing values; label every sample.")
    return labels


def some_values(labels):
    """A short listing of the distinct values of ``labels``, for error messages."""
    values = pd.unique(labels)
    shown = ", ".join(repr(value) for value in values[:10])
    return shown + (f", ... ({len(values)} in all)" if len(values) > 10 else "")
