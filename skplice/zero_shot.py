"""ZeroShotClassifier: classify CLIP embeddings by their cosine to class prompt embeddings."""

from collections.abc import Mapping
from numbers import Real

import numpy as np
import scipy.sparse as sp
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from skplice.concepts._templates import parse_template
from skplice.embedding._model_tags import check_same_model, clip_model_of, text_encoder_for
from skplice.utils._pickle import _VersionedPickleMixin
from skplice.utils._refit import check_state_params, record_state_params
from skplice.utils._rows import unit_rows
from skplice.utils._sklearn_compat import HasMethods, Interval, _fit_context

__all__ = ["ZeroShotClassifier"]

_EMBEDDING_DTYPES = [np.float64, np.float32]


class ZeroShotClassifier(_VersionedPickleMixin, ClassifierMixin, BaseEstimator):
    """Classify embeddings by cosine similarity to text prompts, as CLIP does zero-shot.

    Each class is embedded as the normalised mean of the normalised text
    embeddings of its prompts (every template filled with every name of the
    class), CLIP's zero-shot protocol. An embedding is assigned the class whose
    embedding is most cosine-similar. Inputs are dense embeddings of the
    encoder's model: CLIP image embeddings, or their SpLiCE reconstructions
    (``SpLiCETransformer(output="reconstruction")`` in a pipeline).

    Nothing is learned from the data: :meth:`fit` only encodes the prompts and
    checks that the embeddings and the labels fit them.

    Parameters
    ----------
    classes : sequence of str or dict
        The classes. A sequence of class names makes the names the labels. A
        dict maps each label to a name or a list of names (synonyms), e.g.
        ``{0: "airplane", 1: ["car", "automobile"]}``; ``dict(enumerate(names))``
        predicts integer labels.
    templates : str or sequence of str, default=("a photo of a {}.",)
        Prompt templates, each with exactly one empty ``{}`` field, replaced by the
        class name (``{{`` and ``}}`` are literal braces, as in ``str.format``).
    encoder : object with an ``encode_text(list[str])`` method, default=None
        Text encoder of the same model as the embeddings, e.g. a
        :class:`CLIPEmbedder`. None uses the CLIP model that made ``X`` when ``X``
        says so (the output of :class:`CLIPEmbedder`, and the reconstructions of a
        :class:`SpLiCETransformer` fitted on it, carry their model), else
        ``CLIPEmbedder()`` with its defaults. A :class:`CLIPEmbedder` of another
        model than ``X``'s is refused. It is used in :meth:`fit` only.
    logit_scale : float, default=100.0
        Temperature of :meth:`predict_proba`: the probabilities are the softmax
        of ``logit_scale * cosine``. 100 is CLIP's learned scale.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, in the order of ``classes``.
    class_embeddings_ : ndarray of shape (n_classes, n_features)
        Unit-norm class embeddings.
    clip_model_ : str or None
        The CLIP model that encoded the prompts, e.g. ``"ViT-B-32
        laion2b_s34b_b79k"``; None for an encoder that is not a
        :class:`CLIPEmbedder`. Embeddings that say another model made them are
        refused by :meth:`predict` and the other prediction methods.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string column names.

    See Also
    --------
    SpLiCETransformer : Its ``output="reconstruction"`` gives sparse-concept
        replacements of the embeddings to classify.

    Notes
    -----
    Fitted state is numpy only: the encoder is kept as a parameter (a
    :class:`CLIPEmbedder` pickles as its settings, without model weights) and
    prediction never calls it.

    Helpers that re-encode ``y`` as integers before fitting, such as
    :func:`sklearn.model_selection.cross_val_predict`, cannot be used: the
    labels must be those of ``classes``.

    Examples
    --------
    A toy encoder (hashed character trigrams) keeps the example offline; real
    use passes a :class:`CLIPEmbedder` and CLIP image embeddings.

    >>> import numpy as np
    >>> from sklearn.feature_extraction.text import HashingVectorizer
    >>> from skplice import ZeroShotClassifier
    >>> class TrigramEncoder:
    ...     def encode_text(self, texts):
    ...         vectorizer = HashingVectorizer(n_features=256, analyzer="char_wb",
    ...                                        ngram_range=(3, 3), alternate_sign=False)
    ...         return vectorizer.transform(texts).toarray()
    >>> encoder = TrigramEncoder()
    >>> X = encoder.encode_text(["a photo of my cat", "dogs in a park"])
    >>> clf = ZeroShotClassifier({"cat": "cat", "dog": ["dog", "puppy"]}, encoder=encoder)
    >>> clf.fit(X).predict(X)
    array(['cat', 'dog'], dtype='<U3')
    >>> clf.class_embeddings_.shape
    (2, 256)
    >>> clf.predict_proba(X).sum(axis=1)
    array([1., 1.])
    """

    _parameter_constraints = {
        "classes": [Mapping, "array-like"],
        "templates": [str, "array-like"],
        "encoder": [HasMethods(["encode_text"]), None],
        "logit_scale": [Interval(Real, 0, None, closed="neither")],
    }
    # Parameters the fitted state depends on: changing one after fit asks for a refit.
    _state_params = ("classes", "templates", "encoder")

    def __init__(self, classes, templates=("a photo of a {}.",), encoder=None, logit_scale=100.0):
        self.classes = classes
        self.templates = templates
        self.encoder = encoder
        self.logit_scale = logit_scale

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Encode the class prompts and check that ``X`` and ``y`` fit them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings; only their width is used.
        y : array-like of shape (n_samples,), default=None
            Labels, optional; when given, every label must be one of the classes.

        Returns
        -------
        self : ZeroShotClassifier
            The fitted classifier.
        """
        labels, names_per_class = _parse_classes(self.classes)
        templates = _parse_templates(self.templates)
        # The prompts are encoded by the model that made X, when X says which.
        encoder, clip_model = text_encoder_for(self.encoder, clip_model_of(X), what="prompts")
        # Validate everything before recording anything, so a failed fit leaves no state.
        X_checked = _check_embeddings(X, self)
        if y is not None:
            y = column_or_1d(y, warn=True)
            check_consistent_length(X_checked, y)
            check_classification_targets(y)
            _check_labels(y, labels)
        class_embeddings = _encode_classes(encoder, names_per_class, templates)
        if class_embeddings.shape[1] != X_checked.shape[1]:
            raise ValueError(
                f"X has {X_checked.shape[1]} features but the encoder embeds the prompts in "
                f"{class_embeddings.shape[1]}: the embeddings and the encoder must come from "
                "the same model. (SpLiCE concept weights are not embeddings: use "
                "SpLiCETransformer(output='reconstruction') before this classifier.)"
            )
        validate_data(self, X, reset=True, skip_check_array=True)
        self.classes_ = _label_array(labels)
        self.class_embeddings_ = class_embeddings
        self.clip_model_ = None if clip_model is None else clip_model.label()
        self._clip_model = clip_model  # what prediction compares X's model with
        record_state_params(self)
        return self

    def decision_function(self, X):
        """Cosine similarities between embeddings and class embeddings.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            The cosine of each embedding with each class embedding. With two
            classes, scikit-learn's convention for binary classifiers applies:
            one score per sample, the cosine with ``classes_[1]`` minus the
            cosine with ``classes_[0]``.
        """
        cosines = self._cosines(X)
        if cosines.shape[1] == 2:
            return cosines[:, 1] - cosines[:, 0]
        return cosines

    def predict(self, X):
        """Predict the class whose embedding is most cosine-similar.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        best = np.argmax(self._cosines(X), axis=1)  # checks fitting before classes_ is read
        return self.classes_[best]

    def predict_proba(self, X):
        """Class probabilities: the softmax of ``logit_scale`` times the cosines.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1; columns follow ``classes_``.
        """
        return softmax(self.logit_scale * self._cosines(X), axis=1)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed stably.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities; columns follow ``classes_``.
        """
        return log_softmax(self.logit_scale * self._cosines(X), axis=1)

    def _cosines(self, X):
        check_is_fitted(self)
        check_state_params(self)
        check_same_model(self, X)
        _check_embeddings(X, self)  # the clear message for sparse input comes first
        X = validate_data(self, X, reset=False, dtype=_EMBEDDING_DTYPES)
        # A zero embedding is equally far from every class; huge or tiny ones keep their
        # direction (see skplice.utils._rows).
        unit_X = unit_rows(X, allow_zero=True)
        return unit_X @ self.class_embeddings_.T.astype(X.dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags


def _check_embeddings(X, estimator):
    """X as a dense float array, refusing sparse concept weights with a pointer to the fix."""
    if sp.issparse(X):
        raise TypeError(
            f"{type(estimator).__name__} got a sparse matrix; it classifies dense "
            "embeddings. SpLiCE concept weights are sparse: use "
            "SpLiCETransformer(output='reconstruction') to classify their reconstructions."
        )
    return check_array(X, dtype=_EMBEDDING_DTYPES, estimator=estimator)


def _parse_classes(classes):
    """Return ``(labels, names_per_class)`` from a sequence of names or a label -> names dict."""
    if isinstance(classes, Mapping):
        labels = list(classes)
        names_per_class = [
            [names] if isinstance(names, str) else list(names) for names in classes.values()
        ]
    else:
        if isinstance(classes, np.ndarray) and classes.ndim != 1:
            raise ValueError(f"classes must be one-dimensional; got shape {classes.shape}.")
        labels = list(classes)
        names_per_class = [[name] for name in labels]
        if len(set(labels)) != len(labels):
            raise ValueError("Class names must be unique; use a dict to give a class synonyms.")
    if len(labels) < 2:
        raise ValueError(f"A classifier needs at least 2 classes; got {len(labels)}.")
    for label, names in zip(labels, names_per_class, strict=True):
        if not names or not all(isinstance(name, str) and name.strip() for name in names):
            raise ValueError(
                f"Class {label!r} needs one or more non-empty string names; got {names!r}."
            )
    return labels, names_per_class


def _parse_templates(templates):
    templates = [templates] if isinstance(templates, str) else list(templates)
    if not templates:
        raise ValueError("templates is empty; pass at least one, e.g. 'a photo of a {}.'.")
    return [parse_template(template, "templates") for template in templates]


def _check_labels(y, labels):
    known = set(labels)
    unknown = [label for label in dict.fromkeys(y.tolist()) if label not in known]
    if not unknown:
        return
    shown = ", ".join(repr(label) for label in labels[:5]) + (", ..." if len(labels) > 5 else "")
    message = (
        f"y has {len(unknown)} labels that are not classes: {unknown[:5]!r}. A zero-shot "
        f"classifier predicts only its classes ({shown})."
    )
    if all(isinstance(label, str) for label in labels) and y.dtype.kind in "iu":
        message += (
            " Class names are the labels of a list of classes; for integer labels pass "
            "classes=dict(enumerate(names))."
        )
    raise ValueError(message)


def _label_array(labels):
    """Labels as a numpy array, keeping their type (object dtype when numpy would convert)."""
    array = np.asarray(labels)
    if array.dtype.kind in "biufU" and array.tolist() == labels:
        return array
    array = np.empty(len(labels), dtype=object)
    array[:] = labels
    return array


def _encode_classes(encoder, names_per_class, templates):
    """Unit-norm mean of the unit-norm prompt embeddings, one row per class."""
    prompts = [
        template.fill(name)
        for names in names_per_class
        for name in names
        for template in templates
    ]
    embedded = np.asarray(encoder.encode_text(prompts), dtype=np.float64)
    if embedded.ndim != 2 or embedded.shape[0] != len(prompts):
        raise ValueError(
            f"The encoder returned an array of shape {embedded.shape} for {len(prompts)} "
            "prompts; encode_text must return one row per text."
        )
    bad = np.flatnonzero(~np.isfinite(embedded).all(axis=1) | ~np.any(embedded != 0, axis=1))
    if bad.size:
        raise ValueError(
            f"The encoder returned a zero or non-finite embedding for the prompt "
            f"{prompts[bad[0]]!r}; a class embedding needs a direction."
        )
    unit_prompts = unit_rows(embedded)
    boundaries = np.cumsum([len(names) * len(templates) for names in names_per_class])
    means = np.stack([block.mean(axis=0) for block in np.split(unit_prompts, boundaries[:-1])])
    if not np.all(np.any(means != 0, axis=1)):
        raise ValueError(
            "The prompts of a class have embeddings that cancel out (their mean is zero); "
            "use other templates or names."
        )
    return unit_rows(means)
