"""Where skplice keeps downloaded vocabularies and cached concept dictionaries.

A cache that cannot be written (a read-only ``SKPLICE_HOME``, a shared folder owned by
someone else) never stops the work: as pip does, skplice warns once that the cache is
disabled and goes on without it. A file where a cache folder should be is a layout
skplice cannot repair on its own, and gets one clear error naming the path.
"""

import errno
import os
import warnings
from pathlib import Path
from typing import NamedTuple

ENV_VAR = "SKPLICE_HOME"

#: errno values that mean "this folder cannot be written", not a bug to report.
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}
_WARNED = set()  # folders already reported as unwritable in this process


class CacheFolder(NamedTuple):
    """A cache subfolder and why it cannot be written (None when it can)."""

    path: Path
    unwritable: str | None


def get_data_home(data_home=None, *, create=True):
    """Return the skplice cache folder, creating it if needed.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder to use. When None, the ``SKPLICE_HOME`` environment variable is
        used, and when that is unset, ``~/.cache/skplice``.
    create : bool, default=True
        Create the folder when it does not exist; False only names it.

    Returns
    -------
    pathlib.Path
        The absolute path of the cache folder (existing, unless ``create=False``).

    Raises
    ------
    NotADirectoryError
        A file is where the folder (or one of its parents) should be.

    Examples
    --------
    >>> import tempfile
    >>> from skplice.utils import get_data_home
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     get_data_home(tmp).is_dir()
    True
    """
    if data_home is None:
        data_home = os.environ.get(ENV_VAR) or Path.home() / ".cache" / "skplice"
    path = Path(data_home).expanduser().resolve()
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise _not_a_folder(path, path) from exc
    return path


def cache_folder(name, data_home=None):
    """The cache subfolder ``name`` (e.g. "dictionaries"), created when it can be.

    Returns a :class:`CacheFolder`: its path, and why it cannot be written (None when
    it can). Callers still read from an unwritable folder, and call
    :func:`warn_cache_disabled` before work whose result they cannot store.

    Examples
    --------
    >>> import tempfile
    >>> from skplice.utils._home import cache_folder
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = cache_folder("dictionaries", tmp)
    ...     folder.path.name, folder.path.is_dir(), folder.unwritable
    ('dictionaries', True, None)
    """
    home = get_data_home(data_home, create=False)
    path = home / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise _not_a_folder(path, home) from exc
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        return CacheFolder(path, f"{type(exc).__name__}: {exc.strerror}")
    if not os.access(path, os.W_OK | os.X_OK):
        return CacheFolder(path, "no permission to write in it")
    return CacheFolder(path, None)


def is_unwritable_error(exc):
    """True for an OSError that says a folder cannot be written (permissions, read-only)."""
    return isinstance(exc, OSError) and exc.errno in _UNWRITABLE


def warn_cache_disabled(folder, reason, *, stacklevel=2):
    """Warn, once per folder and process, that ``folder`` cannot be written."""
    if folder in _WARNED:
        return
    _WARNED.add(folder)
    warnings.warn(
        f"The skplice cache folder {folder} cannot be written ({reason}); the cache is "
        "disabled for it, so results are computed (or downloaded) again at each use. Set "
        f"{ENV_VAR} (or data_home=) to a writable folder to enable it.",
        UserWarning,
        stacklevel=stacklevel + 1,
    )


def _not_a_folder(path, home):
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
    return NotADirectoryError(
        f"skplice's cache needs the folder {path}, but {blocker} is a file. Move that file "
        f"away, or set {ENV_VAR} (or data_home=) to another folder (the cache home is now "
        f"{home})."
    )
