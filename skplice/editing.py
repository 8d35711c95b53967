"""Concept editing: remove, scale or keep SpLiCE concepts by name.

:class:`ConceptEditor` multiplies each column of a concept-weight matrix by a factor
resolved from concept names at ``fit``; :func:`edit_embeddings` decomposes dense
embeddings with a fitted :class:`~skplice.SpLiCETransformer`, edits their concepts and
reconstructs them, in one call.
"""

import copy
import difflib
import math
from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import (
    check_is_fitted,
    check_non_negative,
    validate_data,
)

from skplice.decomposition._carried_names import attach_concept_names
from skplice.decomposition._weights import (
    carried_names,
    check_same_names,
    require_names,
    resolve_names,
)
from skplice.utils._pickle import _VersionedPickleMixin
from skplice.utils._refit import check_state_params, record_state_params
from skplice.utils._rollback import unchanged_on_error
from skplice.utils._sklearn_compat import _check_feature_names_in, _fit_context

__all__ = ["ConceptEditor", "edit_embeddings"]


class ConceptEditor(_VersionedPickleMixin, TransformerMixin, BaseEstimator):
    """Remove, scale or keep concepts, by name, in SpLiCE concept weights.

    Place it after a :class:`~skplice.SpLiCETransformer` to edit what a downstream
    model sees, e.g. to stop a linear probe from using the concept "glasses" (the
    SpLiCE paper's model editing). Edits apply in this order: ``keep`` zeroes every
    concept it does not name, ``scale`` multiplies, ``remove`` zeroes. So ``remove``
    wins: ``keep=["animals"], remove=["cat"]`` keeps every animal but the cat.

    Concepts are named, never indexed (indices shift when a vocabulary changes). The
    names are resolved at ``fit`` from, in order: the columns of a DataFrame ``X``, the
    ``concept_names`` attribute of the sparse matrix that
    :meth:`SpLiCETransformer.transform` returns, or the ``concepts`` parameter (when
    two sources are present they must agree). An editor that names no concept (the
    default) is the identity and needs no names.

    Parameters
    ----------
    remove : str or list of str, default=None
        Concepts (or groups) whose weights are set to zero.
    scale : dict of str to float, default=None
        ``{name: factor}``: multiply a concept's (or each of a group's) weights by a
        factor >= 0 (0 removes it). A concept may be scaled by only one entry.
    keep : str or list of str, default=None
        Keep only these concepts (or groups); every other weight is set to zero.
    groups : dict of str to list of str, default=None
        Named sets of concepts usable in ``remove``, ``scale`` and ``keep``, e.g.
        ``{"eyewear": ["glasses", "sunglasses", "goggles"]}``. Every member must be a
        concept. A group name that is also a concept name must include that concept.
    concepts : list of str, default=None
        Concept names, one per column of ``X``, for inputs that carry none (a plain
        ndarray, or a sparse matrix made by scipy operations), e.g.
        ``splice.get_feature_names_out()``.

    Attributes
    ----------
    multipliers_ : ndarray of shape (`n_features_in_`,)
        The factor applied to each column: 0 for removed (or not kept) concepts, the
        scale factor for scaled ones, 1 for the rest.
    concept_names_ : ndarray of shape (`n_features_in_`,) or None
        The concept names resolved at ``fit``; None when ``X`` carried none and no
        ``concepts`` were given (possible only without edits).
    n_features_in_ : int
        Number of features (concepts) seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string column names.

    See Also
    --------
    edit_embeddings : Edit the concepts of dense embeddings and reconstruct them.
    SpLiCETransformer : Produces the concept weights this editor edits.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice import ConceptEditor
    >>> W = np.array([[0.5, 0.2, 0.1], [0.0, 0.4, 0.3]])
    >>> editor = ConceptEditor(
    ...     remove=["glasses"], scale={"beach": 2.0},
    ...     concepts=["glasses", "beach", "dog"])
    >>> editor.fit_transform(W)
    array([[0. , 0.4, 0.1],
           [0. , 0.8, 0.3]])
    >>> ConceptEditor(keep=["pets"], groups={"pets": ["dog"]},
    ...               concepts=["glasses", "beach", "dog"]).fit(W).multipliers_
    array([0., 0., 1.])
    """

    _parameter_constraints = {
        "remove": [str, "array-like", None],
        "scale": [dict, None],
        "keep": [str, "array-like", None],
        "groups": [dict, None],
        "concepts": ["array-like", None],
    }
    # Parameters the fitted state depends on: changing one after fit asks for a refit.
    _state_params = ("remove", "scale", "keep", "groups", "concepts")

    def __init__(self, remove=None, scale=None, keep=None, groups=None, concepts=None):
        self.remove = remove
        self.scale = scale
        self.keep = keep
        self.groups = groups
        self.concepts = concepts

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Resolve the edits' concept names to one multiplier per column.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_concepts)
            Concept weights, e.g. the output of :meth:`SpLiCETransformer.transform`.
        y : None
            Ignored.

        Returns
        -------
        self : ConceptEditor
            The fitted editor.
        """
        carried = carried_names(X)
        with unchanged_on_error(self):
            X = self._validate(X, reset=True)
            names = resolve_names(
                carried, self.concepts, n_columns=X.shape[1], argument="concepts"
            )
            multipliers = _multipliers(
                names,
                X.shape[1],
                remove=_name_list(self.remove, "remove"),
                scale=_scale_factors(self.scale),
                keep=_name_list(self.keep, "keep"),
                groups=_group_members(self.groups),
            )
        self.concept_names_, self.multipliers_ = names, multipliers
        record_state_params(self)
        return self

    def transform(self, X):
        """Apply the edits.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_concepts)
            Concept weights with the columns seen in ``fit``.

        Returns
        -------
        X_edited : ndarray or sparse matrix of shape (n_samples, n_concepts)
            The edited weights, in ``X``'s precision. A sparse input keeps its
            format (CSR, CSC, COO, ...) and its kind (``scipy.sparse`` matrix or
            array), drops the zeroed entries and carries the concept names in a
            ``concept_names`` attribute. A DataFrame comes back as a DataFrame with
            ``set_output(transform="pandas")``.
        """
        check_is_fitted(self)
        check_state_params(self)
        carried = carried_names(X)
        sparse_format = X.format if sp.issparse(X) else None
        X = self._validate(X, reset=False)
        if carried is not None and self.concept_names_ is not None:
            check_same_names(self.concept_names_, carried, "fit", "X")
        edited = _scale_columns(X, self.multipliers_)
        if sparse_format is not None and edited.format != sparse_format:
            # Validation turned it into CSR to edit; give it back in the format it came in.
            edited = edited.asformat(sparse_format)
        if sp.issparse(edited) and self.concept_names_ is not None:
            attach_concept_names(edited, self.concept_names_)
        return edited

    def get_feature_names_out(self, input_features=None):
        """Concept names, unchanged: editing keeps every column.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against the names seen in ``fit``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``concept_names_``, or ``input_features`` / ``x0, x1, ...`` when the
            editor was fitted without names.
        """
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        if self.concept_names_ is None:
            return names
        if input_features is not None:
            check_same_names(self.concept_names_, names, "fit", "input_features")
        return self.concept_names_.copy()

    def _validate(self, X, *, reset):
        X = validate_data(
            self, X, reset=reset, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32]
        )
        check_non_negative(
            X,
            f"{type(self).__name__} (SpLiCE concept weights are non-negative: pass the "
            "output of SpLiCETransformer.transform, not embeddings)",
        )
        return X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def edit_embeddings(X, splice, *, remove=None, scale=None, keep=None, groups=None):
    """Edit the concepts of dense embeddings and reconstruct them, in one call.

    Decomposes ``X`` with a fitted SpLiCE transformer, applies a
    :class:`ConceptEditor` with the given edits, and maps the edited weights back to
    embeddings with :meth:`SpLiCETransformer.inverse_transform`. Use it to remove a
    concept from embeddings before a model that takes dense embeddings (a zero-shot
    classifier, a retrieval index).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings from the same model as ``splice``'s dictionary.
    splice : SpLiCETransformer
        A fitted transformer; its ``output`` setting is ignored (the edit always
        works on weights).
    remove : str or list of str, default=None
        Concepts (or groups) to remove, as in :class:`ConceptEditor`.
    scale : dict of str to float, default=None
        ``{name: factor}`` with factors >= 0, as in :class:`ConceptEditor`.
    keep : str or list of str, default=None
        Concepts (or groups) to keep, zeroing all others.
    groups : dict of str to list of str, default=None
        Named sets of concepts usable in ``remove``, ``scale`` and ``keep``.

    Returns
    -------
    X_edited : ndarray of shape (n_samples, n_features)
        Unit-norm reconstructions of the edited decompositions. Compare them with
        the unedited reconstructions (``splice.inverse_transform(splice.transform(X))``)
        to see the edit alone, apart from the decomposition's approximation error.

    See Also
    --------
    ConceptEditor : The edit, as a pipeline step on concept weights.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice import SpLiCETransformer, edit_embeddings
    >>> rng = np.random.default_rng(0)
    >>> names = ["beach", "dog", "office", "glasses"] + [f"w{i}" for i in range(36)]
    >>> splice = SpLiCETransformer(
    ...     l1=0.05, dictionary=rng.normal(size=(40, 16)), concept_names=names)
    >>> X = rng.normal(size=(5, 16))
    >>> edited = edit_embeddings(X, splice.fit(X), remove=["beach", "dog"])
    >>> edited.shape
    (5, 16)

    Decomposed again, the edited embeddings have (almost) lost both concepts:

    >>> before = splice.transform(X)[:, :2].sum()
    >>> after = splice.transform(edited)[:, :2].sum()
    >>> bool(after < 0.2 * before)
    True
    """
    check_is_fitted(splice)
    decomposer = copy.copy(splice).set_params(output="weights")
    W = decomposer.transform(X)
    editor = ConceptEditor(
        remove=remove,
        scale=scale,
        keep=keep,
        groups=groups,
        concepts=decomposer.get_feature_names_out(),
    )
    return decomposer.inverse_transform(editor.fit_transform(W))


# ----------------------------------------------------------------------- resolution


def _multipliers(names, n_columns, *, remove, scale, keep, groups):
    """One factor per column: keep, then scale, then remove."""
    multipliers = np.ones(n_columns)
    mentioned = [*remove, *scale, *keep, *groups]
    if not mentioned:
        return multipliers
    names = require_names(names, f"Editing concepts by name ({mentioned[0]!r}, ...)", "concepts")
    resolve = _Resolver(names, groups)
    resolve.check_unknown({"remove": remove, "scale": list(scale), "keep": keep})
    if keep:
        multipliers[:] = 0
        for name in keep:
            multipliers[resolve(name)] = 1
    scaled_by = {}
    for name, factor in scale.items():
        for column in resolve(name):
            if column in scaled_by:
                raise ValueError(
                    f"Concept {names[column]!r} is scaled by both {scaled_by[column]!r} and "
                    f"{name!r}; scale each concept by one entry only."
                )
            scaled_by[column] = name
        multipliers[resolve(name)] *= factor
    for name in remove:
        multipliers[resolve(name)] = 0
    return multipliers


class _Resolver:
    """Map a concept or group name to its column indices, with helpful errors."""

    def __init__(self, names, groups):
        self.columns = {name: i for i, name in enumerate(names)}
        self.groups = groups
        members = {f"groups[{g!r}]": names for g, names in groups.items()}
        self.check_unknown(members, groups_allowed=False)
        for group, members in groups.items():
            if group in self.columns and group not in members:
                raise ValueError(
                    f"Group {group!r} has the name of a concept but does not contain it, so "
                    f"{group!r} would be ambiguous; add {group!r} to its members or rename it."
                )

    def __call__(self, name):
        if name in self.groups:
            return [self.columns[member] for member in self.groups[name]]
        return [self.columns[name]]

    def check_unknown(self, names_by_argument, *, groups_allowed=True):
        candidates = [*self.columns, *self.groups] if groups_allowed else list(self.columns)
        problems = []
        for argument, names in names_by_argument.items():
            for name in names:
                if name in self.columns or (groups_allowed and name in self.groups):
                    continue
                close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
                hint = (
                    f"did you mean {', '.join(map(repr, close))}?" if close else "no close match"
                )
                problems.append(f"{name!r} in {argument} ({hint})")
        if problems:
            raise ValueError(
                f"Unknown concept names: {'; '.join(problems)}. Names match exactly "
                f"(case-sensitive) the {len(self.columns)} concepts of X"
                + (f" and the groups {sorted(self.groups)}" if self.groups else "")
                + "."
            )


def _name_list(value, argument):
    """A list of names from None, one name, or a collection of names."""
    if value is None:
        return []
    names = [value] if isinstance(value, str) else list(value)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(
                f"{argument} must hold concept names (str); got {name!r}. Column indices "
                "are not accepted: they shift whenever the vocabulary changes."
            )
    if argument == "keep" and not names:
        raise ValueError("keep=[] would zero every concept; use keep=None to keep them all.")
    return [str(name) for name in names]


def _scale_factors(scale):
    if scale is None:
        return {}
    for name, factor in scale.items():
        if not isinstance(name, str):
            raise TypeError(f"scale keys must be concept names (str); got {name!r}.")
        if isinstance(factor, bool) or not isinstance(factor, Real):
            raise TypeError(f"scale[{name!r}] must be a number; got {factor!r}.")
        if not math.isfinite(factor) or factor < 0:
            raise ValueError(
                f"scale[{name!r}] is {factor}; factors must be finite and >= 0, because "
                "SpLiCE concept weights are non-negative amounts (0 removes a concept)."
            )
    return {str(name): float(factor) for name, factor in scale.items()}


def _group_members(groups):
    if groups is None:
        return {}
    members = {}
    for group, names in groups.items():
        if not isinstance(group, str):
            raise TypeError(f"groups keys must be group names (str); got {group!r}.")
        # A member listed twice is still one concept (and is scaled once).
        members[str(group)] = list(dict.fromkeys(_name_list(names, f"groups[{group!r}]")))
        if not members[group]:
            raise ValueError(f"groups[{group!r}] is empty; a group needs at least one concept.")
    return members


# -------------------------------------------------------------------------- editing


def _scale_columns(X, multipliers):
    """A new matrix: column j of X times multipliers[j], in X's format and dtype."""
    multipliers = multipliers.astype(X.dtype)
    if not sp.issparse(X):
        return X * multipliers
    edited = X.copy()
    if edited.format == "csr":
        columns = edited.indices
    else:  # csc: entries are stored column after column
        columns = np.repeat(np.arange(edited.shape[1]), np.diff(edited.indptr))
    edited.data *= multipliers[columns]
    edited.eliminate_zeros()
    return edited
