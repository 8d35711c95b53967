"""Transform inputs larger than memory, one batch at a time."""

import mmap
import os
from collections.abc import Iterable, Mapping

import numpy as np
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from skplice.utils._files import non_regular_kind
from skplice.utils._text import shorten, with_short_filenames
from skplice.utils._validation import check_int

_DEFAULT_BATCH_SIZE = 8192


def transform_batches(estimator, X, *, batch_size=None, verbose=False):
    """Apply a fitted transformer to a large input batch by batch, in bounded memory.

    Only one batch of ``X`` and its result are held at a time: a memory-mapped ``.npy``
    file is read slice by slice (the pages of each slice of a read-only mapping are
    released once copied, so the process's resident memory, as Dask's memory monitor
    sees it, stays near one batch rather than growing to the file's size), and an
    iterable of batches (a generator reading files, a database cursor, ...) is consumed
    lazily. Each batch's result is yielded as soon
    as it is computed, so it can be written out (sparse ``.npz``, Parquet parts) and
    dropped. Results are the same as one call of ``estimator.transform`` on the whole
    input, because skplice's estimators treat every sample independently.

    Parameters
    ----------
    estimator : fitted transformer
        Anything with a ``transform`` method, e.g. a fitted
        :class:`~skplice.SpLiCETransformer`, a :class:`~skplice.CLIPEmbedder` or a
        :class:`~sklearn.pipeline.Pipeline`. Its fitted state is checked before any
        data are read.
    X : array-like, str, path-like or iterable of batches
        - A path to a ``.npy`` file: opened memory-mapped and read ``batch_size`` rows
          at a time.
        - An object with a ``shape`` (NumPy array or memmap, scipy sparse matrix,
          pandas DataFrame or Series, HDF5 or Zarr dataset, ...): sliced into
          ``batch_size`` rows at a time (``.iloc`` for pandas objects). A 1-D array of
          image paths for :class:`~skplice.CLIPEmbedder` is sliced the same way.
        - Any other iterable (generator, list or tuple): its items are the batches,
          transformed as they come. A plain list is therefore a list of batches; wrap a
          list of image paths in ``np.asarray`` to have it sliced into batches instead.
    batch_size : int, default=None
        Rows per batch when ``X`` is a path or an array-like; None means 8192. It
        must be None when ``X`` is an iterable of batches, whose batches are used as
        given.
    verbose : bool, default=False
        Show a progress bar counting input rows (with a total when ``X`` has a shape).

    Returns
    -------
    results : generator
        Yields ``estimator.transform(batch)`` for each batch, in input order (a scipy
        sparse matrix for a :class:`~skplice.SpLiCETransformer` with
        ``sparse_output=True``). Nothing is read before the first result is asked for.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        At the call, when ``estimator`` needs fitting and is not fitted.
    TypeError
        At the call, when ``estimator`` has no ``transform`` method or ``X`` is neither
        a path, an array-like nor an iterable.
    ValueError
        At the call, when a path is not a ``.npy`` file holding an array of at least one
        dimension, or ``batch_size`` is invalid or given with an iterable of batches.
        Errors of ``estimator.transform`` surface when the batch is reached.

    See Also
    --------
    skplice.SpLiCETransformer.partial_fit : Learn the centring statistics batch by batch.

    Examples
    --------
    Decompose a memory-mapped file of embeddings and keep only the sparse result:

    >>> import os, tempfile
    >>> import numpy as np, scipy.sparse as sp
    >>> from skplice import SpLiCETransformer, transform_batches
    >>> rng = np.random.default_rng(0)
    >>> path = os.path.join(tempfile.mkdtemp(), "embeddings.npy")
    >>> np.save(path, rng.normal(size=(1000, 16)).astype(np.float32))
    >>> splice = SpLiCETransformer(dictionary=rng.normal(size=(40, 16)), l1=0.3)
    >>> splice = splice.fit(np.load(path, mmap_mode="r")[:200])
    >>> parts = transform_batches(splice, path, batch_size=300)
    >>> W = sp.vstack(list(parts), format="csr")
    >>> W.shape
    (1000, 40)
    >>> sp.save_npz(path.replace(".npy", "_weights.npz"), W)

    Batches from a generator are transformed as they are produced:

    >>> def read_batches():
    ...     for start in range(0, 1000, 250):
    ...         yield np.load(path, mmap_mode="r")[start : start + 250]
    >>> [part.shape[0] for part in transform_batches(splice, read_batches())]
    [250, 250, 250, 250]
    """
    if not callable(getattr(estimator, "transform", None)):
        raise TypeError(f"estimator must have a transform method; got {type(estimator).__name__}.")
    if hasattr(estimator, "fit"):
        check_is_fitted(estimator)
    if isinstance(X, (str, os.PathLike)):
        X = _open_npy(X)
    if hasattr(X, "shape"):
        if len(X.shape) == 0:
            raise ValueError("X is a 0-d array: it has no rows to split into batches.")
        size = check_int(batch_size, "batch_size", min_value=1, allow_none=True)
        size = _DEFAULT_BATCH_SIZE if size is None else size
        return _transform_slices(estimator, X, size, verbose)
    if isinstance(X, (bytes, Mapping)) or not isinstance(X, Iterable):
        raise TypeError(
            "X must be a path to a .npy file, an array-like with a shape, or an iterable "
            f"of batches; got {type(X).__name__}."
        )
    if batch_size is not None:
        raise ValueError(
            "batch_size applies to arrays and .npy files, which transform_batches splits; "
            "the batches of an iterable are used as given. Pass batch_size=None, or "
            "wrap a list of rows in np.asarray to have it split."
        )
    return _transform_iterable(estimator, X, verbose)


def _open_npy(path):
    """Memory-map a ``.npy`` file read-only, refusing pickled (object) arrays."""
    try:
        kind = non_regular_kind(path)  # a named pipe would block np.load forever
    except OSError as exc:
        raise with_short_filenames(exc) from None
    if kind:
        raise ValueError(f"{shorten(repr(os.fspath(path)))} is {kind}, not a .npy file.")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise ValueError(
            f"Could not memory-map {shorten(repr(os.fspath(path)))} as a .npy array: {exc}"
        ) from exc
    if not isinstance(array, np.ndarray):  # an .npz archive
        array.close()
        raise ValueError(
            f"{shorten(repr(os.fspath(path)))} is an .npz archive; transform_batches reads a "
            ".npy file holding one array (np.save), or pass the archive's array itself."
        )
    return array


def _rows(X, start, stop):
    """Rows ``start:stop`` of ``X``, read into memory when ``X`` is memory-mapped."""
    if hasattr(X, "iloc"):
        return X.iloc[start:stop]
    batch = X[start:stop]
    if isinstance(batch, np.memmap):
        # A private in-memory copy, which pickles as a plain array (e.g. when sent to a
        # Dask worker); then the file's pages are let go (see _release_pages).
        copy = np.array(batch)
        _release_pages(batch)
        batch = copy
    return batch


def _release_pages(view):
    """Unmap the pages of a read-only memmap slice from this process, once read.

    The kernel keeps every page read through a mapping in the process's resident set, so
    without this a stream over a 2 GiB file ends with an RSS of 2 GiB, which memory
    monitors (Dask's among them) count against the process. ``MADV_DONTNEED`` drops the
    pages from the mapping (the file's data stay in the page cache, and a later read
    maps them again). Only for mode "r": a copy-on-write mapping would lose its edits.
    """
    mapping = getattr(view, "_mmap", None)
    advise = getattr(mapping, "madvise", None)  # not on Windows
    dontneed = getattr(mmap, "MADV_DONTNEED", None)
    if advise is None or dontneed is None or view.mode != "r":
        return
    if not view.flags.c_contiguous or view.nbytes == 0:
        return
    start = view.ctypes.data - np.frombuffer(mapping, dtype=np.uint8).ctypes.data
    first_page = start - start % mmap.PAGESIZE
    advise(dontneed, first_page, start + view.nbytes - first_page)


def _transform_slices(estimator, X, batch_size, verbose):
    n_rows = X.shape[0]
    desc = f"{type(estimator).__name__} batches"
    with tqdm(total=n_rows, unit="row", desc=desc, disable=not verbose) as progress:
        for start in range(0, n_rows, batch_size):
            stop = min(start + batch_size, n_rows)
            yield estimator.transform(_rows(X, start, stop))
            progress.update(stop - start)


def _transform_iterable(estimator, batches, verbose):
    desc = f"{type(estimator).__name__} batches"
    with tqdm(unit="row", desc=desc, disable=not verbose) as progress:
        for batch in batches:
            yield estimator.transform(batch)
            progress.update(_n_rows(batch))


def _n_rows(batch):
    shape = getattr(batch, "shape", None)
    if shape is not None and len(shape) > 0:
        return shape[0]
    return len(batch) if hasattr(batch, "__len__") else 1
