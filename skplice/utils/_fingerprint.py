"""Content hashes of local model files, computed once per (path, size, mtime) per process."""

import hashlib
import os
import threading

from skplice.utils._files import non_regular_kind

_CHUNK = 1 << 20
_MEMO = {}
_LOCK = threading.Lock()


def _stat_key(path):
    st = os.stat(path)
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns)


def _hash_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_digest(path):
    """SHA-256 of a file's bytes, memoised on its resolved path, size and mtime.

    Examples
    --------
    >>> import tempfile, os
    >>> from skplice.utils._fingerprint import file_digest
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "weights.bin")
    ...     with open(path, "wb") as f:
    ...         _ = f.write(b"abc")
    ...     file_digest(path)[:16]
    'ba7816bf8f01cfea'
    """
    key = _stat_key(path)
    with _LOCK:
        if key in _MEMO:
            return _MEMO[key]
    digest = _hash_file(path)
    with _LOCK:
        _MEMO[key] = digest
    return digest


def dir_digest(path):
    """SHA-256 over the relative paths and contents of every file below a folder."""
    digest = hashlib.sha256()
    root = os.path.realpath(path)
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            full = os.path.join(folder, name)
            if non_regular_kind(full):
                continue  # a pipe or a device holds no weights, and reading it may block
            relative = os.path.relpath(full, root).replace(os.sep, "/")
            digest.update(f"{relative}\0{file_digest(full)}\n".encode())
    return digest.hexdigest()
