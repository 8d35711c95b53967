"""Import optional dependencies with an error that names the extra to install."""

import importlib

# Top-level module -> (distribution users install, skplice extra that pulls it in).
_EXTRAS = {
    "open_clip": ("open_clip_torch", "clip"),
    "PIL": ("pillow", "clip"),
    "sentence_transformers": ("sentence-transformers", "text"),
    "matplotlib": ("matplotlib", "plot"),
}


def import_optional(name):
    """Import and return module ``name``; raise a helpful ImportError when it is missing.

    Parameters
    ----------
    name : str
        The module, e.g. ``"open_clip"`` or ``"PIL.Image"``.

    Returns
    -------
    module : module
        The imported module.

    Raises
    ------
    ImportError
        The module cannot be imported; the message names the distribution to
        install and, for skplice's optional dependencies, the extra that pulls it
        in (``pip install "skplice[plot]"``).

    Examples
    --------
    >>> from skplice.utils import import_optional
    >>> import_optional("PIL.Image").__name__
    'PIL.Image'
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.split(".")[0]
        distribution, extra = _EXTRAS.get(top, (top, None))
        hint = f'pip install "skplice[{extra}]"' if extra else f"pip install {distribution}"
        raise ImportError(
            f"This feature of skplice needs the optional dependency {distribution!r} "
            f"(module {top!r}), which could not be imported ({exc}). Install it with: {hint}"
        ) from exc
