"""Atomic file writes for skplice's caches."""

import os
import tempfile


def write_atomic(target, data, *, durable=True):
    """Write ``data`` (bytes) to ``target`` so that no reader ever sees a partial file.

    The bytes go to a uniquely named temp file in the same folder, are flushed to
    disk (unless ``durable=False``), then moved into place with ``os.replace``: readers
    and concurrent writers only ever see a missing file or a complete one. The temp
    file is removed on any failure, and the error is re-raised.

    ``durable=False`` skips the ``fsync`` (about 4 ms per file here, against 0.5 ms for
    the rest of the write), for many small files that their reader validates and
    recomputes when damaged: after a power loss, such a file may be empty or incomplete.
    """
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            if durable:
                os.fsync(file.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a shared cache should be readable
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
