"""Data files that skplice fetches by address and verifies by sha256 (vocabularies, means).

One place for the policy every such file follows: a cached copy is used only when its
sha256 matches (a mismatch is removed with a warning), a download is verified before it
is written, and the write is atomic, so no reader ever sees a partial or unverified file.
"""

import hashlib
import http.client
import urllib.request
import warnings

from skplice._files import write_atomic

TIMEOUT = 60  # seconds without data before a download is abandoned


def read_verified(target, sha256, what):
    """The bytes of ``target`` when its sha256 is ``sha256``; else None (a mismatch is removed).

    ``what`` names the file in the warning, e.g. "the 'laion' vocabulary".
    """
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        return None
    if hashlib.sha256(data).hexdigest() == sha256:
        return data
    warnings.warn(f"Removing {target}: its sha256 does not match {what}.", stacklevel=4)
    # Another process may have removed it already.
    target.unlink(missing_ok=True)
    return None


def download_verified(url, target, sha256, size, failure):
    """Download ``url``, check its size and sha256, and write it atomically to ``target``.

    ``size`` is the file's known length in bytes: a longer body is refused without
    reading it all. ``failure(cause)`` builds the exception raised when the download
    fails or the bytes do not match; nothing is written then. Returns the verified bytes.
    """
    try:
        # The files are small (under 300 kB): read whole, verify, then write.
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            announced = response.length  # the Content-Length header, or None
            if announced is None or announced <= size:
                # With a Content-Length, read() raises IncompleteRead on a cut body.
                data = response.read() if announced is not None else response.read(size + 1)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise failure(f"{type(exc).__name__}: {exc}") from exc
    if announced is not None and announced > size:
        raise failure(f"the server announced {announced} bytes, not the file's {size}")
    if len(data) > size:
        raise failure(f"the server sent more than the file's {size} bytes")
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise failure(f"the {len(data)} bytes received have sha256 {digest}")
    write_atomic(target, data)
    return data
