"""Text for messages: a 5,000-character path must not bury the sentence around it."""

import re

#: Longest user-supplied text (a path, a name) quoted whole in a message.
LIMIT = 200


def shorten(text, limit=LIMIT):
    """``text`` with its middle replaced by "..." when longer than ``limit`` characters.

    The start and the end of a path say the most (its root, its file name), so both stay.

    Examples
    --------
    >>> from skplice.utils._text import shorten
    >>> shorten("/data/" + "x" * 300 + "/photo.jpg", limit=30)
    '/data/xxxxxxxx...xx/photo.jpg'
    """
    text = str(text)
    if len(text) <= limit:
        return text
    head = (limit - 3 + 1) // 2
    return f"{text[:head]}...{text[len(text) - (limit - 3 - head) :]}"


def with_short_filenames(exc):
    """``exc``, or for an OSError naming a long path, the same error naming it shortened.

    The original is chained as the new error's ``__cause__``.

    Examples
    --------
    >>> from skplice.utils._text import with_short_filenames
    >>> error = with_short_filenames(FileNotFoundError(2, "No such file", "/x" * 1000))
    >>> type(error).__name__, len(str(error)) < 250, "..." in error.filename
    ('FileNotFoundError', True, True)
    """
    if not isinstance(exc, OSError):
        return exc
    names = (exc.filename, exc.filename2)
    if all(name is None or len(str(name)) <= LIMIT for name in names):
        return exc
    first, second = (None if name is None else shorten(name) for name in names)
    error = type(exc)(exc.errno, exc.strerror, first, None, second)
    error.__cause__ = exc
    return error


def shorten_words(message, limit=LIMIT):
    """Shorten, in the middle, each run of more than ``limit`` non-blank characters.

    A 5,000-character path in an error message keeps its start and its end (its
    root, its file name), and the sentence around it stays readable.

    Parameters
    ----------
    message : str
        The text, e.g. an error message.
    limit : int, default=200
        The longest run of non-blank characters kept whole.

    Returns
    -------
    shortened : str
        ``message`` with each longer run's middle replaced by "...".

    Examples
    --------
    >>> from skplice.utils import shorten_words
    >>> shorten_words("file not found: /" + "a" * 500 + "/b.jpg", limit=20)
    'file not found: /aaaaaaaa...aa/b.jpg'
    """
    return re.sub(rf"\S{{{limit + 1},}}", lambda match: shorten(match.group(), limit), message)
