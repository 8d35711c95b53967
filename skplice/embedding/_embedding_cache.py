"""An opt-in on-disk cache of embeddings, one file per input, keyed by content and encoder.

``CLIPEmbedder(memory=...)`` and ``TextEmbedder(memory=...)`` look every input up here
before running their model, so a grid search whose folds share images embeds each image
once, and a second run of a script embeds nothing. An entry is found by

- the encoder's identity (architecture and its configuration, weights by tag or content
  hash, precision, ``normalize``; see ``_encoder_identity``), which names a folder, and
- the input's content: the bytes of a file (a path and encoded bytes with the same
  content share an entry), an array's dtype, shape and bytes, a PIL image's pixels after
  the RGB conversion every image goes through, a text's characters.

The device and the batch size are not part of the key: they change an embedding by
float rounding only, so fp32 results from a CPU and from a GPU share entries (whichever
was computed first is returned). The precision is part of it.

Entries are ``.npy`` files of one float32 row, read with ``allow_pickle=False``, written
atomically (:func:`skplice.utils._files.write_atomic`) so that concurrent processes (a
parallel grid search) only ever see complete files; when two workers compute the same
missing entry, both write a valid one and the last write stays. An entry that cannot
be read, or whose shape, dtype, values or norm are not what the encoder produces, is
removed and recomputed, with a warning. Inputs that cannot be loaded are never cached:
with ``on_error="skip"`` they are retried, and skipped again, on every call.
"""

import hashlib
import io
import os
import sys
import threading
import warnings
from collections import namedtuple
from pathlib import Path

import numpy as np

from skplice.embedding._images import load_rgb
from skplice.utils._files import non_regular_kind, write_atomic

#: Bump when the key or the entry layout changes, or when images are decoded differently:
#: entries of another format then live in another folder and are never read.
CACHE_FORMAT = 1
#: Folder created inside the ``memory`` location.
FOLDER_NAME = "skplice-embeddings"
_ENCODED = (bytes, bytearray, memoryview)
_CHUNK = 1 << 20
_MAX_LISTED = 5

#: Counts for this process; see :func:`skplice.embedding.embedding_cache_info`.
CacheInfo = namedtuple("CacheInfo", ["hits", "misses", "writes", "damaged"])
_COUNTS = dict.fromkeys(CacheInfo._fields, 0)
_COUNTS_LOCK = threading.Lock()


def info():
    """The process-wide counts since the process started, as a :class:`CacheInfo`."""
    with _COUNTS_LOCK:
        return CacheInfo(**_COUNTS)


def _count(**increments):
    with _COUNTS_LOCK:
        for name, value in increments.items():
            _COUNTS[name] += value


def cache_location(memory):
    """The folder that ``memory`` names, or None when it disables caching.

    ``memory`` is None, a path, or an object with a ``location`` attribute such as
    :class:`joblib.Memory` (``joblib.Memory(None)`` disables caching, as in joblib).
    """
    if memory is None:
        return None
    if isinstance(memory, (str, os.PathLike)):
        return Path(memory).expanduser()
    if not hasattr(memory, "location"):
        raise TypeError(
            f"memory={memory!r} has no location: pass None, a folder path, or a "
            "joblib.Memory whose location is a folder."
        )
    location = memory.location
    if location is None:
        return None
    if not isinstance(location, (str, os.PathLike)):
        raise TypeError(
            f"memory={memory!r} has location {location!r}, not a folder path: embeddings "
            "are cached as files, so pass a folder path or a joblib.Memory on a folder."
        )
    return Path(location).expanduser()


def open_cache(memory, identity, dim, normalize):
    """An :class:`EmbeddingCache` for one call, or None when ``memory`` disables caching."""
    location = cache_location(memory)
    if location is None:
        return None
    return EmbeddingCache(location, identity, dim, normalize)


class EmbeddingCache:
    """The entries of one encoder in one cache folder, for the duration of one call.

    Collects the damaged entries and failed writes it meets and reports them in one
    warning each from :meth:`report`, which the caller runs at the end of its call.
    """

    def __init__(self, location, identity, dim, normalize):
        key = f"{FOLDER_NAME}/{CACHE_FORMAT}\n{identity}"
        self.folder = location / FOLDER_NAME / hashlib.sha256(key.encode()).hexdigest()[:32]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(
                f"Cannot create the embedding cache folder {self.folder} (memory="
                f"{os.fspath(location)!r}): {type(exc).__name__}: {exc}. Pass a writable "
                "folder, or memory=None to embed without a cache."
            ) from exc
        self._describe(identity)
        self.dim = int(dim)
        self.normalize = bool(normalize)
        self.damaged = []
        self.failed_writes = []

    def _describe(self, identity):
        """Write the encoder's identity beside its entries once, for people and tools."""
        path = self.folder / "encoder.txt"
        if not path.exists():
            try:
                write_atomic(path, f"{identity}\n".encode(), durable=False)
            except OSError:
                pass  # a read-only cache is still usable; entries are written separately

    def _path(self, key):
        return self.folder / key[:2] / f"{key}.npy"

    def lookup(self, keys, out):
        """Fill ``out[i]`` from the entry of ``keys[i]``; return a boolean mask of the hits.

        None keys (inputs without a usable content, e.g. a missing file) are misses.
        """
        found = np.zeros(len(keys), dtype=bool)
        for i, key in enumerate(keys):
            if key is not None:
                row = self._read(self._path(key))
                if row is not None:
                    out[i] = row
                    found[i] = True
        hits = int(found.sum())
        _count(hits=hits, misses=len(keys) - hits)
        return found

    def _read(self, path):
        try:
            row = np.load(path, allow_pickle=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError, EOFError) as exc:
            return self._damaged(path, f"{type(exc).__name__}: {exc}")
        if row.shape != (self.dim,) or row.dtype != np.float32:
            return self._damaged(path, f"array of shape {row.shape} and dtype {row.dtype}")
        if not np.isfinite(row).all():
            return self._damaged(path, "non-finite values")
        if self.normalize and abs(float(np.linalg.norm(row)) - 1.0) > 1e-3:
            return self._damaged(path, f"norm {np.linalg.norm(row):.6g}, expected 1")
        return row

    def _damaged(self, path, reason):
        self.damaged.append((path, reason))
        _count(damaged=1)
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # the recomputed entry replaces it, or its failed write is reported
        return None

    def store(self, keys, rows):
        """Write one entry per non-None key; failures are reported by :meth:`report`."""
        written = 0
        for key, row in zip(keys, rows, strict=True):
            if key is None:
                continue
            path = self._path(key)
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(row, dtype=np.float32), allow_pickle=False)
            try:
                path.parent.mkdir(exist_ok=True)
                write_atomic(path, buffer.getvalue(), durable=False)
            except OSError as exc:
                self.failed_writes.append((path, f"{type(exc).__name__}: {exc}"))
            else:
                written += 1
        _count(writes=written)

    def report(self, stacklevel):
        """Warn once about the damaged entries and once about the failed writes of this call."""
        if self.damaged:
            warnings.warn(
                f"Ignored {len(self.damaged)} damaged embedding cache entries in "
                f"{self.folder} and recomputed them: {_listing(self.damaged)}",
                stacklevel=stacklevel + 1,
            )
        if self.failed_writes:
            warnings.warn(
                f"Could not write {len(self.failed_writes)} embedding cache entries in "
                f"{self.folder}; they will be computed again next time: "
                f"{_listing(self.failed_writes)}",
                stacklevel=stacklevel + 1,
            )


def _listing(problems):
    shown = "; ".join(f"{path.name} ({reason})" for path, reason in problems[:_MAX_LISTED])
    more = len(problems) - _MAX_LISTED
    return shown + (f"; and {more} more" if more > 0 else "")


def deduplicate(keys, positions):
    """Split ``positions`` into those to compute and ``(position, source)`` copies.

    A position whose key equals an earlier one's (the same image twice in one call) is
    copied from that first position instead of being computed again.
    """
    first, compute, copies = {}, [], []
    for i in map(int, positions):
        key = keys[i]
        if key is None:
            compute.append(i)
        elif key in first:
            copies.append((i, first[key]))
        else:
            first[key] = i
            compute.append(i)
    return np.asarray(compute, dtype=np.int64), copies


# -- keys -------------------------------------------------------------------------------


def text_key(text):
    """The key of a text: its characters (lone surrogates included)."""
    return hashlib.sha256(b"text\0" + text.encode("utf-8", "surrogatepass")).hexdigest()


def image_key(item):
    """The key of an image input, or None when its content cannot be read (never cached).

    Files and encoded bytes are keyed by their bytes (the same key for both), arrays by
    dtype, shape and bytes, PIL images by their pixels after ``load_rgb`` (which applies
    the EXIF orientation, palette and transparency the embedding sees).
    """
    if isinstance(item, (str, os.PathLike)):
        return _file_key(item)
    if isinstance(item, _ENCODED):
        digest = _encoded_digest()
        digest.update(bytes(item))
        return digest.hexdigest()
    if isinstance(item, np.ndarray):
        if item.dtype.hasobject:
            return None
        digest = hashlib.sha256(f"array\0{item.dtype.str}\0{item.shape}\0".encode())
        digest.update(np.ascontiguousarray(item).data)
        return digest.hexdigest()
    pil = sys.modules.get("PIL.Image")  # not imported: the item cannot be a PIL image
    if pil is not None and isinstance(item, pil.Image):
        try:
            rgb = load_rgb(item, 0)
        except Exception:  # the loader reports it, with its position, on the miss path
            return None
        digest = hashlib.sha256(f"rgb\0{rgb.size}\0".encode())
        digest.update(rgb.tobytes())
        return digest.hexdigest()
    return None


def _encoded_digest():
    """SHA-256 of encoded image bytes, the same whether they come from a file or memory."""
    return hashlib.sha256(b"encoded\0")


def _file_key(path):
    """The key of a regular file's bytes; None for anything else (missing, a FIFO, ...)."""
    try:
        # stat first: opening a FIFO blocks until a writer comes, and reading it consumes it
        if non_regular_kind(path) is not None:
            return None
        digest = _encoded_digest()
        with open(path, "rb") as file:
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
