"""Concept vocabularies: the SpLiCE word lists (downloaded, verified, cached) and custom ones."""

import difflib
import os
from collections import Counter
from collections.abc import Mapping, Set
from pathlib import Path
from typing import NamedTuple

from skplice.exceptions import VocabularyDownloadError
from skplice.utils._download import download_verified, read_verified
from skplice.utils._home import cache_folder, warn_cache_disabled
from skplice.utils._text import shorten
from skplice.utils._validation import check_int

# Pinned to a commit so the bytes behind the address cannot change under the sha256 sums.
BASE_URL = (
    "https://raw.githubusercontent.com/AI4LIFE-GROUP/SpLiCE/"
    "9a498102ce7c6701f4afe361ffaa86c39b47fa5f/data/vocab/"
)
URL_ENV_VAR = "SKPLICE_VOCAB_URL"


class _Named(NamedTuple):
    name: str
    sha256: str
    size: int  # bytes


_NAMED = {
    spec.name: spec
    for spec in (
        _Named(
            "laion", "aee8e260477dcfbc873f939955ffd472969859054ed46e245bbe8b37d10b508c", 262543
        ),
        _Named(
            "laion_bigrams",
            "6561525228843aa8b0d2b27e731c8c2b18dac0e4bdda40761933b0aecda1e67a",
            141006,
        ),
        _Named(
            "mscoco", "ddd84fc591b2e49c1513cc3dcc199153df276a44686712e21a6efb7711e2d43b", 94795
        ),
    )
}


#: Names of the vocabularies that :func:`load_vocabulary` downloads.
NAMED_VOCABULARIES = tuple(_NAMED)


def list_vocabularies():
    """The named vocabularies that :func:`load_vocabulary` downloads.

    Returns
    -------
    list of str
        Their names, each accepted by :func:`load_vocabulary` and as the
        ``vocabulary`` of :class:`~skplice.SpLiCETransformer`.

    Examples
    --------
    >>> from skplice.concepts import list_vocabularies
    >>> list_vocabularies()
    ['laion', 'laion_bigrams', 'mscoco']
    """
    return list(NAMED_VOCABULARIES)


def load_vocabulary(vocabulary="laion", size=None, *, clean=False, data_home=None):
    """Load a list of concept names.

    These are the words a SpLiCE dictionary is built from: one of the paper's
    frequency-ordered word lists (downloaded once and verified), or your own.

    Parameters
    ----------
    vocabulary : str, path-like or sequence of str, default="laion"
        One of the word lists of the SpLiCE paper, a path to a UTF-8 text file with
        one concept per line, or a sequence of strings (list, tuple, 1-D array,
        pandas Series). Entries are stripped of surrounding whitespace and blank
        ones dropped. Named lists, all ordered least to most frequent:

        - ``"laion"``: 37,445 words from LAION-400m captions (the paper's default,
          usually with ``size=10000``);
        - ``"laion_bigrams"``: 15,000 lines, 5,001 bigrams followed by 9,999
          words, each block least to most frequent;
        - ``"mscoco"``: 12,832 words from MSCOCO captions (the file's one blank
          line is dropped before ``size`` applies).

        A named list is downloaded on first use, checked against its sha256 and
        cached under ``<data_home>/vocabularies/<name>.txt``. Known names win over
        files of the same name in the working folder (write ``"./laion"`` for those).
    size : int, default=None
        Number of concepts to keep; None keeps all. For a named list these are the
        ``size`` most frequent, that is the last ``size`` entries (as in the authors'
        code; for ``"laion_bigrams"`` the words come last, so sizes up to 9,999 hold
        no bigram and the paper uses all 15,000). For a custom vocabulary these are
        the first ``size`` entries. ``size`` counts entries after cleaning. A
        ``size`` larger than the number of entries available raises ValueError.
    clean : bool, default=False
        Drop entries that make poor concepts: scikit-learn's English stop words
        (an entry whose every word is one, any case; the few of them that name
        visible things, such as "fire", "top", "front" or "empty", are kept),
        entries without a letter
        (punctuation, symbols or digits only, such as ``"-"``, ``"2019"`` or
        ``"1/2"``; entries mixing letters and digits such as ``"3d"`` or ``"mp3"``
        name things and are kept) and single characters. Duplicates are then
        dropped, keeping the most frequent occurrence of a named list (the last)
        and the first of a custom one. Without ``clean``, duplicates in a custom
        vocabulary raise ValueError.
    data_home : str or path-like, default=None
        Cache folder. When None, the ``SKPLICE_HOME`` environment variable, else
        ``~/.cache/skplice``.

    Returns
    -------
    list of str
        Unique, non-empty concept names in source order (named lists: least to
        most frequent). For ``"laion"`` and ``"laion_bigrams"``, index ``i`` is row
        ``i`` of the authors' dictionary of the same size; for ``"mscoco"`` it is not
        (the authors' code keeps the blank line as an empty concept).

    Raises
    ------
    VocabularyDownloadError
        A named list is neither cached nor downloadable (a subclass of OSError;
        the message names the address and where to place the file by hand).
    ValueError
        Unknown name or missing file, empty vocabulary, duplicates, invalid or too
        large ``size``.
    TypeError
        A custom vocabulary holds something other than strings or is unordered
        (set, dict), or ``size`` is not an integer.

    Notes
    -----
    The download address is ``BASE_URL`` followed by ``<name>.txt``; set the
    ``SKPLICE_VOCAB_URL`` environment variable to use a mirror. Without internet,
    download the file elsewhere and place it at the cache path given above: a file
    with the right sha256 is used as is, one with a wrong sha256 is removed with a
    warning and downloaded again.

    Examples
    --------
    >>> from skplice.concepts._vocabulary import load_vocabulary
    >>> load_vocabulary(["dog", " beach ", "the", "3d", "2019", "-"])
    ['dog', 'beach', 'the', '3d', '2019', '-']
    >>> load_vocabulary(["dog", "beach", "the", "3d", "2019", "-", "dog"], clean=True)
    ['dog', 'beach', '3d']
    >>> load_vocabulary(["dog", "beach", "sand"], size=2)
    ['dog', 'beach']
    """
    check_int(size, "size", min_value=1, allow_none=True)
    spec = _NAMED.get(vocabulary) if isinstance(vocabulary, str) else None
    if spec is not None:
        entries = _load_named(spec, data_home)
        # Work most-frequent-first so cleaning and `size` treat all sources alike.
        entries.reverse()
    elif isinstance(vocabulary, (str, os.PathLike)):
        entries = _read_file(vocabulary)
    else:
        entries = _from_sequence(vocabulary)

    if clean:
        entries = list(dict.fromkeys(e for e in entries if _is_good_concept(e)))
    else:
        _check_unique(entries)
    if not entries:
        raise ValueError("The vocabulary is empty" + (" after cleaning." if clean else "."))
    if size is not None:
        if size > len(entries):
            raise ValueError(
                f"size={size} is larger than the {len(entries)} concepts available"
                + (" after cleaning" if clean else "")
                + "; use size=None to keep them all."
            )
        entries = entries[:size]
    if spec is not None:
        entries.reverse()
    return entries


def _check_unique(entries):
    counts = Counter(entries)
    duplicates = [entry for entry, count in counts.items() if count > 1]
    if duplicates:
        shown = ", ".join(repr(d) for d in duplicates[:5])
        raise ValueError(
            f"The vocabulary has {len(duplicates)} duplicated concept(s), e.g. {shown}; "
            "pass clean=True to drop duplicates."
        )


# scikit-learn's stop words were chosen for text classification; these entries of that
# list name things one can see, and are kept as concepts.
_VISUAL_STOP_WORDS = frozenset(
    "back bill bottom cry detail empty fire front full mill side system thick thin top".split()
)


def _is_good_concept(entry):
    # Imported here: scikit-learn's text module is slow to import and only cleaning needs it.
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    stop_words = ENGLISH_STOP_WORDS - _VISUAL_STOP_WORDS
    return (
        len(entry) > 1
        and any(char.isalpha() for char in entry)
        and not all(word in stop_words for word in entry.lower().split())
    )


def _strip(entries):
    stripped = (entry.strip() for entry in entries)
    return [entry for entry in stripped if entry]


def _read_file(path):
    path = Path(path)
    try:
        found = path.is_file()
    except OSError:  # e.g. a name too long for the file system: no such file either
        found = False
    if not found:
        close = difflib.get_close_matches(str(path), _NAMED, n=1)
        raise ValueError(
            f"{shorten(repr(str(path)))} is not a named vocabulary "
            f"({', '.join(map(repr, _NAMED))}) and no file was found at "
            f"{shorten(path.resolve())}" + (f"; did you mean {close[0]!r}?" if close else ".")
        )
    try:
        # utf-8-sig drops the byte-order mark some editors write.
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{shorten(path)} is not a UTF-8 text file: {exc}") from exc
    return _strip(text.splitlines())


def _from_sequence(vocabulary):
    # Sets and mappings have no reliable order, and concept order fixes dictionary rows.
    if isinstance(vocabulary, (bytes, Set, Mapping)) or not hasattr(vocabulary, "__iter__"):
        raise TypeError(
            "vocabulary must be a known name, a path to a text file or an ordered "
            f"sequence of strings, got {type(vocabulary).__name__}."
        )
    if getattr(vocabulary, "ndim", 1) != 1:
        raise ValueError(f"A vocabulary array must be 1-D, got {vocabulary.ndim} dimensions.")
    entries = list(vocabulary)
    for position, entry in enumerate(entries):
        if not isinstance(entry, str):
            raise TypeError(
                f"Concepts must be strings; item {position} is {entry!r} "
                f"of type {type(entry).__name__}."
            )
    # str() turns numpy.str_ into plain str.
    return _strip(str(entry) for entry in entries)


def _load_named(spec, data_home):
    folder = cache_folder("vocabularies", data_home)
    target = folder.path / f"{spec.name}.txt"
    data = read_verified(target, spec.sha256, f"the '{spec.name}' vocabulary")
    if data is None:
        if folder.unwritable:
            warn_cache_disabled(folder.path, folder.unwritable, stacklevel=3)
        data = _download(spec, target)
    # Decode the verified bytes themselves, never a second read that another process may
    # have replaced in between. The blank line in mscoco.txt goes here.
    return _strip(data.decode("utf-8").splitlines())


def _download(spec, target):
    url = (os.environ.get(URL_ENV_VAR) or BASE_URL).rstrip("/") + f"/{spec.name}.txt"

    def failure(cause):
        return VocabularyDownloadError(
            f"Could not download the '{spec.name}' vocabulary from {url}: {cause}. "
            f"To install it by hand, fetch that file elsewhere and place it at {target} "
            f"(expected sha256 {spec.sha256}); or set {URL_ENV_VAR} to a mirror."
        )

    return download_verified(url, target, spec.sha256, spec.size, failure)
