"""Concept names carried by a sparse weight matrix: the one writer and the one reader.

A scipy sparse matrix has no column names, so :meth:`SpLiCETransformer.transform` and
:meth:`ConceptEditor.transform` attach them to the matrix they return as an attribute,
``concept_names`` (a public, documented name: users read it). scipy operations that build
a new matrix (slicing, stacking, arithmetic) do not keep it. Nothing else sets or reads
the attribute; callers validate what the reader returns.
"""

import numpy as np
import scipy.sparse as sp

__all__ = ["ATTRIBUTE", "attach_concept_names", "attached_concept_names"]

#: The attribute that holds the names.
ATTRIBUTE = "concept_names"


def attach_concept_names(W, names):
    """Attach ``names`` (one per column) to the sparse matrix ``W``; return ``W``."""
    setattr(W, ATTRIBUTE, names)
    return W


def attached_concept_names(X):
    """The names attached to ``X`` by :func:`attach_concept_names`, or None (not checked)."""
    if sp.issparse(X) or isinstance(X, np.ndarray):
        return getattr(X, ATTRIBUTE, None)
    return None
