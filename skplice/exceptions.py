"""Exceptions and warnings raised by skplice."""


class DownloadError(OSError):
    """A data file that skplice downloads could not be fetched or failed its sha256 check.

    The base class of :class:`VocabularyDownloadError` and
    :class:`ImageMeanDownloadError`: catch it to handle any failed download of
    skplice's data (vocabularies, published image means). The message names the
    address, the cause, the path where the file can be placed by hand and its
    expected sha256. CLIP model weights are downloaded by open_clip; when that fails,
    :class:`ModelDownloadError` says why and how to work offline.

    Examples
    --------
    >>> from skplice.exceptions import DownloadError, ImageMeanDownloadError
    >>> issubclass(DownloadError, OSError), issubclass(ImageMeanDownloadError, DownloadError)
    (True, True)
    """


class VocabularyDownloadError(DownloadError):
    """A named vocabulary could not be downloaded or failed its sha256 check.

    :func:`~skplice.load_vocabulary` raises it with a message naming the address, the
    cause, the path where the file can be placed by hand and its expected sha256.

    Examples
    --------
    >>> from skplice.exceptions import DownloadError, VocabularyDownloadError
    >>> issubclass(VocabularyDownloadError, DownloadError)
    True
    """


class ImageMeanDownloadError(DownloadError):
    """A published mean image embedding could not be downloaded or failed its sha256 check.

    :func:`~skplice.load_image_mean` raises it with a message naming the address, the
    cause, the path where the file can be placed by hand and its expected sha256.

    Examples
    --------
    >>> from skplice.exceptions import DownloadError, ImageMeanDownloadError
    >>> issubclass(ImageMeanDownloadError, DownloadError)
    True
    """


class ModelDownloadError(DownloadError):
    """The weights of a CLIP model could not be downloaded from the Hugging Face Hub.

    :class:`~skplice.CLIPEmbedder` raises it when it loads a pretrained tag or an
    ``hf-hub:`` model whose files are neither in the local Hugging Face cache nor
    downloadable. The message names the model, the address, the cause and how to work
    offline (a local checkpoint file or folder); open_clip's error is chained as
    ``__cause__``.

    Parameters
    ----------
    message : str
        What failed and how to fix it.
    unreachable : str or None, default=None
        Why the Hub could not be reached, if it could not.

    Attributes
    ----------
    unreachable : str or None
        Why the Hub could not be reached (then only the local cache was searched), as
        a phrase; None when it answered, or when offline mode was set by the user.

    Examples
    --------
    >>> from skplice.exceptions import DownloadError, ModelDownloadError
    >>> error = ModelDownloadError("Could not download ...", unreachable=None)
    >>> isinstance(error, DownloadError), error.unreachable
    (True, None)
    """

    def __init__(self, message, *, unreachable=None):
        super().__init__(message)
        self.unreachable = unreachable

    def __reduce__(self):
        return _rebuild_model_download_error, (str(self), self.unreachable)


def _rebuild_model_download_error(message, unreachable):
    return ModelDownloadError(message, unreachable=unreachable)


class ImageLoadError(OSError, ValueError):
    """An input image could not be read, decoded or converted to RGB.

    It is both an :class:`OSError` (the file was missing, truncated or not an image)
    and a :class:`ValueError` (the input was not a usable image), so either ``except``
    catches it. The original exception is chained as ``__cause__``.

    Parameters
    ----------
    index : int
        Position of the item in the input sequence.
    source : str
        The file path, or a short description of an in-memory item (PIL image,
        array or bytes).
    reason : str
        Why the item could not be used.

    Attributes
    ----------
    index : int
        Position of the item in the input sequence.
    source : str
        The file path, or a short description of an in-memory item.
    reason : str
        Why the item could not be used.

    Examples
    --------
    >>> from skplice.exceptions import ImageLoadError
    >>> error = ImageLoadError(3, "'photos/broken.jpg'", "OSError: image file is truncated")
    >>> print(error)
    Could not load image 3 ('photos/broken.jpg'): OSError: image file is truncated
    >>> isinstance(error, OSError) and isinstance(error, ValueError)
    True
    >>> error.index, error.reason
    (3, 'OSError: image file is truncated')
    """

    def __init__(self, index, source, reason):
        super().__init__(f"Could not load image {index} ({source}): {reason}")
        self.index = index
        self.source = source
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.index, self.source, self.reason))


class SkippedImagesWarning(UserWarning):
    """Some images were skipped because they could not be loaded (``on_error="skip"``).

    :class:`~skplice.CLIPEmbedder` emits one such warning per call, listing every
    skipped item.

    Parameters
    ----------
    message : str
        The warning's text.
    skipped : sequence of tuple (int, str, str), default=()
        ``(index, source, reason)`` for every skipped item, in input order.
    kept : array-like of int, default=()
        Positions (in the input sequence) of the rows that were embedded, in order.

    Attributes
    ----------
    skipped : list of tuple (int, str, str)
        ``(index, source, reason)`` for every skipped item, in input order.
    kept : ndarray of int
        Positions (in the input sequence) of the rows that were embedded, in order.

    Examples
    --------
    Catch the warning to learn which images were left out:

    >>> import warnings
    >>> from skplice.exceptions import SkippedImagesWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn(SkippedImagesWarning(
    ...         "Skipped 1 of 3 images", [(1, "'b.jpg'", "file not found")], [0, 2]))
    >>> caught[0].message.skipped, caught[0].message.kept
    ([(1, "'b.jpg'", 'file not found')], [0, 2])
    """

    def __init__(self, message, skipped=(), kept=()):
        super().__init__(message)
        self.skipped = list(skipped)
        self.kept = kept


class BatchSizeReducedWarning(UserWarning):
    """The device ran out of memory, and the work went on with smaller batches.

    Raised as a warning by :class:`~skplice.CLIPEmbedder`, :class:`~skplice.TextEmbedder`
    and :class:`~skplice.SpLiCETransformer` after a :class:`torch.OutOfMemoryError`: the
    failed batch is halved (down to one item) and retried, so the results are those of a
    run with the smaller ``batch_size``. The message says which ``batch_size`` to set to
    avoid the retries.

    Examples
    --------
    Turn it into an error to find out which batch size fits, or filter it out:

    >>> import warnings
    >>> from skplice.exceptions import BatchSizeReducedWarning
    >>> warnings.simplefilter("error", BatchSizeReducedWarning)
    >>> warnings.resetwarnings()
    >>> issubclass(BatchSizeReducedWarning, UserWarning)
    True
    """


class SingleSampleMeanWarning(UserWarning):
    """A transformer learned its image mean from a single sample, which centres it to nothing.

    :meth:`SpLiCETransformer.fit <skplice.SpLiCETransformer.fit>` with
    ``image_mean=None`` (and ``center=True``) learns the mean of the embeddings it is
    given. The mean of one embedding is that embedding: centring leaves no direction,
    and the sample is explained by no concept. Explain single images with
    ``image_mean="published"`` (the published mean of the CLIP model) or a mean
    computed on many images.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from skplice import SpLiCETransformer
    >>> from skplice.exceptions import SingleSampleMeanWarning
    >>> x = np.array([[0.6, 0.8, 0.0]])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     W = SpLiCETransformer(dictionary="identity").fit_transform(x)
    >>> caught[0].category is SingleSampleMeanWarning, W.nnz
    (True, 0)
    """


class InconsistentVersionWarning(UserWarning):
    """An estimator was unpickled by another skplice version than the one that pickled it.

    Like scikit-learn's warning of the same name (which only covers scikit-learn's own
    estimators): fitted state and its meaning may change between versions, so a pickle
    is only known to work with the version that wrote it. Refit with the current
    version, or load it with the version given by ``original_version``.

    Parameters
    ----------
    estimator_name : str
        Class name of the unpickled estimator.
    current_version : str
        The skplice version loading the pickle.
    original_version : str
        The skplice version that wrote it.

    Attributes
    ----------
    estimator_name : str
        Class name of the unpickled estimator.
    current_version : str
        The skplice version loading the pickle.
    original_version : str
        The skplice version that wrote it.

    Examples
    --------
    >>> import warnings
    >>> from skplice.exceptions import InconsistentVersionWarning
    >>> warning = InconsistentVersionWarning(
    ...     estimator_name="SpLiCETransformer", current_version="0.2.0",
    ...     original_version="0.1.0")
    >>> print(warning)
    Unpickling SpLiCETransformer written by skplice 0.1.0 with skplice 0.2.0: ...
    >>> warnings.simplefilter("error", InconsistentVersionWarning)  # refuse such pickles
    >>> warnings.resetwarnings()
    """

    def __init__(self, *, estimator_name, current_version, original_version):
        self.estimator_name = estimator_name
        self.current_version = current_version
        self.original_version = original_version
        super().__init__(str(self))

    def __str__(self):
        return (
            f"Unpickling {self.estimator_name} written by skplice {self.original_version} "
            f"with skplice {self.current_version}: its fitted state may not mean the same "
            "here, which can break code or give invalid results. Refit it with this "
            f"version, or load it with skplice {self.original_version}."
        )

    def __reduce__(self):
        return (
            _rebuild_version_warning,
            (self.estimator_name, self.current_version, self.original_version),
        )


def _rebuild_version_warning(estimator_name, current_version, original_version):
    return InconsistentVersionWarning(
        estimator_name=estimator_name,
        current_version=current_version,
        original_version=original_version,
    )
