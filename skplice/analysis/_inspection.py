"""Reading SpLiCE concept weights: explanations, class summaries, probes, group differences.

Every function takes a concept-weight matrix ``W`` (the output of
:meth:`SpLiCETransformer.transform`: sparse, dense or a DataFrame) and finds the
concept names in its DataFrame columns or its ``concept_names`` attribute, or takes
them as ``concept_names``. Results are pandas DataFrames in long ("tidy") form.
"""

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from skplice.analysis import _stats
from skplice.decomposition._weights import (
    check_labels,
    check_weights,
    require_names,
    resolve_names,
    some_values,
)
from skplice.utils._validation import check_int


def top_concepts(W, concept_names=None, *, n=5):
    """The ``n`` heaviest concepts of each sample.

    Parameters
    ----------
    W : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_concepts)
        Non-negative concept weights.
    concept_names : list of str, default=None
        One name per column; needed only when ``W`` carries no names.
    n : int, default=5
        Concepts per sample. Samples with fewer non-zero concepts get fewer rows.

    Returns
    -------
    DataFrame
        Columns ``sample`` (row position, or the DataFrame's index label), ``rank``
        (1 = heaviest), ``concept`` and ``weight``; ties keep column order.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.analysis._inspection import top_concepts
    >>> W = np.array([[0.1, 0.0, 0.3], [0.0, 0.2, 0.0]])
    >>> top_concepts(W, ["dog", "beach", "sand"], n=2)
       sample  rank concept  weight
    0       0     1    sand     0.3
    1       0     2     dog     0.1
    2       1     1   beach     0.2
    """
    check_int(n, "n", min_value=1)
    W, names, samples = check_weights(W, concept_names)
    rows, ranks, columns, weights = _top_entries(W, n)
    return pd.DataFrame(
        {"sample": samples[rows], "rank": ranks, "concept": names[columns], "weight": weights}
    )


def format_top_concepts(W, concept_names=None, *, n=5, decimals=2):
    """One line per sample listing its heaviest concepts, e.g. ``"0.31 beach, 0.22 dog"``.

    Parameters
    ----------
    W : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_concepts)
        Non-negative concept weights.
    concept_names : list of str, default=None
        One name per column; needed only when ``W`` carries no names.
    n : int, default=5
        Concepts per sample.
    decimals : int, default=2
        Decimals shown for each weight.

    Returns
    -------
    list of str
        One string per sample, heaviest concept first; an empty string for a sample
        with no concept.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.analysis._inspection import format_top_concepts
    >>> W = np.array([[0.1, 0.0, 0.3], [0.0, 0.0, 0.0]])
    >>> format_top_concepts(W, ["dog", "beach", "sand"])
    ['0.30 sand, 0.10 dog', '']
    """
    check_int(n, "n", min_value=1)
    check_int(decimals, "decimals", min_value=0)
    W, names, _ = check_weights(W, concept_names)
    rows, _, columns, weights = _top_entries(W, n)
    lines = [[] for _ in range(W.shape[0])]
    for row, column, weight in zip(rows, columns, weights, strict=True):
        lines[row].append(f"{weight:.{decimals}f} {names[column]}")
    return [", ".join(parts) for parts in lines]


def class_concept_summary(W, y, concept_names=None, *, top=None, sort_by="mean_weight"):
    """Mean weight and prevalence of each concept in each class: concept histograms.

    The SpLiCE paper's concept histograms: which concepts make up a class, and
    how often. Prevalence is the fraction of the class's samples whose weight for
    the concept is > 0.

    Parameters
    ----------
    W : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_concepts)
        Non-negative concept weights.
    y : array-like of shape (n_samples,)
        Class (or group) of each sample.
    concept_names : list of str, default=None
        One name per column; needed only when ``W`` carries no names.
    top : int or None, default=None
        Keep each class's ``top`` concepts by ``sort_by`` (only concepts present in
        the class); None keeps every concept.
    sort_by : {"mean_weight", "prevalence"}, default="mean_weight"
        Order of the concepts within a class (ties broken by the other measure).

    Returns
    -------
    DataFrame
        Columns ``class``, ``rank`` (1 = largest), ``concept``, ``mean_weight``,
        ``prevalence`` and ``n_samples`` (the class size); classes in sorted order.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.analysis._inspection import class_concept_summary
    >>> W = np.array([[0.4, 0.0], [0.2, 0.1], [0.0, 0.3]])
    >>> class_concept_summary(W, ["cat", "cat", "dog"], ["whiskers", "leash"], top=1)
      class  rank   concept  mean_weight  prevalence  n_samples
    0   cat     1  whiskers          0.3         1.0          2
    1   dog     1     leash          0.3         1.0          1
    """
    if sort_by not in ("mean_weight", "prevalence"):
        raise ValueError(f"sort_by must be 'mean_weight' or 'prevalence'; got {sort_by!r}.")
    check_int(top, "top", min_value=1, allow_none=True)
    W, names, _ = check_weights(W, concept_names)
    codes, classes = pd.factorize(check_labels(y, W.shape[0], "y"), sort=True)
    one_hot = sp.csr_array(
        (np.ones(W.shape[0]), (codes, np.arange(W.shape[0]))), shape=(len(classes), W.shape[0])
    )
    sizes = np.bincount(codes, minlength=len(classes))[:, None]
    mean_weight = np.asarray((one_hot @ W).todense()) / sizes
    prevalence = np.asarray((one_hot @ (W > 0).astype(np.float64)).todense()) / sizes
    first, second = (
        (mean_weight, prevalence) if sort_by == "mean_weight" else (prevalence, mean_weight)
    )
    frames = []
    for k, label in enumerate(classes):
        order = np.lexsort((-second[k], -first[k]))
        if top is not None:
            order = order[first[k, order] > 0][:top]
        frames.append(
            pd.DataFrame(
                {
                    "class": label,
                    "rank": np.arange(1, order.size + 1),
                    "concept": names[order],
                    "mean_weight": mean_weight[k, order],
                    "prevalence": prevalence[k, order],
                    "n_samples": int(sizes[k, 0]),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def probe_report(model, concept_names=None, *, top=10):
    """The concepts a fitted linear model relies on, ranked per class.

    Parameters
    ----------
    model : estimator or Pipeline
        A fitted linear model with ``coef_`` (e.g. ``LogisticRegression``) trained
        on concept weights, or a fitted Pipeline whose last step is one.
    concept_names : list of str, default=None
        One name per coefficient. By default, taken from the model's
        ``feature_names_in_`` (fitted on a DataFrame) or, for a Pipeline, from the
        steps before the model (``pipeline[:-1].get_feature_names_out()``).
    top : int, default=10
        Concepts listed per class and direction.

    Returns
    -------
    DataFrame
        Columns ``class``, ``direction`` ("positive": evidence for the class;
        "negative": evidence against it), ``rank``, ``concept`` and ``coefficient``;
        zero coefficients are left out. A binary classifier has one row of
        coefficients, reported for ``classes_[1]`` (its negative concepts are
        evidence for ``classes_[0]``); a model without ``classes_`` (a regressor)
        labels its rows 0, 1, ...

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skplice.analysis._inspection import probe_report
    >>> W = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.8]])
    >>> probe = LogisticRegression().fit(W, ["beach", "beach", "office", "office"])
    >>> probe_report(probe, ["sand", "desk"])[["class", "direction", "concept"]]
        class direction concept
    0  office  positive    desk
    1  office  negative    sand
    """
    check_int(top, "top", min_value=1)
    estimator = model[-1] if isinstance(model, Pipeline) else model
    check_is_fitted(estimator)
    if not hasattr(estimator, "coef_"):
        raise TypeError(
            f"{type(estimator).__name__} has no coef_: probe_report reads the coefficients "
            "of a linear model (LogisticRegression, LinearSVC, RidgeClassifier, ...)."
        )
    coef = estimator.coef_
    coef = np.atleast_2d(coef.toarray() if sp.issparse(coef) else np.asarray(coef))
    names = _probe_concept_names(model, estimator, concept_names, coef.shape[1])
    frames = []
    for label, row in zip(_coefficient_labels(estimator, coef.shape[0]), coef, strict=True):
        for direction, sign in (("positive", 1), ("negative", -1)):
            order = np.argsort(-sign * row, kind="stable")
            order = order[sign * row[order] > 0][:top]
            frames.append(
                pd.DataFrame(
                    {
                        "class": [label] * order.size,
                        "direction": direction,
                        "rank": np.arange(1, order.size + 1),
                        "concept": names[order],
                        "coefficient": row[order],
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def concept_differences(W, groups, target, concept_names=None, *, alternative="two-sided"):
    """Rank concepts by how much their prevalence differs between one group and the rest.

    Finds spurious correlations: a concept far more prevalent in one class than in
    another (e.g. "swimwear" among images of women but not of men) is a shortcut a
    classifier may learn. Each concept's presence (weight > 0) is compared between
    the samples of ``target`` and all other samples with Fisher's exact test; the
    p-values are adjusted for the number of concepts tested (Benjamini-Hochberg).

    Parameters
    ----------
    W : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_concepts)
        Non-negative concept weights.
    groups : array-like of shape (n_samples,)
        Group (or class) of each sample.
    target : object
        The group to compare with the rest; one of the values of ``groups``.
    concept_names : list of str, default=None
        One name per column; needed only when ``W`` carries no names.
    alternative : {"two-sided", "greater", "less"}, default="two-sided"
        "greater" looks only for concepts more prevalent in ``target``.

    Returns
    -------
    DataFrame
        One row per concept, most significant first (ties: larger ``|cohens_h|``
        first). Columns: ``concept``; ``prevalence_target``, ``prevalence_rest`` and
        their difference ``prevalence_diff``; the effect sizes ``cohens_h``
        (``2 asin(sqrt(p_target)) - 2 asin(sqrt(p_rest))``, 0.2 small, 0.8 large) and
        ``log_odds_ratio`` (with 0.5 added to each cell); ``mean_weight_target``,
        ``mean_weight_rest`` and ``mean_weight_diff``; ``p_value`` and
        ``p_adjusted``. Concepts absent from every sample (or present in every
        sample) get p-values of 1 and are left out of the adjustment: they carry no
        information.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.analysis._inspection import concept_differences
    >>> rng = np.random.default_rng(0)
    >>> W = rng.uniform(size=(40, 3)) * (rng.uniform(size=(40, 3)) < 0.3)
    >>> groups = np.repeat(["woman", "man"], 20)
    >>> W[:20, 0] = 0.5            # "swimwear" in every image of a woman
    >>> table = concept_differences(W, groups, "woman", ["swimwear", "car", "tree"])
    >>> table.loc[0, "concept"], bool(table.loc[0, "p_adjusted"] < 1e-3)
    ('swimwear', True)
    """
    _stats.check_alternative(alternative)
    W, names, _ = check_weights(W, concept_names)
    groups = check_labels(groups, W.shape[0], "groups")
    in_target = groups == target
    if not in_target.any():
        raise ValueError(f"target={target!r} is not one of the groups: {some_values(groups)}.")
    if in_target.all():
        raise ValueError(f"Every sample is in target={target!r}: there is nothing to compare.")
    result = _stats.contrast(W[in_target], W[~in_target], alternative=alternative)
    frame = _stats.comparison_frame(names, result, suffixes=("target", "rest"))
    return _stats.ranked(frame)


def _top_entries(W, n):
    """Row, rank, column and weight of each sample's ``n`` largest positive weights.

    Rows in order, heaviest first within a row; equal weights keep column order.
    """
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    positive = W.data > 0
    rows, columns, weights = rows[positive], W.indices[positive], W.data[positive]
    order = np.lexsort((columns, -weights, rows))
    rows, columns, weights = rows[order], columns[order], weights[order]
    ranks = np.arange(rows.size) - np.searchsorted(rows, rows) + 1
    top = ranks <= n
    return rows[top], ranks[top], columns[top], weights[top]


def _probe_concept_names(model, estimator, concept_names, n_coefficients):
    names = concept_names
    if names is None:
        names = getattr(estimator, "feature_names_in_", None)
    if names is None and isinstance(model, Pipeline) and len(model) > 1:
        names = model[:-1].get_feature_names_out()
    names = resolve_names(None, names, n_columns=n_coefficients, argument="concept_names")
    return require_names(names, "probe_report", "concept_names")


def _coefficient_labels(estimator, n_rows):
    classes = getattr(estimator, "classes_", None)
    if classes is not None and len(classes) == 2 and n_rows == 1:
        return [classes[1]]
    if classes is not None and len(classes) == n_rows:
        return list(classes)
    return list(range(n_rows))
