"""Concept dictionaries: a vocabulary encoded by a text encoder, cached on disk."""

import hashlib
import json
import shutil
import warnings

import numpy as np

from skplice.concepts._templates import parse_template
from skplice.concepts._vocabulary import NAMED_VOCABULARIES, load_vocabulary
from skplice.utils._files import atomic_writer, non_regular_kind
from skplice.utils._home import cache_folder, warn_cache_disabled

# Bump when the cached content or its layout changes: old files are then ignored.
# 2: an .npz archive holding the key's digest and the embeddings' sha256.
_CACHE_FORMAT = 2


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
    >>> from skplice.concepts._dictionary import build_dictionary
    >>> class Letters:  # a toy encoder: letter counts
    ...     def encode_text(self, texts):
    ...         return np.array([[t.count(c) for c in "aeiou"] for t in texts], float)
    >>> names, embeddings = build_dictionary(["dog", "beach"], encoder=Letters())
    >>> names, embeddings.shape
    (['dog', 'beach'], (2, 5))
    """
    if template is not None:
        parse_template(template)  # a typo fails before any download
    named = isinstance(vocabulary, str) and vocabulary in NAMED_VOCABULARIES
    names = load_vocabulary(vocabulary, size=size if named else None, data_home=data_home)
    if encoder is None:
        from skplice.embedding._embedders import CLIPEmbedder

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
        A prompt template with exactly one empty ``{}`` field for the concept, e.g.
        ``"a photo of {}"`` (``{{`` and ``}}`` are literal braces); None encodes the
        bare concept.
    data_home : str or path-like, default=None
        Cache folder (default: ``SKPLICE_HOME``, else ``~/.cache/skplice``).

    Returns
    -------
    embeddings : ndarray of shape (n_concepts, n_features), dtype float32
        One row per concept, in order.

    Notes
    -----
    Results are cached as ``<data_home>/dictionaries/<sha256>.npz``, where the hash
    covers the concept names themselves (not a vocabulary's name or size), the
    template and the encoder's identity (model, weights or their checksum,
    precision): a second fit with the same vocabulary and model is instant, and any
    change gives a new file. Encoders without a ``_encoder_identity`` method (any
    object with ``encode_text``) are not cached. Cached files are NumPy archives,
    loaded without pickle, that hold the sha256 of their array: an entry that cannot
    be read, fails that check or belongs to another key is removed with a warning
    and recomputed. When the cache folder cannot be written, a warning says so once
    and the embeddings are computed without being stored.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.concepts._dictionary import encode_concepts
    >>> class Letters:  # a toy encoder: letter counts
    ...     def encode_text(self, texts):
    ...         return np.array([[t.count(c) for c in "aeiou"] for t in texts], float)
    >>> encode_concepts(["banana", "kiwi"], Letters())
    array([[3., 0., 0., 0., 0.],
           [0., 0., 2., 0., 0.]], dtype=float32)
    """
    concepts = [str(c) for c in concepts]
    prompt = None if template is None else parse_template(template)
    identity = getattr(encoder, "_encoder_identity", None)
    entry = None
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
        entry = _CacheEntry(hashlib.sha256(key.encode("utf-8")).hexdigest(), data_home)
        cached = entry.read(len(concepts))
        if cached is not None:
            return cached
        entry.warn_if_unwritable()  # before the encoding, which may take minutes
    texts = concepts if prompt is None else [prompt.fill(c) for c in concepts]
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
    if entry is not None:
        entry.write(embeddings)
    return embeddings


class _CacheEntry:
    """One cached dictionary: ``<data_home>/dictionaries/<key digest>.npz``.

    The archive holds the embeddings, the digest of the key they were computed for and
    the sha256 of their bytes, so a file that is unreadable, altered or copied from
    another entry is noticed, removed with a warning and recomputed. A folder that
    cannot be written disables the cache with one warning; the result is still returned.
    """

    def __init__(self, key_digest, data_home):
        self.key_digest = key_digest
        self.folder = cache_folder("dictionaries", data_home)
        self.path = self.folder.path / f"{key_digest}.npz"
        self.writable = self.folder.unwritable is None

    def read(self, n_concepts):
        """The cached embeddings, or None when absent or damaged (a damaged file is removed)."""
        try:
            kind = non_regular_kind(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:  # e.g. a folder on the way that cannot be searched
            self._disable(f"{type(exc).__name__}: {exc.strerror}")
            return None
        reason = kind and f"it is {kind}"
        if reason is None:
            try:
                embeddings, reason = self._load(n_concepts)
            except Exception as exc:  # any unreadable entry is damage, never a failed fit
                reason = f"{type(exc).__name__}: {exc}"
            if reason is None:
                return embeddings
        self._remove_damaged(reason)
        return None

    def _load(self, n_concepts):
        """``(embeddings, None)`` for a sound entry, else ``(None, why it is not)``."""
        loaded = np.load(self.path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            return None, "a plain array, not a skplice dictionary archive"
        with loaded as archive:
            embeddings = archive["embeddings"]
            key_digest, digest = str(archive["key"][()]), str(archive["sha256"][()])
        if key_digest != self.key_digest:
            return None, "it belongs to another vocabulary or encoder"
        if digest != _array_digest(embeddings):
            return None, "its sha256 does not match its content"
        if embeddings.ndim != 2 or embeddings.shape[0] != n_concepts:
            return None, f"array of shape {embeddings.shape}"
        if embeddings.dtype != np.float32 or not np.isfinite(embeddings).all():
            return None, f"array of dtype {embeddings.dtype} with non-finite values"
        return embeddings, None

    def _remove_damaged(self, reason):
        message = f"Ignoring the damaged concept-dictionary cache file {self.path} ({reason})"
        try:
            if self.path.is_dir() and not self.path.is_symlink():
                shutil.rmtree(self.path)
            else:
                self.path.unlink(missing_ok=True)  # another process may have removed it
        except OSError as exc:
            self.writable = False  # a file that cannot be removed cannot be replaced
            message += f"; it could not be removed ({type(exc).__name__}: {exc.strerror})"
        warnings.warn(message + "; recomputing it.", stacklevel=4)

    def warn_if_unwritable(self):
        if not self.writable:
            warn_cache_disabled(self.folder.path, self.folder.unwritable, stacklevel=3)

    def write(self, embeddings):
        """Store ``embeddings`` atomically; a failed write only disables the cache."""
        if not self.writable:
            return
        try:
            with atomic_writer(self.path) as file:
                np.savez(
                    file,
                    embeddings=embeddings,
                    key=np.array(self.key_digest),
                    sha256=np.array(_array_digest(embeddings)),
                )
        except OSError as exc:  # read-only, full disk, ...: the result is still good
            self._disable(f"{type(exc).__name__}: {exc.strerror or exc}")

    def _disable(self, reason):
        self.writable = False
        warn_cache_disabled(self.folder.path, reason, stacklevel=4)


def _array_digest(array):
    """sha256 of an array's dtype, shape and bytes."""
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()
