"""SpLiCE's preprocessing: rows scaled to unit norm, centred, scaled to unit norm again.

Concepts are centred by their own mean (:func:`process_concepts`). Embeddings are
centred by ``image_mean_`` (:func:`process_embeddings`), the mean of unit-norm training
embeddings that ``fit`` learns (:func:`mean_of_unit_rows`) and ``partial_fit``
accumulates (:func:`sum_of_unit_rows`). Benchmarks import these functions, so that the
problems they time are the ones :class:`~skplice.SpLiCETransformer` solves.
"""

import numpy as np
import torch

from skplice.utils._rows import unit_rows


def process_concepts(raw, names=None, *, center):
    """Normalise concept embeddings, centre them by their mean and normalise again.

    ``names`` (one per row) name the concept an error is about; without them, its row.
    Returns a new array of ``raw``'s floating dtype.
    """

    def which(row):
        return f"row {row}" if names is None else f"{names[row]!r} (row {row})"

    zero = np.flatnonzero(~np.any(raw != 0, axis=1))
    if zero.size:
        raise ValueError(f"Concept embeddings must be non-zero; {which(zero[0])} is all zeros.")
    components = unit_rows(raw)
    if center:
        components -= components.mean(axis=0)
        norms = np.linalg.norm(components, axis=1)
        # A concept equal to the dictionary mean has no direction left after centring.
        degenerate = np.flatnonzero(norms <= 1e3 * np.finfo(components.dtype).eps)
        if degenerate.size:
            raise ValueError(
                f"After centring, concept {which(degenerate[0])} "
                "equals the mean of the dictionary and has no direction left (a "
                "dictionary of one concept, or of identical rows, cannot be centred). "
                "Use more distinct concepts or center=False."
            )
        components /= norms[:, None]
    return components


def mean_of_unit_rows(X):
    """The mean of ``X``'s rows scaled to unit norm, in float64: the ``image_mean_`` of fit."""
    return unit_rows(X).mean(axis=0, dtype=np.float64)


def sum_of_unit_rows(X):
    """The sum of ``X``'s rows scaled to unit norm, in float64 (partial_fit's running mean)."""
    return unit_rows(X).sum(axis=0, dtype=np.float64)


def process_embeddings(batch, mean, *, center):
    """A torch ``batch`` of embeddings normalised, centred by ``mean`` and normalised again.

    Without ``center``, only normalised. A row at the mean, up to rounding, becomes zero.
    """
    z = torch.nn.functional.normalize(batch, dim=1)
    if center:
        residual = z - mean
        norms = residual.norm(dim=1, keepdim=True)
        z = residual / norms.clamp_min(1e-12)  # what normalize() computes
        # A sample at the mean, up to rounding, has no direction left: normalising
        # its rounding noise would explain it by arbitrary concepts. It gets none.
        noise = 8 * np.sqrt(z.shape[1]) * torch.finfo(z.dtype).eps
        z = z.masked_fill(norms <= noise, 0.0)
    return z
