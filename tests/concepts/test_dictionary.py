"""Concept dictionaries: vocabularies encoded by real models, cached on disk by content."""

import os
import re
import warnings

import numpy as np
import pytest
import torch
from skimage import data as photos
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skplice import CLIPEmbedder, SpLiCETransformer, TextEmbedder
from skplice.concepts import build_dictionary, encode_concepts


class Counting:
    """Delegates to a real encoder and counts the texts it was asked to encode."""

    def __init__(self, encoder):
        self.encoder, self.calls = encoder, []

    def encode_text(self, texts):
        self.calls.append(list(texts))
        return self.encoder.encode_text(texts)

    def _encoder_identity(self):
        return self.encoder._encoder_identity()


def unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


@pytest.fixture
def tiny(tiny_clip):
    return CLIPEmbedder(tiny_clip, pretrained=None, device="cpu")


def cache_files(home):
    return sorted((home / "dictionaries").glob("*.npz"))


def cached_array(path):
    with np.load(path, allow_pickle=False) as archive:
        return archive["embeddings"]


def test_second_encoding_comes_from_the_cache(tiny, skplice_home):
    encoder = Counting(tiny)
    words = ["dog", "beach", "red car"]
    first = encode_concepts(words, encoder)
    second = encode_concepts(words, encoder)
    assert encoder.calls == [words]  # encoded once
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, tiny.encode_text(words))
    (path,) = cache_files(skplice_home)
    assert re.fullmatch(r"[0-9a-f]{64}\.npz", path.name)  # named by a hash, not by a user string
    np.testing.assert_array_equal(cached_array(path), first)


def test_cache_key_covers_content_template_and_model(tiny, tiny_clip, skplice_home):
    encoder = Counting(tiny)
    encode_concepts(["dog", "cat"], encoder)
    encode_concepts(["dog", "cats"], encoder)
    encode_concepts(["dog", "cat"], encoder, template="a photo of {}")
    half = Counting(CLIPEmbedder(tiny_clip, pretrained=None, precision="bf16", device="cpu"))
    encode_concepts(["dog", "cat"], half)
    assert encoder.calls == [["dog", "cat"], ["dog", "cats"], ["a photo of dog", "a photo of cat"]]
    assert len(half.calls) == 1 and len(cache_files(skplice_home)) == 4


def test_damaged_cache_file_is_recomputed(tiny, skplice_home):
    words = ["dog", "beach"]
    good = encode_concepts(words, tiny)
    (path,) = cache_files(skplice_home)
    path.write_bytes(b"not a numpy file")
    encoder = Counting(tiny)
    with pytest.warns(UserWarning, match="damaged"):
        again = encode_concepts(words, encoder)
    np.testing.assert_array_equal(again, good)
    assert len(encoder.calls) == 1
    np.testing.assert_array_equal(cached_array(path), good)


class Letters:
    """A toy encoder with an identity, so that its outputs are cached; counts its calls."""

    def __init__(self, on_call=None):
        self.calls, self.on_call = 0, on_call

    def _encoder_identity(self):
        return "letters/1"

    def encode_text(self, texts):
        self.calls += 1
        if self.on_call is not None:
            self.on_call()
        return np.array([[t.count(c) for c in "aeiou"] + [len(t)] for t in texts], float)


WORDS = ["banana", "kiwi", "apple pie"]


def the_entry(home):
    (path,) = (home / "dictionaries").iterdir()
    return path


def flip_a_byte_of(path, array):
    data = bytearray(path.read_bytes())
    start = bytes(data).find(array.tobytes())
    assert start >= 0
    data[start + 5] ^= 0x40  # one bit of one value
    path.write_bytes(bytes(data))


def damage(how, path, good, skplice_home):
    if how == "empty":
        path.write_bytes(b"")
    elif how in ("folder", "fifo"):
        path.unlink()
        path.mkdir() if how == "folder" else os.mkfifo(path)
        if how == "folder":
            (path / "inside").write_text("x")
    elif how == "flipped_byte":
        flip_a_byte_of(path, good)
    elif how == "other_array":  # a valid array of other values in its place
        with open(path, "wb") as file:
            np.save(file, good[::-1].copy())
    elif how == "other_entry":  # a sound entry of another key, copied over this one
        other = encode_concepts(["cherry", "fig", "date"], Letters())
        (newer,) = [p for p in (skplice_home / "dictionaries").iterdir() if p != path]
        assert not np.array_equal(other, good)
        os.replace(newer, path)


@pytest.mark.parametrize(
    "how", ["empty", "folder", "fifo", "flipped_byte", "other_array", "other_entry"]
)
def test_damaged_cache_entry_is_removed_and_recomputed(how, skplice_home):
    good = encode_concepts(WORDS, Letters())
    path = the_entry(skplice_home)
    damage(how, path, good, skplice_home)
    encoder = Letters()
    with pytest.warns(UserWarning, match="damaged concept-dictionary cache file"):
        again = encode_concepts(WORDS, encoder)
    assert encoder.calls == 1
    np.testing.assert_array_equal(again, good)
    with warnings.catch_warnings():  # repaired: the next call reads it, silently
        warnings.simplefilter("error")
        np.testing.assert_array_equal(encode_concepts(WORDS, encoder), good)
    assert encoder.calls == 1 and the_entry(skplice_home).is_file()


def test_read_only_home_disables_the_cache_with_one_warning(skplice_home, read_only):
    read_only(skplice_home)
    encoder = Letters()
    with pytest.warns(UserWarning, match=r"cannot be written.*cache is disabled") as caught:
        first = encode_concepts(WORDS, encoder)
        second = encode_concepts(WORDS, encoder)
        splice = SpLiCETransformer(vocabulary=WORDS, encoder=encoder, center=False)
        splice.fit(np.ones((2, 6)))
    assert sum("cache is disabled" in str(w.message) for w in caught) == 1
    assert str(skplice_home / "dictionaries") in str(caught[0].message)
    assert "SKPLICE_HOME" in str(caught[0].message)
    assert encoder.calls == 3  # computed each time, never stored
    np.testing.assert_array_equal(first, second)
    assert list(skplice_home.iterdir()) == []


def test_read_only_dictionaries_folder_warns_before_encoding(skplice_home, read_only):
    (skplice_home / "dictionaries").mkdir()
    read_only(skplice_home / "dictionaries")
    warned_before = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoder = Letters(on_call=lambda: warned_before.append(len(caught) > 0))
        embeddings = encode_concepts(WORDS, encoder)
    assert warned_before == [True]
    assert "cache is disabled" in str(caught[0].message)
    np.testing.assert_array_equal(embeddings, Letters().encode_text(WORDS))


def test_a_read_only_cache_is_still_read(skplice_home, read_only):
    good = encode_concepts(WORDS, Letters())
    read_only(skplice_home / "dictionaries")
    encoder = Letters()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(encode_concepts(WORDS, encoder), good)
    assert encoder.calls == 0


@pytest.mark.parametrize("blocked", ["home", "dictionaries"])
def test_a_file_where_the_cache_folder_should_be_is_named(blocked, tmp_path, monkeypatch):
    home = tmp_path / "home"
    if blocked == "home":
        home.write_text("not a folder")
        blocker = home
    else:
        home.mkdir()
        blocker = home / "dictionaries"
        blocker.write_text("not a folder")
    monkeypatch.setenv("SKPLICE_HOME", str(home))
    with pytest.raises(NotADirectoryError) as info:
        encode_concepts(WORDS, Letters())
    message = str(info.value)
    assert f"{blocker} is a file" in message and "SKPLICE_HOME" in message


def test_encoders_without_identity_are_not_cached(skplice_home):
    class Letters:
        def encode_text(self, texts):
            return np.array([[t.count(c) for c in "abc"] for t in texts], float)

    encode_concepts(["abc", "cab"], Letters())
    assert not cache_files(skplice_home)


def test_bad_templates_and_encoder_outputs(tiny, skplice_home):
    with pytest.raises(ValueError, match="exactly one"):
        encode_concepts(["dog"], tiny, template="a photo")

    class Broken:
        def encode_text(self, texts):
            return np.full((len(texts), 4), np.nan)

    with pytest.raises(ValueError, match="non-finite"):
        encode_concepts(["dog"], Broken())


def test_transformer_builds_its_dictionary_from_a_named_vocabulary(tiny, vocab_home):
    X = tiny.transform([photos.astronaut(), photos.chelsea(), photos.coffee(), photos.rocket()])
    splice = SpLiCETransformer(encoder=tiny, vocabulary="laion", vocabulary_size=300).fit(X)
    names, raw = build_dictionary("laion", size=300, encoder=tiny)
    assert list(splice.get_feature_names_out()) == names
    assert names[-1] == "-" and len(names) == 300  # the most frequent LAION lines
    expected = unit(unit(raw) - unit(raw).mean(axis=0))
    np.testing.assert_allclose(splice.components_, expected, atol=1e-6)
    W = splice.transform(X)
    assert W.shape == (4, 300) and W.nnz > 0


def test_custom_vocabulary_list_is_used_whole(tiny, skplice_home):
    X = tiny.transform([photos.astronaut(), photos.chelsea()])
    words = ["astronaut", "cat", "coffee", "rocket", "flower"]
    splice = SpLiCETransformer(encoder=tiny, vocabulary=words, template="a photo of {}").fit(X)
    assert list(splice.concept_names_) == words  # vocabulary_size applies to named lists only
    raw = tiny.encode_text([f"a photo of {w}" for w in words])
    np.testing.assert_allclose(splice.components_, unit(unit(raw) - unit(raw).mean(0)), atol=1e-6)


def test_encoder_and_input_widths_must_match(tiny, skplice_home):
    with pytest.raises(ValueError, match="same model"):
        SpLiCETransformer(encoder=tiny, vocabulary=["dog", "cat"]).fit(np.ones((3, 7)))


def test_default_encoder_offline_says_how_to_work_offline(vocab_home, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    splice = SpLiCETransformer(vocabulary=["dog", "cat"], device="cpu")
    with pytest.raises(OSError, match="pretrained='/path/to/checkpoint'"):
        splice.fit(np.ones((3, 512)))
    assert not hasattr(splice, "components_")


PHOTOS = [
    photos.astronaut(),
    photos.chelsea(),
    photos.coffee(),
    photos.rocket(),
    photos.camera(),
    photos.cat(),
    photos.hubble_deep_field(),
    photos.immunohistochemistry(),
]


@pytest.mark.parametrize("weights", ["random", "checkpoint"])
def test_photos_to_probe_with_grid_search(tiny_clip, weights, tmp_path, skplice_home):
    pretrained = None
    if weights == "checkpoint":
        source = CLIPEmbedder(tiny_clip, pretrained=None, device="cpu")
        pretrained = tmp_path / "tiny.pt"
        torch.save(source._bundle().model.state_dict(), pretrained)
    embedder = CLIPEmbedder(tiny_clip, pretrained=pretrained, device="cpu")
    words = ["person", "cat", "cup", "rocket", "galaxy", "tissue", "camera", "sky", "red", "dark"]
    images, labels = PHOTOS * 3, [0, 1, 0, 1, 0, 1, 0, 1] * 3
    pipe = make_pipeline(
        embedder,
        SpLiCETransformer(encoder=embedder, vocabulary=words, l1=0.05),
        LogisticRegression(),
    )
    search = GridSearchCV(pipe, {"splicetransformer__l1": [0.01, 0.05]}, cv=2).fit(images, labels)
    assert search.predict(images[:4]).shape == (4,)
    names = search.best_estimator_[:-1].get_feature_names_out()
    assert list(names) == words
    if weights == "checkpoint":  # the same weights through a file give the same pipeline
        random = make_pipeline(
            CLIPEmbedder(tiny_clip, pretrained=None, device="cpu"),
            SpLiCETransformer(encoder=embedder, vocabulary=words, l1=0.05),
        ).fit(images)
        np.testing.assert_allclose(
            search.best_estimator_[:-1]
            .set_params(splicetransformer__l1=0.05)
            .fit(images)
            .transform(images)
            .toarray(),
            random.transform(images).toarray(),
            atol=1e-6,
        )


@pytest.mark.slow
def test_default_architecture_pipeline_with_grid_search(vocab_home):
    """CLIPEmbedder() + SpLiCETransformer() + LogisticRegression(), random ViT-B-32 weights."""
    embedder = CLIPEmbedder(pretrained=None, device="cpu")
    pipe = make_pipeline(
        embedder,
        SpLiCETransformer(encoder=embedder, vocabulary_size=200),
        LogisticRegression(),
    )
    labels = [0, 1] * 4
    search = GridSearchCV(pipe, {"splicetransformer__l1": [0.1, 0.2]}, cv=2).fit(PHOTOS, labels)
    assert search.best_estimator_[1].components_.shape == (200, 512)
    assert search.predict(PHOTOS).shape == (8,)


SENTENCES = {
    "a dog running on the beach": {"beach", "dog", "dogs", "run", "running", "puppy", "canine"},
    "a bowl of hot soup on a wooden table": {"soup", "bowl", "table", "wooden", "food"},
    "a red sports car parked in the city": {"car", "sports", "red", "city", "parked", "vehicle"},
    "an astronaut floating in space": {"astronaut", "space", "nasa", "floating"},
}


@pytest.fixture(scope="module")
def minilm_splice(minilm_path, tmp_path_factory, vocab_source_dir):
    """SpLiCE over the real top-10k LAION words encoded by the real all-MiniLM-L6-v2."""
    words = (vocab_source_dir / "laion.txt").read_text(encoding="utf-8").splitlines()[-10000:]
    encoder = TextEmbedder(minilm_path, device="cpu")
    rng = np.random.default_rng(0)
    background = [" ".join(rng.choice(words[-3000:], 6)) for _ in range(300)]
    splice = SpLiCETransformer(
        encoder=encoder, vocabulary=words, l1=0.25, center=True, device="cpu"
    )
    home = tmp_path_factory.mktemp("skplice_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKPLICE_HOME", str(home))
        splice.fit(encoder.transform(background + list(SENTENCES)))
    return splice, encoder


def test_sentences_decompose_into_concepts_that_name_their_content(minilm_splice):
    splice, encoder = minilm_splice
    W = splice.transform(encoder.transform(list(SENTENCES))).toarray()
    names = splice.get_feature_names_out()
    for row, (sentence, expected) in zip(W, SENTENCES.items(), strict=True):
        top = [names[i] for i in np.argsort(-row)[:5] if row[i] > 0]
        assert 3 <= (row > 0).sum() <= 60, sentence
        assert len(set(top) & expected) >= 2, (sentence, top)
