"""Concept dictionaries: a vocabulary encoded by a text encoder, cached on disk."""

import hashlib
import io
import json
import warnings

import numpy as np

from skplice._files import write_atomic
from skplice._home import get_data_home
from skplice.vocabulary import NAMED_VOCABULARIES, load_vocabulary

# Bump when the cached content or its layout changes: old files are then ignored.
_CACHE_FORMAT = 1


def build_dictionary(
    vocabulary="laion", *, size=10000, encoder=None, template=None, device=None, data_home=None
):
    """Concept names and their raw embeddings, as ``SpLiCETransformer`` builds them.

    Parameters
    ----------
    vocabulary : str, path-like or sequence of str, default="laion"
        A named vocabulary, a text file (one concept per line) or a list of names
        (see :func:`~skplice.load_vocabulary`).
    size : int or None, default=10000
        Number of concepts taken from a *named* vocabulary (the most frequent);
        files and lists are used whole.
    encoder : object with an ``encode_text`` method, default=None
        None uses :class:`~skplice.CLIPEmbedder` with its defaults (ViT-B-32,
        LAION-2B weights) on ``device``.
    template : str or None, default=None
        Prompt template with one ``{}``; None encodes bare concepts, as the paper does.
    device : str or None, default=None
        Device of the default encoder.
    data_home : str or path-like, default=None
        Cache folder for vocabularies and dictionaries.

    Returns
    -------
    names : list of str
        The concept names.
    embeddings : ndarray of shape (n_concepts, n_features), dtype float32
        Their raw embeddings (see :func:`encode_concepts`).

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.dictionary import build_dictionary
    >>> class Letters:  # a toy encoder: letter counts
    ...     def encode_text(self, texts):
    ...         return np.array([[t.count(c) for c in "aeiou"] for t in texts], float)
    >>> names, embeddings = build_dictionary(["dog", "beach"], encoder=Letters())
    >>> names, embeddings.shape
    (['dog', 'beach'], (2, 5))
    """
    named = isinstance(vocabulary, str) and vocabulary in NAMED_VOCABULARIES
    names = load_vocabulary(vocabulary, size=size if named else None, data_home=data_home)
    if encoder is None:
        from skplice.embedding import CLIPEmbedder

        encoder = CLIPEmbedder(device=device)
    return names, encode_concepts(names, encoder, template=template, data_home=data_home)


def encode_concepts(concepts, encoder, *, template=None, data_home=None):
    """Embed concept names with a text encoder, caching the result on disk.

    The raw embeddings are what :class:`~skplice.SpLiCETransformer` turns into
    its ``components_`` (normalised, centred, normalised again). The paper encodes
    each concept as is, with no prompt template.

    Parameters
    ----------
    concepts : sequence of str
        Concept names, e.g. from :func:`~skplice.load_vocabulary`.
    encoder : object with an ``encode_text(list[str])`` method
        E.g. :class:`~skplice.CLIPEmbedder` (its text tower) or
        :class:`~skplice.TextEmbedder`.
    template : str or None, default=None
        A prompt template with one ``{}`` placeholder for the concept, e.g.
        ``"a photo of {}"``; None encodes the bare concept.
    data_home : str or path-like, default=None
        Cache folder (default: ``SKPLICE_HOME``, else ``~/.cache/skplice``).

    Returns
    -------
    embeddings : ndarray of shape (n_concepts, n_features), dtype float32
        One row per concept, in order.

    Notes
    -----
    Results are cached as ``<data_home>/dictionaries/<sha256>.npy``, where the hash
    covers the concept names themselves (not a vocabulary's name or size), the
    template and the encoder's identity (model, weights or their checksum,
    precision): a second fit with the same vocabulary and model is instant, and any
    change gives a new file. Encoders without a ``_encoder_identity`` method (any
    object with ``encode_text``) are not cached. Cached files are plain ``.npy``
    arrays, loaded without pickle; a damaged one is recomputed.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.dictionary import encode_concepts
    >>> class Letters:  # a toy encoder: letter counts
    ...     def encode_text(self, texts):
    ...         return np.array([[t.count(c) for c in "aeiou"] for t in texts], float)
    >>> encode_concepts(["banana", "kiwi"], Letters())
    array([[3., 0., 0., 0., 0.],
           [0., 0., 2., 0., 0.]], dtype=float32)
    """
    concepts = [str(c) for c in concepts]
    if template is not None and template.count("{}") != 1:
        raise ValueError(
            f"template={template!r} must contain exactly one '{{}}' where the concept goes, "
            "e.g. 'a photo of {}'."
        )
    identity = getattr(encoder, "_encoder_identity", None)
    path = None
    if identity is not None:
        key = json.dumps(
            {
                "format": _CACHE_FORMAT,
                "encoder": identity(),
                "template": template,
                "concepts": concepts,
            },
            ensure_ascii=False,
        )
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        folder = get_data_home(data_home) / "dictionaries"
        folder.mkdir(exist_ok=True)
        path = folder / f"{digest}.npy"
        cached = _read_cached(path, len(concepts))
        if cached is not None:
            return cached
    texts = concepts if template is None else [template.format(c) for c in concepts]
    embeddings = np.asarray(encoder.encode_text(texts), dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(concepts):
        raise ValueError(
            f"{type(encoder).__name__}.encode_text returned shape {embeddings.shape} for "
            f"{len(concepts)} texts; expected one row per text."
        )
    if not np.isfinite(embeddings).all():
        raise ValueError(
            f"{type(encoder).__name__}.encode_text returned non-finite values; check the "
            "model's precision setting and weights."
        )
    if path is not None:
        buffer = io.BytesIO()
        np.save(buffer, embeddings, allow_pickle=False)
        write_atomic(path, buffer.getvalue())
    return embeddings


def _read_cached(path, n_concepts):
    """A cached embedding matrix, or None when absent or unusable (which is removed)."""
    if not path.exists():
        return None
    try:
        embeddings = np.load(path, allow_pickle=False)
        valid = (
            embeddings.ndim == 2
            and embeddings.shape[0] == n_concepts
            and embeddings.dtype == np.float32
            and np.isfinite(embeddings).all()
        )
    except (OSError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
    else:
        if valid:
            return embeddings
        reason = f"array of shape {embeddings.shape} and dtype {embeddings.dtype}"
    warnings.warn(
        f"Ignoring the damaged concept-dictionary cache file {path} ({reason}); recomputing it.",
        stacklevel=3,
    )
    path.unlink(missing_ok=True)
    return None
