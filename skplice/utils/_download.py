"""Data files that skplice fetches by address and verifies by sha256 (vocabularies, means).

One place for the policy every such file follows: a cached copy is used only when its
sha256 matches (a mismatch, or anything that is not a readable file, is removed with a
warning); a download streams to a temporary file beside the target, stops as soon as it
is longer than the known size or past an overall deadline, is verified, and only then
moved into place atomically. No reader ever sees a partial or unverified file, and a
failed download leaves nothing behind. When the cache folder cannot be written, the
verified bytes are still returned, with one warning that the cache is disabled.
"""

import hashlib
import http.client
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
import warnings
from contextlib import ExitStack, contextmanager

from skplice.utils._files import atomic_writer, non_regular_kind
from skplice.utils._home import is_unwritable_error, warn_cache_disabled

TIMEOUT = 30  # seconds without data before a download is abandoned
DEADLINE = 300  # seconds for a whole download, however the server trickles its bytes
_CHUNK = 1 << 16


def read_verified(target, sha256, what):
    """The bytes of ``target`` when its sha256 is ``sha256``; else None.

    A mismatch, an unreadable file or anything but a regular file (a folder, a named
    pipe) is removed with a warning. ``what`` names the file in the warning, e.g.
    "the 'laion' vocabulary".
    """
    try:
        kind = non_regular_kind(target)
        data = None if kind else target.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        kind = f"unreadable ({type(exc).__name__}: {exc.strerror})"
        data = None
    if data is not None and hashlib.sha256(data).hexdigest() == sha256:
        return data
    reason = f"it is {kind}" if kind else f"its sha256 does not match {what}"
    try:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)  # another process may have removed it already
    except OSError as exc:
        reason += f"; it could not be removed ({type(exc).__name__}: {exc.strerror})"
    warnings.warn(f"Removing {target}: {reason}.", stacklevel=4)
    return None


def download_verified(url, target, sha256, size, failure):
    """Download ``url``, check its size and sha256, and write it atomically to ``target``.

    ``size`` is the file's known length in bytes: the body streams to a temporary file
    beside ``target`` and the download stops as soon as it is longer. The whole download
    must end within ``DEADLINE`` seconds, and no read may wait more than ``TIMEOUT``.
    ``failure(cause)`` builds the exception raised when the download fails, is cut
    short, is too long or late, or the bytes do not match; nothing is left behind then.
    When the folder of ``target`` cannot be written, the bytes are verified in an
    anonymous temporary file and returned without being stored (with one warning).
    Returns the verified bytes.
    """
    started = time.monotonic()
    with _Watchdog(DEADLINE) as watchdog, _spool(target) as file:
        try:
            received, digest = _receive(watchdog.opener(), url, file, size)
        except (_Refused, OSError, http.client.HTTPException, ValueError) as exc:
            if watchdog.expired:  # the watchdog's shutdown is what made it fail
                raise failure(_late(started)) from exc
            if isinstance(exc, _Refused):
                raise failure(str(exc)) from None
            raise failure(f"{type(exc).__name__}: {exc}") from exc
        if watchdog.expired:  # the watchdog cut the body short
            raise failure(_late(started))
        if received > size:
            raise failure(f"the server sent more than the file's {size} bytes")
        if digest != sha256:
            raise failure(f"the {received} bytes received have sha256 {digest}")
        file.seek(0)
        return file.read()


def _late(started):
    return (
        f"the download did not finish within {DEADLINE} seconds (it had run for "
        f"{time.monotonic() - started:.0f} s)"
    )


def _receive(opener, url, file, size):
    """Stream ``url`` into ``file``, stopping past ``size`` bytes; return (bytes, sha256)."""
    digest = hashlib.sha256()
    received = 0
    with opener.open(url, timeout=min(TIMEOUT, DEADLINE)) as response:
        announced = response.length  # the Content-Length header, or None
        if announced is not None and announced > size:
            raise _Refused(f"the server announced {announced} bytes, not the file's {size}")
        # read1 returns what one read of the socket gives, so that a trickling server
        # cannot hold one call for long (read(n) waits for all n bytes).
        while received <= size and (chunk := response.read1(_CHUNK)):
            received += len(chunk)
            digest.update(chunk)
            file.write(chunk)
    if announced is not None and received < announced:
        raise _Refused(
            f"IncompleteRead: the connection closed after {received} of the {announced} "
            "bytes announced"
        )
    return received, digest.hexdigest()


class _Refused(Exception):
    """A response that cannot be the file; its message is the cause to report."""


@contextmanager
def _spool(target):
    """A temporary file beside ``target``, moved into place when the block succeeds.

    When the folder cannot be written, an anonymous temporary file stands in (removed on
    closing) and the cache is reported as disabled.
    """
    with ExitStack() as stack:
        try:
            file = stack.enter_context(atomic_writer(target))
        except OSError as exc:
            if not (is_unwritable_error(exc) or not target.parent.is_dir()):
                raise
            warn_cache_disabled(target.parent, f"{type(exc).__name__}: {exc.strerror}")
            file = stack.enter_context(tempfile.TemporaryFile())
        yield file


class _Watchdog:
    """Shuts the download's sockets down when the deadline passes.

    A timeout on each read cannot bound a whole download: a server that sends a byte
    now and then resets it forever. This timer can, in the status line and headers as
    well as in the body: the blocked read returns, and ``expired`` tells why.
    """

    def __init__(self, seconds):
        self.expired = False
        self._sockets = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc_info):
        self._timer.cancel()

    def _expire(self):
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def _watch(self, sock):
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def opener(self):
        """A urllib opener whose HTTP(S) connections this watchdog can cut."""
        watch = self._watch

        def watched(connection_class):
            class Watched(connection_class):
                def connect(self):
                    super().connect()
                    watch(self.sock)

            return Watched

        class HTTPHandler(urllib.request.HTTPHandler):
            def do_open(self, http_class, request, **kwargs):
                return super().do_open(watched(http_class), request, **kwargs)

        class HTTPSHandler(urllib.request.HTTPSHandler):
            def do_open(self, http_class, request, **kwargs):
                return super().do_open(watched(http_class), request, **kwargs)

        return urllib.request.build_opener(HTTPHandler, HTTPSHandler)


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to stop
