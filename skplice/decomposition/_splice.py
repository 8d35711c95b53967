"""SpLiCETransformer: CLIP embeddings as sparse non-negative combinations of concepts."""

import os
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import (
    check_array,
    check_is_fitted,
    check_non_negative,
    validate_data,
)
from tqdm.auto import tqdm

from skplice.concepts._dictionary import build_dictionary
from skplice.concepts._names import check_concept_names
from skplice.decomposition._carried_names import attach_concept_names
from skplice.decomposition._preprocessing import (
    mean_of_unit_rows,
    process_concepts,
    process_embeddings,
    sum_of_unit_rows,
)
from skplice.decomposition._solvers import nonnegative_lasso
from skplice.embedding._model_tags import (
    check_same_model,
    clip_model_of,
    clip_model_of_encoder,
    tag,
    text_encoder_for,
)
from skplice.exceptions import SingleSampleMeanWarning
from skplice.utils._device import resolve_device
from skplice.utils._oom import ShrinkingBatches
from skplice.utils._pickle import _VersionedPickleMixin
from skplice.utils._refit import check_state_params, record_state_params
from skplice.utils._rollback import unchanged_on_error
from skplice.utils._rows import row_cosines, scaled_rows, unit_rows
from skplice.utils._sklearn_compat import (
    HasMethods,
    Interval,
    StrOptions,
    _check_feature_names_in,
    _fit_context,
    transform_output,
)
from skplice.utils._tensors import tensor_to_numpy

# The only vocabulary value that can go with a given dictionary (see _check_name_source).
_DEFAULT_VOCABULARY = "laion"


class SpLiCETransformer(_VersionedPickleMixin, TransformerMixin, BaseEstimator):
    """Decompose CLIP embeddings into sparse, non-negative concept weights (SpLiCE).

    Each embedding ``x`` is L2-normalised, centred by a mean image embedding
    ``image_mean_`` and normalised again, giving ``z``; its concept weights are
    the solution of the non-negative lasso

    ``w* = argmin_{w >= 0} ||components_.T @ w - z||^2 + l1 * ||w||_1``

    where the rows of ``components_`` are concept embeddings (CLIP text
    embeddings of a vocabulary), normalised, centred by their mean and
    normalised again. Centring on both sides closes CLIP's modality gap
    (Bhalla, Oesterling et al., "Interpreting CLIP with Sparse Linear Concept
    Embeddings (SpLiCE)", NeurIPS 2024).

    Parameters
    ----------
    l1 : float, default=0.2
        Sparsity penalty. Larger values give fewer concepts; on CLIP ViT-B-32
        with 10,000 LAION concepts, 0.2 gives roughly 10-30 non-zero concepts.
    vocabulary : str, path-like or sequence of str, default="laion"
        The concepts to encode when ``dictionary`` is None: a named vocabulary
        (see :func:`load_vocabulary`), a text file with one concept per line, or
        a list of concepts. Their names are the concept names. With a given
        ``dictionary`` it must be left at its default (name an array
        dictionary's rows with ``concept_names``).
    vocabulary_size : int or None, default=10000
        Number of concepts taken from a named vocabulary (the most frequent);
        files and lists are used whole.
    dictionary : array-like of shape (n_concepts, n_features), "identity" or None, \
            default=None
        Raw concept embeddings, named by ``concept_names``. None encodes
        ``vocabulary`` with ``encoder``. "identity" makes each input feature
        its own concept, named by the input's feature names (the dictionary
        is the identity matrix, used as is); it needs no model and is meant
        for tests and for inputs that are already concept scores.
    concept_names : array-like of str or None, default=None
        The names of the rows of an array ``dictionary``, one per row, in row
        order (stripped of surrounding whitespace, none empty, all distinct).
        None names them ``concept_0``, ``concept_1``, ... Only for an array
        ``dictionary``: with ``dictionary=None`` the names are the
        ``vocabulary``'s.
    encoder : object with an ``encode_text(list[str])`` method, default=None
        Text encoder used to embed ``vocabulary`` when ``dictionary`` is None.
        None uses the CLIP model that made ``X`` when ``X`` says so (the output
        of :class:`CLIPEmbedder` carries its model), else ``CLIPEmbedder()`` with
        its defaults; either runs on ``device`` and shares its model with the
        ``CLIPEmbedder`` earlier in the pipeline. A :class:`CLIPEmbedder` whose
        model differs from the one that made ``X`` is refused. The encoded
        dictionary is cached on disk (see :func:`skplice.encode_concepts`), so a
        second fit is instant.
    template : str or None, default=None
        Prompt template with exactly one empty ``{}`` field used to encode each
        concept (``{{`` and ``}}`` are literal braces), e.g.
        ``"a photo of {}"``; None encodes bare concepts, as the paper does.
    image_mean : array-like of shape (n_features,), "published" or None, default=None
        The mean image embedding that centres the inputs. None learns it in
        ``fit`` and ``partial_fit``: the mean of the L2-normalised embeddings, right
        for a large, varied training set. An array is used as given (e.g. the mean
        of a reference dataset). ``"published"`` uses the SpLiCE authors'
        published mean of the CLIP model (:func:`load_image_mean`; the model that
        made ``X``, else the ``encoder``'s, else the default ``CLIPEmbedder()``'s),
        right for explaining single images or narrow sets of images, as the paper
        does; models without one raise ValueError. A given or published mean is
        never updated by ``fit`` or ``partial_fit``. It is used as is: it is a
        mean of unit vectors, so it is not normalised again.
    center : bool, default=True
        Centre both the inputs (by ``image_mean_``) and the concept embeddings
        (by their mean), as in the paper. Without centring the sparse codes of
        CLIP image embeddings are poor, because images and texts occupy
        different cones of the embedding space.
    solver : {"auto", "active_set", "fista"}, default="auto"
        "active_set" solves small per-sample problems exactly and certifies
        them against the whole dictionary; "fista" is accelerated projected
        gradient, slower, kept as a cross-check. "auto" uses "active_set".
    max_iter : int or None, default=None
        Maximum working-set rounds ("active_set", default 100) or gradient
        iterations ("fista", default 20000) per sample.
    tol : float, default=1e-6
        A sample is solved when its optimality (KKT) violation is at most
        ``tol``: the largest ``|g_j|`` over active concepts and ``max(0, -g_j)``
        over inactive ones, where ``g = l1 - 2 * components_ @ (z - components_.T @ w)``.
    batch_size : int, default=1024
        Samples solved together. Memory grows as ``batch_size * n_concepts``;
        raise it on a GPU.
    device : str or None, default=None
        Torch device for the solver: "cpu", "cuda", "cuda:1", ... None means
        CUDA when available, else the CPU. Resolved at each call, never stored.
    sparse_output : bool, default=True
        Return a ``scipy.sparse.csr_matrix``; False returns a dense ndarray,
        which also works with ``set_output(transform="pandas")``. The sparse
        matrix carries its column names in a ``concept_names`` attribute, which
        a following :class:`ConceptEditor` reads (scipy operations that build a
        new matrix do not keep it).
    output : {"weights", "reconstruction"}, default="weights"
        What :meth:`transform` returns: the concept weights, or the embeddings'
        SpLiCE reconstructions (``inverse_transform`` of the weights: unit-norm,
        same width as the input). Reconstructions replace dense CLIP embeddings
        for any model that expects them, e.g. a zero-shot classifier; like the
        output of :class:`CLIPEmbedder`, they carry the CLIP model they belong to
        (``clip_model_``), so a :class:`ZeroShotClassifier` after this step
        encodes its prompts with that model.
    verbose : bool, default=False
        Show a progress bar counting the samples solved.

    Attributes
    ----------
    components_ : ndarray of shape (n_concepts, n_features)
        Normalised, centred, normalised concept embeddings.
    concept_names_ : ndarray of shape (n_concepts,), dtype=object
        Concept names, also given by :meth:`get_feature_names_out`.
    image_mean_ : ndarray of shape (n_features,)
        The mean image embedding that centres the inputs: the mean of the
        L2-normalised embeddings seen in ``fit`` / ``partial_fit``, or the
        ``image_mean`` given or published.
    image_mean_source_ : {"learned", "given", "published"}
        Where ``image_mean_`` came from: learned from ``X`` (``image_mean=None``),
        the array given, or the published mean of ``clip_model_``.
    clip_model_ : str or None
        The CLIP model the transformer works with, e.g.
        ``"ViT-B-32 laion2b_s34b_b79k"``: the one whose text tower encoded the
        concepts, or that made ``X``, or whose published mean is used. None when
        no CLIP model is known (a custom encoder or dictionary, and ``X`` without
        a model). Embeddings of another model are refused by :meth:`transform`.
    n_samples_seen_ : int
        Number of embeddings seen by ``fit`` / ``partial_fit``; ``image_mean_``
        averages them when it is learned.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string column names.

    See Also
    --------
    sklearn.decomposition.SparseCoder : Sparse coding against a fixed dictionary.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice import SpLiCETransformer
    >>> rng = np.random.default_rng(0)
    >>> concepts = rng.normal(size=(50, 16))   # 50 concept embeddings, 16-dim
    >>> names = [f"word{i}" for i in range(50)]
    >>> X = rng.normal(size=(8, 16))           # 8 embeddings to explain
    >>> splice = SpLiCETransformer(l1=0.3, dictionary=concepts, concept_names=names)
    >>> W = splice.fit_transform(X)
    >>> W.shape
    (8, 50)
    >>> bool((W.data > 0).all())
    True
    >>> splice.get_feature_names_out()[:3]
    array(['word0', 'word1', 'word2'], dtype=object)
    >>> splice.inverse_transform(W).shape
    (8, 16)
    """

    _parameter_constraints = {
        "l1": [Interval(Real, 0, None, closed="left")],
        "vocabulary": [str, os.PathLike, "array-like"],
        "vocabulary_size": [Interval(Integral, 1, None, closed="left"), None],
        "dictionary": ["array-like", StrOptions({"identity"}), None],
        "concept_names": ["array-like", None],
        "encoder": [HasMethods(["encode_text"]), None],
        "template": [str, None],
        "image_mean": ["array-like", StrOptions({"published"}), None],
        "center": ["boolean"],
        "solver": [StrOptions({"auto", "active_set", "fista"})],
        "max_iter": [Interval(Integral, 1, None, closed="left"), None],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, None],
        "sparse_output": ["boolean"],
        "output": [StrOptions({"weights", "reconstruction"})],
        "verbose": ["verbose"],
    }
    # Parameters the fitted state depends on: changing one after fit asks for a refit.
    _state_params = (
        "vocabulary",
        "vocabulary_size",
        "dictionary",
        "concept_names",
        "encoder",
        "template",
        "center",
        "image_mean",
    )

    def __init__(
        self,
        l1=0.2,
        *,
        vocabulary=_DEFAULT_VOCABULARY,
        vocabulary_size=10000,
        dictionary=None,
        concept_names=None,
        encoder=None,
        template=None,
        image_mean=None,
        center=True,
        solver="auto",
        max_iter=None,
        tol=1e-6,
        batch_size=1024,
        device=None,
        sparse_output=True,
        output="weights",
        verbose=False,
    ):
        self.l1 = l1
        self.vocabulary = vocabulary
        self.vocabulary_size = vocabulary_size
        self.dictionary = dictionary
        self.concept_names = concept_names
        self.encoder = encoder
        self.template = template
        self.image_mean = image_mean
        self.center = center
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.device = device
        self.sparse_output = sparse_output
        self.output = output
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the dictionary and learn (or load) the mean embedding used for centring.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings (e.g. CLIP image embeddings). Rows need not be normalised.
        y : None
            Ignored.

        Returns
        -------
        self : SpLiCETransformer
            The fitted transformer.

        Warns
        -----
        SingleSampleMeanWarning
            ``X`` holds one sample and the mean is learned from it (``image_mean=None``
            with ``center=True``): centring the sample by itself leaves nothing, so it
            gets no concept. Use ``image_mean="published"`` to explain one image.
        """
        with unchanged_on_error(self):
            X_model = clip_model_of(X)
            X = self._validate_embeddings(X, reset=True)
            fitted, mean = self._fit_fixed_parts(X.shape[1], X_model)
            if mean is None:
                mean = mean_of_unit_rows(X)
                if X.shape[0] == 1 and self.center:
                    _warn_single_sample()
        vars(self).update(fitted)
        self.image_mean_, self.n_samples_seen_ = mean, X.shape[0]
        record_state_params(self)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Update the mean embedding with a batch; the first call also builds the dictionary.

        Successive calls give the same ``image_mean_`` as one ``fit`` on the
        concatenated batches. A given or published ``image_mean`` is never
        changed; the calls then only count the samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of embeddings.
        y : None
            Ignored.

        Returns
        -------
        self : SpLiCETransformer
            The updated transformer.
        """
        first_call = not hasattr(self, "image_mean_")
        if not first_call:
            check_state_params(self)
        with unchanged_on_error(self):
            X_model = clip_model_of(X)
            if not first_call:
                check_same_model(self, X)
            X = self._validate_embeddings(X, reset=first_call)
            batch_sum = sum_of_unit_rows(X)
            if first_call:
                fitted, mean = self._fit_fixed_parts(X.shape[1], X_model)
        if first_call:
            vars(self).update(fitted)
            self.image_mean_ = batch_sum / X.shape[0] if mean is None else mean
            self.n_samples_seen_ = X.shape[0]
            record_state_params(self)
            return self
        total = self.n_samples_seen_ + X.shape[0]
        if getattr(self, "image_mean_source_", "learned") == "learned":
            self.image_mean_ = (self.image_mean_ * self.n_samples_seen_ + batch_sum) / total
        self.n_samples_seen_ = total
        return self

    def _unused_state_params(self):
        """State parameters that a given dictionary makes irrelevant (see skplice.utils._refit)."""
        return () if self.dictionary is None else ("vocabulary_size", "encoder", "template")

    def _fit_fixed_parts(self, n_features, X_model):
        """The fitted state that does not depend on X's values, and a fixed mean (or None).

        Returns ``(attributes, mean)``: ``components_``, ``concept_names_``,
        ``clip_model_`` and ``image_mean_source_``, and the given or published mean
        (None when it is learned). The mean is resolved before the concepts are
        encoded, so that a wrong or missing mean fails before the long part.
        """
        self._check_name_source()
        encoder, clip_model = self._concept_encoder(X_model)
        mean, source = None, "learned"
        if isinstance(self.image_mean, str):  # "published"
            clip_model = self._published_mean_model(clip_model)
            mean, source = _published_mean(clip_model), "published"
        elif self.image_mean is not None:
            mean, source = _check_image_mean(self.image_mean), "given"
        if mean is not None and mean.shape[0] != n_features:
            what = "image_mean"
            if source == "published":
                what = f"the published mean of {clip_model.label()}"
            raise ValueError(
                f"X has {n_features} features but {what} has {mean.shape[0]}: the mean "
                "must come from the model that embedded X."
            )
        components, names = self._build_dictionary(n_features, encoder)
        attributes = {
            "components_": components,
            "concept_names_": names,
            "clip_model_": None if clip_model is None else clip_model.label(),
            "_clip_model": clip_model,  # what transform compares X's model with
            "image_mean_source_": source,
        }
        return attributes, mean

    def _concept_encoder(self, X_model):
        """The encoder of the vocabulary (None with a given dictionary) and the CLIP model.

        The model is the encoder's when it is a CLIPEmbedder, else the one ``X``
        says made it (a :class:`~skplice.embedding._model_tags.ClipModel`), or None.
        """
        if self.dictionary is not None:
            return None, X_model
        return text_encoder_for(self.encoder, X_model, device=self.device)

    def _published_mean_model(self, clip_model):
        """The CLIP model whose published mean ``image_mean="published"`` means."""
        if clip_model is not None:
            return clip_model
        if self.encoder is None:
            from skplice.embedding._embedders import CLIPEmbedder

            return CLIPEmbedder()._clip_model()  # the default encoder's model
        clip_model = clip_model_of_encoder(self.encoder)
        if clip_model is None:
            raise ValueError(
                "image_mean='published' needs a CLIP model, but X does not say which "
                f"model made it and encoder is a {type(self.encoder).__name__}, not a "
                "CLIPEmbedder. Pass the mean itself: "
                "image_mean=skplice.load_image_mean(model, pretrained)."
            )
        return clip_model

    def _build_dictionary(self, n_features, encoder):
        """Return ``(components_, concept_names_)`` for inputs of ``n_features`` features."""
        if isinstance(self.dictionary, str):  # "identity"
            names = _check_feature_names_in(self, None)
            return np.eye(n_features), np.asarray(names, dtype=object)
        if self.dictionary is None:
            names, raw = build_dictionary(
                self.vocabulary,
                size=self.vocabulary_size,
                encoder=encoder,
                template=self.template,
                device=self.device,
            )
            names = check_concept_names(names, "vocabulary")
            if raw.shape[1] != n_features:
                raise ValueError(
                    f"X has {n_features} features but the encoder's text embeddings have "
                    f"{raw.shape[1]}: embed the images and the vocabulary with the same "
                    "model (e.g. the same CLIPEmbedder settings)."
                )
            return process_concepts(raw, names, center=self.center), names
        raw = check_array(
            self.dictionary,
            dtype=[np.float64, np.float32],
            copy=True,
            ensure_min_samples=0,
            input_name="dictionary",
        )
        if raw.shape[0] == 0:
            raise ValueError("The dictionary is empty: it needs at least one concept row.")
        if raw.shape[1] != n_features:
            raise ValueError(
                f"X has {n_features} features but the dictionary has {raw.shape[1]}: the "
                "concept embeddings and the inputs must come from the same CLIP model."
            )
        names = self._concept_names(raw.shape[0])
        return process_concepts(raw, names, center=self.center), names

    def _concept_names(self, n_concepts):
        """The names of an array dictionary's ``n_concepts`` rows."""
        if self.concept_names is None:
            return np.asarray([f"concept_{i}" for i in range(n_concepts)], dtype=object)
        names = check_concept_names(self.concept_names, "concept_names", strip=True)
        if names.shape[0] != n_concepts:
            raise ValueError(
                f"concept_names has {names.shape[0]} names but the dictionary has "
                f"{n_concepts} rows: pass one name per concept embedding, in the same order."
            )
        return names

    def _check_name_source(self):
        """Refuse names given where they have no use: each dictionary has one name source.

        ``vocabulary`` once also named an array dictionary's rows (any string giving
        ``concept_0``, ...); code written so is refused rather than silently renamed.
        """
        vocabulary_given = not (
            isinstance(self.vocabulary, str) and self.vocabulary == _DEFAULT_VOCABULARY
        )
        if self.dictionary is None:
            if self.concept_names is not None:
                raise ValueError(
                    "concept_names names the rows of an array dictionary, but dictionary is "
                    "None: the concepts and their names are then the vocabulary's. Pass the "
                    "concepts to encode as vocabulary=<list of names>, or their embeddings "
                    "as dictionary=<array> together with concept_names."
                )
        elif isinstance(self.dictionary, str):  # "identity"
            if self.concept_names is not None or vocabulary_given:
                given = "concept_names" if self.concept_names is not None else "vocabulary"
                raise ValueError(
                    f"{given} has no use with dictionary='identity': each input feature "
                    "is its own concept, named by the input's feature names (the columns "
                    f"of a DataFrame X, else x0, x1, ...). Leave {given} at its default."
                )
        elif vocabulary_given:
            if isinstance(self.vocabulary, (str, os.PathLike)):
                raise ValueError(
                    f"vocabulary={self.vocabulary!r} has no use with an array dictionary: "
                    "vocabulary is what to encode when dictionary is None. Leave it at "
                    "its default, and name the dictionary's rows with concept_names=<list "
                    "of names, one per row> (None names them concept_0, concept_1, ...)."
                )
            raise ValueError(
                "With an array dictionary, the names of its rows go in concept_names, not "
                "vocabulary (which is what to encode when dictionary is None): pass "
                "SpLiCETransformer(dictionary=..., concept_names=<the names, one per row>) "
                "and leave vocabulary at its default."
            )

    # ---------------------------------------------------------------- transform

    def transform(self, X):
        """Decompose embeddings into concept weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings from the same model as the dictionary.

        Returns
        -------
        W : scipy.sparse.csr_matrix or ndarray of shape (n_samples, n_concepts)
            Non-negative concept weights, in ``X``'s float precision (float32
            inputs give float32 weights). Dense when ``sparse_output=False``.
            With ``output="reconstruction"``: the reconstructed embeddings, an
            ndarray of shape (n_samples, n_features).
        """
        check_is_fitted(self)
        check_state_params(self)
        self._check_output_container()
        check_same_model(self, X)
        X = self._validate_embeddings(X, reset=False)
        (W,) = self._decompose(X, [self.l1])
        if self.output == "reconstruction":
            return self.inverse_transform(W)
        return W if self.sparse_output else W.toarray()

    def regularization_path(self, X, l1_values):
        """Concept weights of ``X`` for several sparsity penalties, solved together.

        Each penalty's solution warm-starts the next (in decreasing order of
        ``l1``, where supports grow), which is faster than one :meth:`transform`
        per value; the results are the same to the solver's tolerance. Use it to
        choose ``l1`` by the number of concepts or the reconstruction quality.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.
        l1_values : sequence of float
            Non-negative penalties, in any order.

        Returns
        -------
        weights : list of scipy.sparse.csr_matrix or ndarray
            One (n_samples, n_concepts) matrix per value of ``l1_values``, in the
            order given; dense when ``sparse_output=False``.

        Examples
        --------
        >>> import numpy as np
        >>> from skplice import SpLiCETransformer
        >>> rng = np.random.default_rng(0)
        >>> splice = SpLiCETransformer(dictionary=rng.normal(size=(50, 16)))
        >>> X = rng.normal(size=(8, 16))
        >>> path = splice.fit(X).regularization_path(X, [0.1, 0.3, 1.0])
        >>> [W.nnz for W in path]  # fewer concepts as l1 grows
        [109, 67, 8]
        """
        check_is_fitted(self)
        check_state_params(self)
        check_same_model(self, X)
        X = self._validate_embeddings(X, reset=False)
        message = (
            f"l1_values must be a non-empty sequence of finite values >= 0; got {l1_values!r}."
        )
        try:
            values = [float(v) for v in np.ravel(l1_values)]
        except (TypeError, ValueError) as exc:
            raise ValueError(message) from exc
        if not values or min(values) < 0 or not np.all(np.isfinite(values)):
            raise ValueError(message)
        order = np.argsort(values)[::-1]
        solved = self._decompose(X, [values[i] for i in order])
        path = [None] * len(values)
        for rank, i in enumerate(order):
            path[i] = solved[rank] if self.sparse_output else solved[rank].toarray()
        return path

    def _decompose(self, X, l1_values):
        """Solve validated ``X`` for each penalty in turn, warm-starting along the list.

        Returns one CSR matrix per penalty.
        """
        device = resolve_device(self.device)
        solver = "active_set" if self.solver == "auto" else self.solver
        dtype = torch.float32 if X.dtype == np.float32 else torch.float64
        C = torch.as_tensor(self.components_).to(device=device, dtype=dtype)
        mean = torch.as_tensor(self.image_mean_).to(device=device, dtype=dtype)
        blocks = [[] for _ in l1_values]
        not_converged = np.zeros(len(l1_values), dtype=int)

        def solve(start, stop):
            # A scaled copy per batch (see skplice.utils._rows): rows with huge or tiny entries
            # keep their direction; inputs may be read-only memmaps, which torch cannot wrap.
            batch = torch.from_numpy(scaled_rows(X[start:stop])).to(device)
            z = process_embeddings(batch, mean, center=self.center)
            codes, solved = None, []
            for l1 in l1_values:
                codes = nonnegative_lasso(
                    z, C, l1, solver=solver, tol=self.tol, max_iter=self.max_iter, init=codes
                )
                solved.append((_codes_to_csr(codes, C.shape[0], X.dtype), codes.converged))
            return solved

        # Out of device memory, a batch is halved and solved again (see skplice.utils._oom).
        batches = ShrinkingBatches(
            self.batch_size, what=f"{type(self).__name__} solver", device=device
        )
        progress = tqdm(total=X.shape[0], desc="SpLiCE", unit="sample", disable=not self.verbose)
        with progress:
            for start, stop, solved in batches.run(solve, X.shape[0]):
                for i, (W, converged) in enumerate(solved):
                    not_converged[i] += int((~converged).sum())
                    blocks[i].append(W)
                progress.update(stop - start)
        for l1, count in zip(l1_values, not_converged, strict=True):
            if count:
                warnings.warn(
                    f"{count} of {X.shape[0]} samples did not reach tol={self.tol} "
                    f"within max_iter={self.max_iter or 'default'} at l1={l1}; their "
                    "weights are feasible but not optimal. Increase max_iter or tol.",
                    ConvergenceWarning,
                    stacklevel=3,
                )
        empty = sp.csr_matrix((0, C.shape[0]), dtype=X.dtype)
        results = [sp.vstack(b, format="csr") if b else empty.copy() for b in blocks]
        for W in results:
            attach_concept_names(W, self.concept_names_)
        return results

    def inverse_transform(self, X):
        """Map concept weights back to (normalised) embeddings.

        The reconstruction is ``normalize(normalize(W @ components_) + image_mean_)``
        (without the mean when ``center=False``); a sample with no concept maps to
        the normalised mean embedding.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_concepts)
            Non-negative concept weights, e.g. the output of :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Unit-norm reconstructed embeddings.
        """
        check_is_fitted(self)
        check_state_params(self)
        W = check_array(X, accept_sparse=("csr", "csc", "coo"), dtype=[np.float64, np.float32])
        check_non_negative(W, f"{type(self).__name__}.inverse_transform{_WEIGHTS_HINT}")
        if W.shape[1] != self.components_.shape[0]:
            raise ValueError(
                f"X has {W.shape[1]} columns but this transformer has "
                f"{self.components_.shape[0]} concepts."
            )
        # Rows of W scaled by powers of two (exact; W's scale does not matter): huge
        # weights would overflow the product.
        recon = np.asarray(scaled_rows(W) @ self.components_.astype(W.dtype, copy=False))
        recon = _unit_rows(recon, allow_zero=True)
        if self.center:
            recon = _unit_rows(recon + self.image_mean_.astype(W.dtype), allow_zero=True)
        # Embeddings of the fitted CLIP model: a ZeroShotClassifier after this step
        # encodes its prompts with that model (see skplice.embedding._model_tags).
        clip_model = getattr(self, "_clip_model", None)
        return recon if clip_model is None else tag(recon, clip_model)

    def score_samples(self, X, *, weights=None, centred=False):
        """Cosine similarity between each embedding and its SpLiCE reconstruction.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.
        weights : {array-like, sparse matrix} of shape (n_samples, n_concepts), \
default=None
            The concept weights of ``X`` that :meth:`transform` returned (with
            ``output="weights"``), to score them without solving again. None
            decomposes ``X`` here.
        centred : bool, default=False
            False compares each embedding with its reconstruction
            (:meth:`inverse_transform` of its weights), as :meth:`score` and
            :func:`~skplice.sparsity_sweep` do. True compares the two sides of the
            approximation instead: the centred embedding (its unit vector minus
            ``image_mean_``) and the weighted sum of its concepts
            (``W @ components_``). The mean, shared by both sides of the first
            comparison, is left out, so a sample with no concept gets 0 rather than
            a cosine close to 1: it says how much of the sample its concepts
            explain. Without centring (``center=False``) both are the same.

        Returns
        -------
        scores : ndarray of shape (n_samples,), dtype float64
            Cosines in [-1, 1]; higher means a more faithful decomposition.

        See Also
        --------
        score : The mean of these cosines (with ``centred=False``).

        Examples
        --------
        >>> import numpy as np
        >>> from skplice import SpLiCETransformer
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(8, 16)) + 2
        >>> splice = SpLiCETransformer(dictionary=rng.normal(size=(50, 16))).fit(X)
        >>> splice.score_samples(X).shape
        (8,)
        >>> bool(splice.score_samples(X).mean() == splice.score(X))
        True
        >>> W = splice.transform(X)
        >>> bool((splice.score_samples(X, weights=W) == splice.score_samples(X)).all())
        True
        >>> splice.set_params(l1=1e6).score_samples(X, centred=True)  # no concept at all
        array([0., 0., 0., 0., 0., 0., 0., 0.])
        """
        check_is_fitted(self)
        check_state_params(self)
        check_same_model(self, X)
        X = self._validate_embeddings(X, reset=False)
        if weights is None:
            # The weights themselves, whatever `output` makes transform return.
            (W,) = self._decompose(X, [self.l1])
        else:
            W = check_array(weights, accept_sparse="csr", dtype=(np.float64, np.float32))
            expected = (X.shape[0], self.components_.shape[0])
            if W.shape != expected:
                raise ValueError(
                    f"weights has shape {W.shape} but X's concept weights have shape "
                    f"{expected}: pass what transform(X) returned with output='weights'."
                )
        return reconstruction_cosines(self, X, W, centred=centred)

    def score(self, X, y=None):
        """Mean cosine similarity between embeddings and their SpLiCE reconstructions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean cosine similarity, in [-1, 1]; higher means a more faithful
            decomposition: the mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))

    def get_feature_names_out(self, input_features=None):
        """Concept names, one per output column.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against the names seen in ``fit``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The concept names (``concept_names_``); with
            ``output="reconstruction"``, the input feature names.
        """
        check_is_fitted(self)
        input_names = _check_feature_names_in(self, input_features)
        if self.output == "reconstruction":
            return input_names
        return self.concept_names_.copy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # --------------------------------------------------------------- validation

    def _validate_embeddings(self, X, *, reset):
        # C order: numpy's and torch's reductions sum in an order that depends on the
        # memory layout, so a Fortran-ordered X (e.g. from a DataFrame) would otherwise
        # give results that differ in the last bits.
        X = tensor_to_numpy(X)  # e.g. float16/bfloat16 embeddings straight from a GPU model
        X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32], order="C")
        zero = np.flatnonzero(~np.any(X != 0, axis=1))
        if zero.size:
            raise ValueError(
                f"X has {zero.size} all-zero rows (first: {zero[:5].tolist()}); a zero "
                "vector has no direction to decompose. Remove them or check the "
                "embedding step that produced them."
            )
        return X

    def _check_output_container(self):
        """Refuse pandas/polars output for sparse results before doing any work."""
        if not self.sparse_output or self.output == "reconstruction":
            return
        container = transform_output(self)
        if container in ("pandas", "polars"):
            raise ValueError(
                f"{type(self).__name__}(sparse_output=True) returns a scipy sparse "
                f"matrix, which {container} output cannot hold. Set sparse_output=False "
                "for a dense result, or use set_output(transform='default')."
            )


# Appended to scikit-learn's "Negative values in data passed to <whom>".
_WEIGHTS_HINT = (
    " (SpLiCE concept weights are non-negative: pass the output of transform, not "
    "embeddings or edited weights with negative entries)"
)

_unit_rows = unit_rows  # rows scaled to unit L2 norm, without overflow or underflow


def reconstruction_cosines(splice, X, W, *, centred=False):
    """Per-sample cosines of validated embeddings ``X`` and their weights ``W``.

    The one computation behind :meth:`SpLiCETransformer.score_samples` and
    :func:`~skplice.sparsity_sweep` (which has the weights of several penalties).
    """
    if centred:
        z = unit_rows(np.asarray(X, dtype=np.float64))
        if splice.center:
            z = z - splice.image_mean_
        return row_cosines(z, np.asarray(W @ splice.components_))
    return row_cosines(X, splice.inverse_transform(W))


def _check_image_mean(image_mean):
    """A given ``image_mean`` as a float64 copy of shape (n_features,)."""
    mean = check_array(
        tensor_to_numpy(image_mean),
        ensure_2d=False,
        dtype=np.float64,
        copy=True,
        input_name="image_mean",
    )
    if mean.ndim != 1:
        raise ValueError(
            f"image_mean must be a 1-D array of shape (n_features,); got shape {mean.shape}."
        )
    return mean


def _published_mean(clip_model):
    from skplice.concepts._image_means import describe_published, has_image_mean, load_image_mean

    if not has_image_mean(clip_model.model, clip_model.pretrained):
        raise ValueError(
            f"image_mean='published': the SpLiCE authors published no mean image embedding "
            f"for {clip_model.label()}; they did for {describe_published()}. Use "
            "image_mean=None to learn the mean from X, or pass a mean as an array."
        )
    return load_image_mean(clip_model.model, clip_model.pretrained)


def _warn_single_sample():
    warnings.warn(
        "SpLiCETransformer was fitted on a single sample with image_mean=None: the mean "
        "it learns is that sample, so centring leaves nothing to decompose and the "
        "sample gets no concept. To explain one image, use image_mean='published' (the "
        "published mean of its CLIP model) or a mean as an array, or fit on many images.",
        SingleSampleMeanWarning,
        stacklevel=4,
    )


def _codes_to_csr(codes, n_concepts, dtype):
    """Turn solver output (padded rows on any device) into a canonical CSR matrix."""
    values = codes.values.cpu().numpy().astype(dtype, copy=False)
    indices = codes.indices.cpu().numpy()
    keep = values > 0
    counts = keep.sum(axis=1)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    W = sp.csr_matrix((values[keep], indices[keep], indptr), shape=(values.shape[0], n_concepts))
    W.sort_indices()
    return W
