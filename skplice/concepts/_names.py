"""The one check of concept names, wherever they come from.

Concept names label the rows of a dictionary and the columns of concept weights, and
everything downstream finds concepts by name, so every source of names (the names of a
dictionary's rows, an explicit ``concept_names`` argument, the names weights carry)
is held to the same rules: strings, none empty, all distinct.
"""

import numpy as np

__all__ = ["check_concept_names"]


def check_concept_names(names, argument, *, strip=False):
    """Return ``names`` as a 1-D object array of plain str, or raise naming the problem.

    Parameters
    ----------
    names : sequence of str
        The names.
    argument : str
        How the caller's user knows ``names`` (e.g. ``"concept_names"``), for messages.
    strip : bool, default=False
        Remove surrounding whitespace first, as :func:`~skplice.load_vocabulary` does,
        so that ``" dog"`` and ``"dog"`` are one name. Only for names a user writes
        to name new concepts; names that must match existing ones are kept as given.

    Returns
    -------
    names : ndarray of shape (n_names,), dtype=object

    Examples
    --------
    >>> from skplice.concepts._names import check_concept_names
    >>> check_concept_names([" dog", "beach"], "concept_names", strip=True)
    array(['dog', 'beach'], dtype=object)
    >>> check_concept_names(["dog", "dog"], "concept_names")
    Traceback (most recent call last):
    ...
    ValueError: Concept names must be unique; concept_names repeats 1 name: 'dog'.
    """
    if isinstance(names, (str, bytes)):
        raise TypeError(f"{argument} must be a list of names, not the single string {names!r}.")
    names = np.asarray(list(names), dtype=object)
    if names.ndim != 1:
        raise ValueError(f"{argument} must be a 1-D sequence of names.")
    for position, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"Concept names must be strings; {argument}[{position}] is {name!r}.")
    # Plain str: numpy.str_ names would print as np.str_('...') in messages and frames.
    names = np.asarray([str(name).strip() if strip else str(name) for name in names], dtype=object)
    empty = [position for position, name in enumerate(names) if not name.strip()]
    if empty:
        raise ValueError(
            f"Concept names must not be empty; {argument}[{empty[0]}] is empty or only "
            f"whitespace ({len(empty)} such name{'s' if len(empty) > 1 else ''}). Name "
            "every concept, or drop the ones without a name."
        )
    unique, counts = np.unique(names.astype(str), return_counts=True)
    repeated = unique[counts > 1]
    if repeated.size:
        shown = ", ".join(repr(str(name)) for name in repeated[:5])
        raise ValueError(
            f"Concept names must be unique; {argument} repeats {repeated.size} "
            f"name{'s' if repeated.size > 1 else ''}: {shown}."
        )
    return names
