"""Vocabularies: named lists, the download cache, cleaning, custom lists."""

import functools
import hashlib
import multiprocessing
import os
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from _file_server import FileServer, unreachable_url
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from skplice import load_vocabulary
from skplice.concepts._vocabulary import (
    _NAMED,
    _VISUAL_STOP_WORDS,
    URL_ENV_VAR,
    VocabularyDownloadError,
)

NAMES = ("laion", "laion_bigrams", "mscoco")


def raw_lines(folder, name):
    return (folder / f"{name}.txt").read_text(encoding="utf-8").splitlines()


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# A local HTTP server standing in for raw.githubusercontent.com


class VocabServer(FileServer):
    """The real vocabulary files, served under /vocab/."""

    def __init__(self, folder):
        files = {f"{name}.txt": (folder / f"{name}.txt").read_bytes() for name in NAMES}
        super().__init__(files, "vocab")


@pytest.fixture
def vocab_server(vocab_source_dir, skplice_home, monkeypatch):
    with VocabServer(vocab_source_dir) as server:
        monkeypatch.setenv(URL_ENV_VAR, server.url)
        yield server


def cache_contents(home):
    folder = home / "vocabularies"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------------------------------------
# Download, verification and cache


def test_first_use_downloads_and_verifies(vocab_server, skplice_home, vocab_source_dir):
    vocab = load_vocabulary("mscoco")
    assert vocab_server.requests == ["/vocab/mscoco.txt"]
    assert vocab == [line for line in raw_lines(vocab_source_dir, "mscoco") if line]
    cached = skplice_home / "vocabularies" / "mscoco.txt"
    assert sha256(cached) == _NAMED["mscoco"].sha256
    assert cache_contents(skplice_home) == ["mscoco.txt"]  # no temp file left behind


def test_second_use_needs_no_network(vocab_server, skplice_home, monkeypatch):
    first = load_vocabulary("laion", size=100)
    monkeypatch.setenv(URL_ENV_VAR, unreachable_url("vocab"))
    assert load_vocabulary("laion", size=100) == first
    assert len(vocab_server.requests) == 1


def test_explicit_data_home_is_used(vocab_server, tmp_path, skplice_home):
    load_vocabulary("mscoco", data_home=tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "vocabularies" / "mscoco.txt").is_file()
    assert cache_contents(skplice_home) == []


@pytest.mark.parametrize(
    ("mode", "cause"),
    [
        ("corrupt", "sha256"),
        ("truncate", "IncompleteRead"),
        # Without a Content-Length a cut body looks complete to HTTP; the hash catches it.
        ("truncate_no_length", "sha256"),
    ],
)
def test_bad_download_is_rejected_and_leaves_nothing(vocab_server, skplice_home, mode, cause):
    vocab_server.mode = mode
    with pytest.raises(VocabularyDownloadError, match=cause) as info:
        load_vocabulary("mscoco")
    assert vocab_server.url + "mscoco.txt" in str(info.value)
    assert cache_contents(skplice_home) == []


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failed_write_leaves_no_temp_file(vocab_server, skplice_home, monkeypatch, error):
    def fail(*args):
        raise error

    monkeypatch.setattr("skplice.concepts._vocabulary.os.replace", fail)
    with pytest.raises(type(error)):
        load_vocabulary("mscoco")
    assert cache_contents(skplice_home) == []


@pytest.mark.parametrize("mode", ["trickle", "trickle_headers"])
def test_a_trickling_server_cannot_outlast_the_deadline(
    vocab_server, skplice_home, monkeypatch, mode
):
    # Each byte comes well within the per-read timeout; only an overall deadline ends it.
    monkeypatch.setattr("skplice.utils._download.DEADLINE", 1.0)
    vocab_server.mode = mode
    started = time.monotonic()
    with pytest.raises(VocabularyDownloadError, match=r"did not finish within 1\.0 seconds"):
        load_vocabulary("mscoco")
    assert time.monotonic() - started < 3
    assert 0 < vocab_server.sent < 20
    assert cache_contents(skplice_home) == []


@pytest.mark.parametrize(
    ("mode", "cause"),
    [
        ("oversized", "sent more than the file's 94795 bytes"),
        ("oversized_length", "announced 419525195 bytes, not the file's 94795"),
    ],
)
def test_an_oversized_body_is_refused_without_reading_it(vocab_server, skplice_home, mode, cause):
    vocab_server.mode = mode
    with pytest.raises(VocabularyDownloadError, match=cause):
        load_vocabulary("mscoco")
    assert vocab_server.done.wait(10)  # the server gave up: the client hung up early
    assert vocab_server.sent < VocabServer.OVERSIZED / 10
    assert cache_contents(skplice_home) == []


def test_unreachable_server_names_url_and_manual_placement(skplice_home, monkeypatch):
    url = unreachable_url("vocab")
    monkeypatch.setenv(URL_ENV_VAR, url)
    with pytest.raises(VocabularyDownloadError) as info:
        load_vocabulary("laion_bigrams")
    message = str(info.value)
    assert f"{url}/laion_bigrams.txt" in message
    assert str(skplice_home / "vocabularies" / "laion_bigrams.txt") in message
    assert _NAMED["laion_bigrams"].sha256 in message
    assert "refused" in message.lower()
    assert isinstance(info.value, OSError)
    assert cache_contents(skplice_home) == []


def test_corrupted_cache_file_is_replaced(vocab_server, skplice_home, vocab_source_dir):
    cached = skplice_home / "vocabularies" / "mscoco.txt"
    cached.parent.mkdir()
    cached.write_text("dog\ncat\n")
    with pytest.warns(UserWarning, match="sha256 does not match"):
        vocab = load_vocabulary("mscoco")
    assert len(vocab) == 12_832
    assert sha256(cached) == _NAMED["mscoco"].sha256
    assert len(vocab_server.requests) == 1


def test_corrupted_cache_file_is_removed_when_download_fails(skplice_home, monkeypatch):
    monkeypatch.setenv(URL_ENV_VAR, unreachable_url("vocab"))
    cached = skplice_home / "vocabularies" / "mscoco.txt"
    cached.parent.mkdir()
    cached.write_text("dog\ncat\n")
    with pytest.warns(UserWarning), pytest.raises(VocabularyDownloadError):
        load_vocabulary("mscoco")
    assert not cached.exists()


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_cache_entry_that_is_not_a_file_is_replaced(vocab_server, skplice_home, kind):
    cached = skplice_home / "vocabularies" / "mscoco.txt"
    cached.parent.mkdir()
    cached.mkdir() if kind == "folder" else os.mkfifo(cached)
    with pytest.warns(UserWarning, match="named pipe|folder"):
        vocab = load_vocabulary("mscoco")
    assert len(vocab) == 12_832
    assert sha256(cached) == _NAMED["mscoco"].sha256


def test_read_only_home_downloads_without_caching(vocab_server, skplice_home, read_only):
    read_only(skplice_home)
    with pytest.warns(UserWarning, match=r"cannot be written.*cache is disabled") as caught:
        first = load_vocabulary("mscoco")
        second = load_vocabulary("mscoco")
    assert sum("cache is disabled" in str(w.message) for w in caught) == 1
    assert first == second and len(first) == 12_832
    assert len(vocab_server.requests) == 2
    assert list(skplice_home.iterdir()) == []


def test_read_only_vocabularies_folder_downloads_without_caching(
    vocab_server, skplice_home, read_only
):
    (skplice_home / "vocabularies").mkdir()
    read_only(skplice_home / "vocabularies")
    with pytest.warns(UserWarning, match="cache is disabled"):
        assert len(load_vocabulary("mscoco")) == 12_832
    assert cache_contents(skplice_home) == []


def test_a_read_only_cache_is_still_read(vocab_home, read_only, monkeypatch):
    monkeypatch.setenv(URL_ENV_VAR, unreachable_url("vocab"))
    read_only(vocab_home / "vocabularies")
    read_only(vocab_home)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_vocabulary("mscoco")) == 12_832


def test_a_file_where_the_cache_folder_should_be_is_named(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "vocabularies").write_text("not a folder")
    monkeypatch.setenv("SKPLICE_HOME", str(home))
    with pytest.raises(NotADirectoryError, match=r"vocabularies is a file.*SKPLICE_HOME"):
        load_vocabulary("mscoco")


def test_hand_placed_file_is_used(vocab_home, monkeypatch):
    monkeypatch.setenv(URL_ENV_VAR, unreachable_url("vocab"))
    assert len(load_vocabulary("laion")) == 37_445


def test_concurrent_processes_end_with_one_verified_file(vocab_server, skplice_home):
    n_processes = 4
    # Hold every response until all processes are downloading, so they truly overlap.
    vocab_server.barrier = threading.Barrier(n_processes, timeout=60)
    load = functools.partial(load_vocabulary, "mscoco", data_home=str(skplice_home))
    with multiprocessing.get_context("spawn").Pool(n_processes) as pool:
        results = pool.map(load, [None] * n_processes)
    assert len(vocab_server.requests) == n_processes
    assert all(result == results[0] for result in results)
    assert len(results[0]) == 12_832
    assert cache_contents(skplice_home) == ["mscoco.txt"]
    assert sha256(skplice_home / "vocabularies" / "mscoco.txt") == _NAMED["mscoco"].sha256


# ---------------------------------------------------------------------------------------------
# Named vocabularies: which lines `size` selects


def test_laion_top_10k_is_the_last_10k_lines(vocab_home, vocab_source_dir):
    raw = raw_lines(vocab_source_dir, "laion")
    assert len(raw) == 37_445
    assert load_vocabulary("laion", size=10_000) == raw[-10_000:]
    assert load_vocabulary("laion") == raw


def test_laion_bigrams_size_takes_last_lines(vocab_home, vocab_source_dir):
    raw = raw_lines(vocab_source_dir, "laion_bigrams")
    full = load_vocabulary("laion_bigrams")
    assert full == raw
    assert sum(" " in concept for concept in full) == 5_001
    top = load_vocabulary("laion_bigrams", size=10_000)
    assert top == raw[-10_000:]
    # The words come last in the file: 10,000 lines reach back to a single bigram.
    assert [concept for concept in top if " " in concept] == [raw[5_000]]


def test_mscoco_blank_line_is_dropped_before_size(vocab_home, vocab_source_dir):
    raw = raw_lines(vocab_source_dir, "mscoco")
    assert raw[12_824] == ""  # line 12,825, ten lines from the end
    full = load_vocabulary("mscoco")
    assert len(full) == 12_832
    assert "" not in full
    assert load_vocabulary("mscoco", size=10) == raw[-11:-9] + raw[-8:]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("clean", [False, True])
def test_named_vocabularies_are_unique_and_non_empty(vocab_home, name, clean):
    vocab = load_vocabulary(name, clean=clean)
    assert len(set(vocab)) == len(vocab)
    assert all(concept and concept == concept.strip() for concept in vocab)
    assert all(type(concept) is str for concept in vocab)


def test_known_name_wins_over_a_file_of_that_name(vocab_home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "laion").write_text("dog\ncat\n")
    assert len(load_vocabulary("laion")) == 37_445
    assert load_vocabulary("./laion") == ["dog", "cat"]


# ---------------------------------------------------------------------------------------------
# Cleaning


def test_clean_laion_top_10k(vocab_home, vocab_source_dir):
    vocab = load_vocabulary("laion", size=10_000, clean=True)
    assert len(vocab) == len(set(vocab)) == 10_000
    for removed in ["the", "of", "-", "and", "a", "x", "2", "0", "...", "©", "é"]:
        assert removed not in vocab
    for concept in vocab:
        assert len(concept) > 1
        assert any(char.isalpha() for char in concept)
        assert concept not in ENGLISH_STOP_WORDS - _VISUAL_STOP_WORDS
    assert {"fire", "top", "front", "empty"} <= set(vocab)  # visible things stay
    # `size` counts clean concepts: the 10,000 most frequent ones, in file order.
    assert vocab == load_vocabulary("laion", clean=True)[-10_000:]
    raw = raw_lines(vocab_source_dir, "laion")
    positions = [raw.index(concept) for concept in vocab[:: len(vocab) // 50]]
    assert positions == sorted(positions)


def test_clean_drops_all_stop_word_bigrams_only(vocab_home):
    vocab = load_vocabulary("laion_bigrams", clean=True)
    assert "much i" not in vocab and "part i" not in vocab  # only stop words
    assert "other side" in vocab and "top ten" in vocab  # "side", "top" name things
    assert "side table" in vocab


def test_clean_rules_on_a_custom_list():
    vocab = ["Dog", "THE", "of the", "the beach", "3d", "mp3", "2019", "1/2", "--", "x", "é"]
    assert load_vocabulary(vocab, clean=True) == ["Dog", "the beach", "3d", "mp3"]


def test_clean_deduplicates_keeping_the_priority_occurrence():
    assert load_vocabulary(["dog", "cat", "dog", "the"], clean=True) == ["dog", "cat"]
    assert load_vocabulary(["dog", "cat", "dog"], size=1, clean=True) == ["dog"]


def test_clean_size_counts_clean_concepts():
    assert load_vocabulary(["the", "dog", "of", "cat", "sun"], size=2, clean=True) == [
        "dog",
        "cat",
    ]


# ---------------------------------------------------------------------------------------------
# Custom vocabularies


@pytest.mark.parametrize(
    "container",
    [list, tuple, np.array, pd.Series, lambda x: np.array(x, dtype=object), iter],
    ids=["list", "tuple", "ndarray", "Series", "object-ndarray", "iterator"],
)
def test_custom_sequences(container):
    vocab = load_vocabulary(container(["dog", " beach ", "", "sun"]))
    assert vocab == ["dog", "beach", "sun"]
    assert all(type(concept) is str for concept in vocab)


def test_custom_size_takes_the_first_entries():
    assert load_vocabulary(["dog", "beach", "sun"], size=2) == ["dog", "beach"]


def test_text_file(tmp_path):
    path = tmp_path / "concepts.txt"
    path.write_text("\ufeffdog\r\n  beach  \n\n\tsun\n\n", encoding="utf-8")
    assert load_vocabulary(path) == ["dog", "beach", "sun"]
    assert load_vocabulary(str(path), size=1) == ["dog"]


# ---------------------------------------------------------------------------------------------
# Invalid input


def test_unknown_name_lists_valid_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="no file was found") as info:
        load_vocabulary("laoin")
    for name in NAMES:
        assert repr(name) in str(info.value)
    assert str(tmp_path / "laoin") in str(info.value)
    assert str(info.value).endswith("did you mean 'laion'?")
    with pytest.raises(ValueError, match=r"found at .*animals\.txt\.$"):  # no guess
        load_vocabulary("words/animals.txt")


@pytest.mark.parametrize("vocabulary", [[], ["", "  "], ()])
def test_empty_vocabulary(vocabulary):
    with pytest.raises(ValueError, match="empty"):
        load_vocabulary(vocabulary)


def test_empty_after_cleaning():
    with pytest.raises(ValueError, match="empty after cleaning"):
        load_vocabulary(["the", "-", "2"], clean=True)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n \n")
    with pytest.raises(ValueError, match="empty"):
        load_vocabulary(path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café\n".encode("latin-1"))
    with pytest.raises(ValueError, match="UTF-8"):
        load_vocabulary(path)


@pytest.mark.parametrize(
    ("vocabulary", "match"),
    [
        (["dog", 3, None], "item 1 is 3 of type int"),
        (["dog", b"cat"], "item 1 is b'cat'"),
        (pd.Series(["dog", None]), "item 1 is (None|nan)"),
        ({"dog", "cat"}, "ordered sequence"),
        ({"dog": 1}, "ordered sequence"),
        (b"laion", "ordered sequence"),
        (42, "ordered sequence"),
    ],
)
def test_bad_items_raise_type_error(vocabulary, match):
    with pytest.raises(TypeError, match=match):
        load_vocabulary(vocabulary)


def test_two_dimensional_array():
    with pytest.raises(ValueError, match="1-D"):
        load_vocabulary(np.array([["dog", "cat"]]))


def test_duplicates_raise_and_suggest_clean():
    with pytest.raises(ValueError, match=r"2 duplicated.*'dog'.*'sun'.*clean=True"):
        load_vocabulary(["dog", "sun", "dog ", "cat", "sun"])


@pytest.mark.parametrize(
    ("size", "error"),
    [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ("10", TypeError)],
)
def test_invalid_size(size, error):
    with pytest.raises(error, match=r"size must be an int >= 1 or None; got "):
        load_vocabulary(["dog", "cat"], size=size)


def test_numpy_integer_size():
    assert load_vocabulary(["dog", "cat"], size=np.int64(1)) == ["dog"]


def test_size_larger_than_available():
    with pytest.raises(ValueError, match="size=3 is larger than the 2 concepts"):
        load_vocabulary(["dog", "cat"], size=3)
    with pytest.raises(ValueError, match="2 concepts available after cleaning"):
        load_vocabulary(["dog", "the", "cat"], size=3, clean=True)


def test_size_larger_than_named_list(vocab_home):
    with pytest.raises(ValueError, match="12832 concepts available"):
        load_vocabulary("mscoco", size=12_833)


def test_clean_keeps_stop_words_that_name_visible_things():
    words = ["fire", "the", "top", "one", "other side", "front", "empty", "of", "much i"]
    assert load_vocabulary(words, clean=True) == ["fire", "top", "other side", "front", "empty"]
