"""The SpLiCE paper's main evaluation: sparsity against faithfulness and zero-shot accuracy."""

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.metrics import accuracy_score
from sklearn.utils.validation import check_array, check_consistent_length, check_is_fitted

from skplice.decomposition._splice import SpLiCETransformer, reconstruction_cosines
from skplice.zero_shot import ZeroShotClassifier


def sparsity_sweep(splice, X, y=None, *, l1_values, classifier=None):
    """Measure sparsity, faithfulness and accuracy of SpLiCE reconstructions across ``l1``.

    For each penalty, ``X`` is decomposed (all penalties in one warm-started
    :meth:`SpLiCETransformer.regularization_path`) and reconstructed; a row
    records the mean number of active concepts, the mean cosine between the
    embeddings and their reconstructions and, given ``y`` and ``classifier``,
    the classifier's accuracy on the reconstructions. A last row holds the dense
    embeddings' accuracy, the baseline that reconstructions approach as ``l1``
    decreases. These are the curves of the SpLiCE paper's main evaluation.

    Parameters
    ----------
    splice : SpLiCETransformer
        A fitted transformer: its dictionary and ``image_mean_`` are used, its
        own ``l1`` is not.
    X : array-like of shape (n_samples, n_features)
        Embeddings to evaluate, e.g. CLIP image embeddings of a test set.
    y : array-like of shape (n_samples,), default=None
        True labels; needed with ``classifier``.
    l1_values : sequence of float
        Penalties to evaluate, in the order of the result's rows.
    classifier : fitted classifier, sequence of str, dict or None, default=None
        Scores the reconstructions and the dense embeddings: a fitted classifier
        over embeddings, such as a :class:`ZeroShotClassifier` or a linear probe
        trained on dense embeddings; or the ``classes`` of a
        :class:`ZeroShotClassifier` whose prompts are embedded by
        ``splice.encoder`` (``CLIPEmbedder()`` when None), the model that embeds
        the transformer's vocabulary.

    Returns
    -------
    results : pandas.DataFrame
        One row per value of ``l1_values`` (``representation="splice"``), then
        one for the dense embeddings (``representation="dense"``: ``l1`` and
        ``mean_l0`` are NaN, ``mean_cosine`` is 1). Columns:
        ``representation``, ``l1``, ``mean_l0``, ``mean_cosine`` and, with a
        classifier, ``accuracy``.

    See Also
    --------
    plot_sparsity_curve : Draw the curves of the results.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice import SpLiCETransformer, sparsity_sweep
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(20, 16))
    >>> splice = SpLiCETransformer(dictionary=rng.normal(size=(50, 16))).fit(X)
    >>> results = sparsity_sweep(splice, X, l1_values=[0.05, 0.2, 1.0])
    >>> results.columns.tolist()
    ['representation', 'l1', 'mean_l0', 'mean_cosine']
    >>> bool(results["mean_l0"].iloc[0] > results["mean_l0"].iloc[2])
    True
    """
    if not isinstance(splice, SpLiCETransformer):
        raise TypeError(f"splice must be a SpLiCETransformer; got {type(splice).__name__}.")
    check_is_fitted(splice)
    X_array = check_array(X, dtype=[np.float64, np.float32], input_name="X")
    l1_values = [float(l1) for l1 in np.ravel(l1_values)]
    if (y is None) != (classifier is None):
        raise ValueError(
            "Pass both y and classifier to measure accuracy, or neither; got "
            f"y={'None' if y is None else 'labels'} and "
            f"classifier={'None' if classifier is None else type(classifier).__name__}."
        )
    if classifier is not None:
        check_consistent_length(X_array, y)
        classifier = _fitted_classifier(classifier, splice, X, y)

    # The estimators get X as given, so that feature names reach them.
    path = splice.regularization_path(X, l1_values)
    rows = []
    for l1, W in zip(l1_values, path, strict=True):
        row = {
            "representation": "splice",
            "l1": l1,
            "mean_l0": float(np.mean(_active_per_row(W))),
            "mean_cosine": float(np.mean(reconstruction_cosines(splice, X_array, W))),
        }
        if classifier is not None:
            reconstruction = splice.inverse_transform(W)
            if isinstance(X, pd.DataFrame):  # a classifier fitted on named columns wants them
                reconstruction = pd.DataFrame(reconstruction, index=X.index, columns=X.columns)
            row["accuracy"] = accuracy_score(y, classifier.predict(reconstruction))
        rows.append(row)
    dense = {"representation": "dense", "l1": np.nan, "mean_l0": np.nan, "mean_cosine": 1.0}
    if classifier is not None:
        dense["accuracy"] = accuracy_score(y, classifier.predict(X))
    rows.append(dense)
    return pd.DataFrame(rows)


def _fitted_classifier(classifier, splice, X, y):
    if isinstance(classifier, (Mapping, list, tuple, np.ndarray)):
        return ZeroShotClassifier(classifier, encoder=splice.encoder).fit(X, y)
    if not hasattr(classifier, "predict"):
        raise TypeError(
            "classifier must be a fitted classifier (with a predict method) or a list or "
            f"dict of class names; got {type(classifier).__name__}."
        )
    check_is_fitted(classifier)
    return classifier


def _active_per_row(W):
    if sp.issparse(W):
        return W.getnnz(axis=1)
    return np.count_nonzero(W, axis=1)
