"""The ``memory=`` embedding cache of CLIPEmbedder and TextEmbedder.

Forward passes are counted by a forward hook on the image tower of the (process-wide)
cached model, so "embedded once" is measured on the model, not taken from the cache's
own counters; those counters (``embedding_cache_info``) are checked against it.
"""

import json
import pickle
import warnings

import joblib
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skplice import CLIPEmbedder, SpLiCETransformer, TextEmbedder
from skplice.embedding import _embedding_cache, embedding_cache_info
from skplice.exceptions import SkippedImagesWarning

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore:No pretrained weights loaded")

WORDS = "dog cat car tree sky sea beach road house person food plane boat snow grass".split()
N_IMAGES = 20


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """N_IMAGES distinct PNG photos (crops and flips of skimage's) and a label for each."""
    folder = tmp_path_factory.mktemp("cache_photos")
    sources = {"astronaut": 0, "rocket": 0, "chelsea": 1, "coffee": 1}
    paths, labels = [], []
    for k in range(N_IMAGES // len(sources)):
        for name, label in sources.items():
            photo = getattr(skdata, name)()[10 * k : 10 * k + 200, 15 * k : 15 * k + 240]
            if k % 2:
                photo = photo[:, ::-1]
            path = folder / f"{name}-{k}.png"
            Image.fromarray(np.ascontiguousarray(photo)).save(path)
            paths.append(str(path))
            labels.append(label)
    return paths, np.array(labels)


def _clip(tiny_clip, **params):
    return CLIPEmbedder(tiny_clip, **{"pretrained": None, "device": "cpu", **params})


class _ImagesEmbedded:
    """Counts the images that go through a model's image tower."""

    def __init__(self, model):
        self.count = 0
        self.handle = model.visual.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.count += args[0].shape[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def _delta(before):
    return {k: v - getattr(before, k) for k, v in embedding_cache_info()._asdict().items()}


def _search(tiny_clip, memory, paths, y):
    pipeline = make_pipeline(
        # batch_size=1: every image is encoded alone, so recomputed embeddings are
        # bit-identical to cached ones and the two searches can be compared exactly
        _clip(tiny_clip, batch_size=1, memory=memory),
        SpLiCETransformer(l1=0.2, encoder=_clip(tiny_clip), vocabulary=WORDS),
        LogisticRegression(),
    )
    grid = {"splicetransformer__l1": [0.1, 0.2, 0.3]}
    return GridSearchCV(pipeline, grid, cv=5, error_score="raise").fit(paths, y)


def test_literal_pipeline_grid_search_embeds_each_image_once(
    tiny_clip, image_files, skplice_home, tmp_path
):
    paths, y = image_files
    model = _clip(tiny_clip)._bundle().model
    with _ImagesEmbedded(model) as uncached:
        plain = _search(tiny_clip, None, paths, y)
    # 5 folds x 3 candidates x (16 training + 4 validation images), and the refit
    assert uncached.count == 16 * N_IMAGES

    before = embedding_cache_info()
    with _ImagesEmbedded(model) as cached:
        search = _search(tiny_clip, str(tmp_path / "cache"), paths, y)
    assert cached.count == N_IMAGES
    counts = _delta(before)
    assert counts == {"hits": 15 * N_IMAGES, "misses": N_IMAGES, "writes": N_IMAGES, "damaged": 0}

    assert search.best_params_ == plain.best_params_
    for key in ("mean_test_score", *(f"split{k}_test_score" for k in range(5))):
        np.testing.assert_array_equal(search.cv_results_[key], plain.cv_results_[key])
    np.testing.assert_array_equal(search.predict_proba(paths), plain.predict_proba(paths))

    # a second run of the same search embeds nothing at all
    with _ImagesEmbedded(model) as again:
        _search(tiny_clip, str(tmp_path / "cache"), paths, y)
    assert again.count == 0


def test_entries_are_plain_arrays_one_per_image(tiny_clip, image_files, tmp_path):
    paths, _ = image_files
    X = _clip(tiny_clip, memory=tmp_path).transform(paths[:5])
    entries = sorted((tmp_path / _embedding_cache.FOLDER_NAME).rglob("*.npy"))
    assert len(entries) == 5
    rows = {tuple(np.load(path, allow_pickle=False)) for path in entries}
    assert rows == {tuple(row) for row in X}
    (folder,) = (tmp_path / _embedding_cache.FOLDER_NAME).iterdir()
    identity = (folder / "encoder.txt").read_text()
    assert identity.strip() == _clip(tiny_clip)._encoder_identity()
    assert not list(tmp_path.rglob("*.part"))


def test_content_not_names_nor_device_settings_find_an_entry(tiny_clip, image_files, tmp_path):
    paths, _ = image_files
    embedder = _clip(tiny_clip, memory=tmp_path, batch_size=4)
    X = embedder.transform(paths[:3])
    copy = tmp_path / "renamed.png"
    copy.write_bytes(open(paths[0], "rb").read())
    encoded = open(paths[1], "rb").read()
    before = embedding_cache_info()
    # a renamed copy, the file's bytes, a path object; another batch size and n_jobs
    other = clone(embedder).set_params(batch_size=1, n_jobs=2)
    Y = other.transform([str(copy), encoded, type(copy)(paths[2])])
    assert _delta(before)["hits"] == 3 and _delta(before)["misses"] == 0
    np.testing.assert_array_equal(Y, X)


def test_arrays_and_pil_images_are_keyed_by_what_the_model_sees(tiny_clip, tmp_path):
    photo = skdata.chelsea()[:120, :160]
    key = _embedding_cache.image_key
    assert key(photo) == key(photo.copy()) == key(np.asfortranarray(photo))
    assert key(photo) != key(photo.astype(np.uint16))  # same values, another dtype
    assert key(photo) != key(photo.reshape(160, 120, 3))  # same bytes, another shape
    pil = Image.fromarray(photo)
    assert key(pil) == key(Image.fromarray(photo.copy()))
    # the same pixels under another EXIF orientation are another image to the model
    rotated = Image.fromarray(photo)
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.info["exif"] = exif.tobytes()
    assert key(rotated) != key(pil)
    assert key(np.array([None, 1], dtype=object)) is None
    assert key(str(tmp_path / "missing.png")) is None

    embedder = _clip(tiny_clip, memory=tmp_path)
    first = embedder.transform([photo, pil])
    before = embedding_cache_info()
    np.testing.assert_array_equal(embedder.transform([pil.copy(), photo.copy()]), first[::-1])
    assert _delta(before)["hits"] == 2


def test_weights_preprocessing_precision_and_normalize_miss(
    tiny_clip, tiny_clip_config_path, image_files, tmp_path
):
    paths, _ = image_files
    cache = tmp_path / "cache"
    model = _clip(tiny_clip)._bundle().model
    weights = tmp_path / "weights.pt"
    torch.save(model.state_dict(), weights)
    changed = {k: v.clone() for k, v in model.state_dict().items()}
    changed["visual.proj"][:, 0] *= -3.0
    changed_weights = tmp_path / "changed.pt"
    torch.save(changed, changed_weights)
    config = json.loads(tiny_clip_config_path.read_text())

    def local_dir(name, preprocess):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "open_clip_config.json").write_text(
            json.dumps({"model_cfg": config, "preprocess_cfg": preprocess})
        )
        (folder / "open_clip_pytorch_model.bin").write_bytes(weights.read_bytes())
        return f"local-dir:{folder}"

    openai = {
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
    }
    variants = {
        "checkpoint": _clip(tiny_clip, pretrained=str(weights)),
        "changed weights": _clip(tiny_clip, pretrained=str(changed_weights)),
        "local folder": CLIPEmbedder(local_dir("a", openai), device="cpu"),
        "other preprocessing": CLIPEmbedder(
            local_dir("b", {"mean": [0.5] * 3, "std": [0.5] * 3}), device="cpu"
        ),
        "bf16": _clip(tiny_clip, pretrained=str(weights), precision="bf16"),
        "not normalized": _clip(tiny_clip, pretrained=str(weights), normalize=False),
    }
    results = {}
    for name, embedder in variants.items():
        before = embedding_cache_info()
        results[name] = embedder.set_params(memory=cache).transform(paths[:2])
        assert _delta(before)["misses"] == 2, f"{name} found another encoder's entries"
    # each change is real: it changes the embeddings
    for name in ("changed weights", "other preprocessing", "bf16", "not normalized"):
        assert not np.allclose(results[name], results["checkpoint"], atol=1e-4), name
    # the same weights under another file name, and the same folder elsewhere, hit
    renamed = tmp_path / "renamed.pt"
    renamed.write_bytes(weights.read_bytes())
    moved = tmp_path / "moved"
    (tmp_path / "a").rename(moved)
    for embedder, expected in [
        (_clip(tiny_clip, pretrained=str(renamed)), results["checkpoint"]),
        (CLIPEmbedder(f"local-dir:{moved}", device="cpu"), results["local folder"]),
    ]:
        before = embedding_cache_info()
        np.testing.assert_array_equal(
            embedder.set_params(memory=cache).transform(paths[:2]), expected
        )
        assert _delta(before) == {"hits": 2, "misses": 0, "writes": 0, "damaged": 0}


@pytest.mark.parametrize(
    "damage",
    ["truncated", "garbage", "empty", "wrong shape", "not unit norm", "nan", "pickle"],
)
def test_damaged_entry_is_recomputed_with_a_warning(tiny_clip, image_files, tmp_path, damage):
    paths, _ = image_files
    embedder = _clip(tiny_clip, memory=tmp_path)
    X = embedder.transform(paths[:2])
    (entry, *_) = sorted((tmp_path / _embedding_cache.FOLDER_NAME).rglob("*.npy"))
    good = np.load(entry)
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:100])
    elif damage == "garbage":
        entry.write_bytes(b"\x93NUMPY" + bytes(range(200)))
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "wrong shape":
        np.save(entry, good[:-1])
    elif damage == "not unit norm":
        np.save(entry, 2 * good)
    elif damage == "nan":
        np.save(entry, np.full_like(good, np.nan))
    else:
        np.save(entry, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    before = embedding_cache_info()
    with pytest.warns(UserWarning, match=r"Ignored 1 damaged embedding cache entries"):
        Y = embedder.transform(paths[:2])
    np.testing.assert_array_equal(Y, X)
    assert _delta(before) == {"hits": 1, "misses": 1, "writes": 1, "damaged": 1}
    np.testing.assert_array_equal(np.load(entry, allow_pickle=False), good)  # rewritten


def test_unwritable_entries_warn_and_the_results_stand(tiny_clip, image_files, tmp_path):
    paths, _ = image_files
    X = _clip(tiny_clip).transform(paths[:2])
    embedder = _clip(tiny_clip, memory=tmp_path)
    embedder.transform(paths[:1])
    (folder,) = (tmp_path / _embedding_cache.FOLDER_NAME).iterdir()
    key = _embedding_cache.image_key(paths[1])
    (folder / key[:2]).write_bytes(b"")  # a file where the entry's folder should be
    with pytest.warns(UserWarning, match=r"Could not write 1 embedding cache entries"):
        np.testing.assert_array_equal(embedder.transform(paths[:2]), X)


def test_cache_folder_that_cannot_be_created_is_an_error(tiny_clip, image_files, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OSError, match=r"Cannot create the embedding cache folder .*memory="):
        _clip(tiny_clip, memory=tmp_path / "file").transform(image_files[0][:1])


def test_skipped_images_are_not_cached_and_skipped_again(tiny_clip, image_files, tmp_path):
    paths, _ = image_files
    broken = tmp_path / "broken.png"
    broken.write_bytes(open(paths[0], "rb").read()[:200])
    items = [paths[0], str(broken), paths[1], str(tmp_path / "missing.png")]
    embedder = _clip(tiny_clip, memory=tmp_path / "cache", on_error="skip")
    for _ in range(2):
        with pytest.warns(SkippedImagesWarning) as caught:
            X, kept = embedder.embed(items)
        assert [i for i, _, _ in caught[0].message.skipped] == [1, 3]
        assert kept.tolist() == [0, 2]
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 2
    np.testing.assert_array_equal(X, _clip(tiny_clip).transform([paths[0], paths[1]]))


def test_repeated_images_and_texts_are_embedded_once(tiny_clip, image_files, tmp_path):
    paths, _ = image_files
    embedder = _clip(tiny_clip, memory=tmp_path, on_error="skip")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    items = [paths[0], paths[1], paths[0], str(broken), open(paths[1], "rb").read(), str(broken)]
    with _ImagesEmbedded(embedder._bundle().model) as embedded:
        with pytest.warns(SkippedImagesWarning) as caught:
            X, kept = embedder.embed(items)
    assert embedded.count == 2
    assert kept.tolist() == [0, 1, 2, 4]
    assert [i for i, _, _ in caught[0].message.skipped] == [3, 5]
    expected = _clip(tiny_clip).transform([paths[i] for i in (0, 1, 0, 1)])
    np.testing.assert_allclose(X, expected, atol=1e-6)

    texts = ["a dog", "a cat", "a dog", ""]
    T = embedder.encode_text(texts)
    np.testing.assert_array_equal(T[2], T[0])
    np.testing.assert_allclose(T, _clip(tiny_clip).encode_text(texts), atol=1e-6)


def test_encode_text_is_cached_too(tiny_clip, tmp_path):
    texts = ["a dog", "an astronaut riding a horse", "", "dog"]
    embedder = _clip(tiny_clip, memory=tmp_path, verbose=True)
    T = embedder.encode_text(texts)
    before = embedding_cache_info()
    np.testing.assert_array_equal(embedder.encode_text(texts[::-1]), T[::-1])
    assert _delta(before)["hits"] == 4
    # images and texts of one model share its folder without colliding
    assert len(list(tmp_path.rglob("*.npy"))) == 4


def test_text_embedder_memory(minilm_path, tmp_path):
    texts = ["a dog running on the beach", "a spreadsheet", "a dog running on the beach"]
    embedder = TextEmbedder(minilm_path, device="cpu", memory=joblib.Memory(tmp_path, verbose=0))
    plain = TextEmbedder(minilm_path, device="cpu").encode_text(texts)
    before = embedding_cache_info()
    np.testing.assert_allclose(embedder.transform(texts), plain, atol=1e-6)
    assert _delta(before) == {"hits": 0, "misses": 3, "writes": 2, "damaged": 0}
    np.testing.assert_allclose(embedder.encode_text(texts[1:]), plain[1:], atol=1e-6)
    assert _delta(before)["hits"] == 2


def test_memory_parameter_clones_pickles_and_validates(tiny_clip, image_files, tmp_path):
    memory = joblib.Memory(tmp_path, verbose=0)
    embedder = _clip(tiny_clip, memory=memory)
    assert embedder.get_params()["memory"] is memory  # stored unchanged
    twin = clone(embedder)
    assert twin.memory.location == memory.location
    restored = pickle.loads(pickle.dumps(embedder))
    X = restored.transform(image_files[0][:2])
    assert len(list((tmp_path / _embedding_cache.FOLDER_NAME).rglob("*.npy"))) == 2
    np.testing.assert_array_equal(twin.transform(image_files[0][:2]), X)

    # joblib.Memory(None) caches nothing, as in joblib
    disabled = _clip(tiny_clip, memory=joblib.Memory(None, verbose=0))
    before = embedding_cache_info()
    disabled.transform(image_files[0][:1])
    assert _delta(before) == {"hits": 0, "misses": 0, "writes": 0, "damaged": 0}

    with pytest.raises(InvalidParameterError, match="memory"):
        _clip(tiny_clip, memory=3).fit(image_files[0])

    class NoLocation:
        def cache(self, func):
            return func

    with pytest.raises(TypeError, match="has no location"):
        _clip(tiny_clip, memory=NoLocation()).fit(image_files[0])


@pytest.mark.slow
def test_parallel_grid_search_processes_share_one_cache(
    tiny_clip, tiny_clip_config_path, image_files, skplice_home, tmp_path
):
    """GridSearchCV(n_jobs=2) in separate processes: same results, one entry per image."""
    paths, y = image_files
    folder = tmp_path / "model"  # a local folder: worker processes load it by path
    folder.mkdir()
    config = json.loads(tiny_clip_config_path.read_text())
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))
    torch.save(
        _clip(tiny_clip)._bundle().model.state_dict(), folder / "open_clip_pytorch_model.bin"
    )

    def search(memory, n_jobs):
        clip = CLIPEmbedder(f"local-dir:{folder}", device="cpu", batch_size=1, memory=memory)
        pipeline = make_pipeline(
            clip,
            SpLiCETransformer(
                l1=0.2, encoder=clone(clip).set_params(memory=None), vocabulary=WORDS
            ),
            LogisticRegression(),
        )
        grid = {"splicetransformer__l1": [0.1, 0.2, 0.3]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return GridSearchCV(pipeline, grid, cv=5, n_jobs=n_jobs, error_score="raise").fit(
                paths, y
            )

    plain = search(None, 1)
    memory = joblib.Memory(tmp_path / "cache", verbose=0)
    parallel = search(memory, 2)
    assert parallel.best_params_ == plain.best_params_
    np.testing.assert_array_equal(
        parallel.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"]
    )
    entries = list((tmp_path / "cache" / _embedding_cache.FOLDER_NAME).rglob("*.npy"))
    assert len(entries) == N_IMAGES
    assert not list((tmp_path / "cache").rglob("*.part"))
    X = CLIPEmbedder(f"local-dir:{folder}", device="cpu", batch_size=1).transform(paths)
    assert {tuple(np.load(e, allow_pickle=False)) for e in entries} == {tuple(r) for r in X}
