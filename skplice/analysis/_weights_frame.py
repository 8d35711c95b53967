"""Sparse concept weights as a long (sample, concept, weight) table."""

import numpy as np
import pandas as pd

from skplice.decomposition._weights import check_weights

__all__ = ["weights_frame"]


def weights_frame(W, concept_names=None, *, index=None):
    """The non-zero concept weights as a long table: one row per (sample, concept).

    A long table stores sparse weights at their size (a wide table of 10,000 concept
    columns would be almost all zeros), writes to Parquet or a database as is, and
    concatenates across batches or Dask partitions, whose samples keep their labels.

    Parameters
    ----------
    W : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_concepts)
        Non-negative concept weights, e.g. the output of
        :meth:`SpLiCETransformer.transform`.
    concept_names : list of str, default=None
        One name per column; needed only when ``W`` carries no names.
    index : array-like of shape (n_samples,), default=None
        The label of each sample, e.g. the index of the DataFrame of embeddings that
        ``W`` decomposes. None uses the index of a DataFrame ``W``, else the row
        positions 0, 1, ...

    Returns
    -------
    DataFrame
        Columns ``sample`` (the sample's label), ``concept`` (pandas' ``"str"`` dtype)
        and ``weight`` (``W``'s floating dtype), with one row per non-zero weight,
        ordered by sample, then by column. A sample with no concept has no row.

    See Also
    --------
    top_concepts : The heaviest concepts of each sample, ranked.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skplice import weights_frame
    >>> W = sp.csr_matrix(np.array([[0.5, 0.0, 0.2], [0.0, 0.0, 0.0], [0.0, 0.4, 0.0]]))
    >>> weights_frame(W, ["dog", "beach", "sand"], index=["a.jpg", "b.jpg", "c.jpg"])
      sample concept  weight
    0  a.jpg     dog     0.5
    1  a.jpg    sand     0.2
    2  c.jpg   beach     0.4
    """
    W, names, samples = check_weights(W, concept_names)
    if index is not None:
        samples = _check_index(index, W.shape[0])
    if not W.has_canonical_format:  # duplicates summed, columns sorted: on a copy
        W = W.copy()
        W.sum_duplicates()
    coo = W.tocoo()
    kept = coo.data != 0  # stored zeros are not weights
    rows, columns = coo.row[kept], coo.col[kept]
    return pd.DataFrame(
        {
            "sample": samples.take(rows),
            "concept": pd.Series(names[columns], dtype="str"),
            "weight": coo.data[kept],
        }
    )


def _check_index(index, n_samples):
    if isinstance(index, str) or np.ndim(index) != 1:
        raise ValueError(
            f"index must be 1-D with one label per sample ({n_samples}), e.g. the index of "
            "the DataFrame of embeddings; got "
            + (f"the string {index!r}." if isinstance(index, str) else f"shape {np.shape(index)}.")
        )
    index = pd.Index(index)
    if index.shape[0] != n_samples:
        raise ValueError(
            f"index has {index.shape[0]} labels but W has {n_samples} samples: give one "
            "label per sample, in row order."
        )
    return index
