"""Where skplice keeps downloaded vocabularies and cached concept dictionaries."""

import os
from pathlib import Path

ENV_VAR = "SKPLICE_HOME"


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

    Examples
    --------
    >>> import tempfile
    >>> from skplice._home import get_data_home
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     get_data_home(tmp).is_dir()
    True
    """
    if data_home is None:
        data_home = os.environ.get(ENV_VAR) or Path.home() / ".cache" / "skplice"
    path = Path(data_home).expanduser().resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
