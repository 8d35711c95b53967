"""Embeddings remember their CLIP model, so that a pipeline never mixes two models.

Two random-weight open_clip architectures of the same width (32) stand in for two real
models of the same width (ViT-B-32 and ViT-B-16 are both 512-d): their embeddings have the
same shape, so only the model identity carried by the embeddings can tell them apart.
"""

import json
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skplice import CLIPEmbedder, SpLiCETransformer, ZeroShotClassifier
from skplice.embedding._model_tags import ClipEmbeddings, ClipModel, clip_model_of

OTHER_NAME = "skplice-test-other-tiny-clip"
#: A different architecture with the same 32-d embeddings as conftest's tiny CLIP.
OTHER_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 48, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 48, "heads": 2, "layers": 1},
}
WORDS = ["dog", "cat", "beach", "sky", "car", "tree", "snow", "pizza", "boat", "flower"] * 1
WORDS += ["road", "house", "bird", "horse", "rock", "river", "cloud", "book", "cup", "chair"]


@pytest.fixture(scope="module")
def other_clip(tmp_path_factory):
    open_clip = pytest.importorskip("open_clip")
    path = tmp_path_factory.mktemp("open_clip_configs") / f"{OTHER_NAME}.json"
    path.write_text(json.dumps(OTHER_CONFIG))
    open_clip.add_model_config(path)
    return OTHER_NAME


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8) for _ in range(12)]


def embedder(name):
    return CLIPEmbedder(name, pretrained=None, device="cpu")


# ------------------------------------------------------------------- the carried identity


def test_embeddings_carry_their_model_through_views_copies_and_pickles(
    tiny_clip, images, tmp_path
):
    X = embedder(tiny_clip).transform(images)
    expected = ClipModel(tiny_clip, None, "fp32")
    assert isinstance(X, ClipEmbeddings) and X.clip_model == expected
    embedded, kept = embedder(tiny_clip).embed(images)
    assert embedded.clip_model == expected and kept.tolist() == list(range(12))
    kept_forms = {
        "slice": X[2:5],
        "row": X[0],
        "rows": X[[0, 3]],
        "mask": X[np.arange(12) % 2 == 0],
        "take": X.take([1, 2], axis=0),
        "copy": X.copy(),
        "astype": X.astype(np.float64),
        "pickle": pickle.loads(pickle.dumps(X)),
    }
    joblib.dump(X, tmp_path / "X.joblib")  # also what Pipeline(memory=...) stores
    kept_forms["joblib"] = joblib.load(tmp_path / "X.joblib")
    for form, value in kept_forms.items():
        assert clip_model_of(value) == expected, form
    np.testing.assert_array_equal(kept_forms["pickle"], X)
    np.testing.assert_array_equal(kept_forms["joblib"], X)


def test_arithmetic_gives_plain_arrays(tiny_clip, images):
    X = embedder(tiny_clip).transform(images)
    plain = {
        "asarray": np.asarray(X),
        "scaled": X * 2,
        "difference": X - X[0],
        "mean": X.mean(axis=0),
        "sum": X.sum(),
        "product": X @ X.T,
        "norms": np.linalg.norm(X, axis=1),
        "concatenate": np.concatenate([X, X]),
    }
    for form, value in plain.items():
        assert type(value) in (np.ndarray, np.float32), form
        assert clip_model_of(value) is None, form
    np.testing.assert_array_equal(plain["scaled"], np.asarray(X) * 2)
    # In place, the array stays the same object, with its identity.
    Y = X.copy()
    Y /= 2
    assert Y.clip_model == X.clip_model
    np.testing.assert_array_equal(Y, np.asarray(X) / 2)


def test_pandas_output_carries_the_model_in_attrs(tiny_clip, images):
    frame = embedder(tiny_clip).set_output(transform="pandas").transform(images)
    assert isinstance(frame, pd.DataFrame) and frame.shape == (12, 32)
    assert frame.attrs["clip_model"] == ClipModel(tiny_clip, None, "fp32")
    assert list(frame.columns[:2]) == ["clipembedder0", "clipembedder1"]
    assert clip_model_of(frame.iloc[:3]) == ClipModel(tiny_clip, None, "fp32")
    series = pd.Series(images, index=[f"img{i}" for i in range(12)])
    indexed = embedder(tiny_clip).set_output(transform="pandas").transform(series)
    assert list(indexed.index) == list(series.index)
    assert clip_model_of(indexed) == ClipModel(tiny_clip, None, "fp32")


def test_the_model_survives_a_parquet_file(tiny_clip, images, tmp_path):
    pytest.importorskip("pyarrow")
    frame = embedder(tiny_clip).set_output(transform="pandas").transform(images)
    frame.to_parquet(tmp_path / "X.parquet")  # pandas keeps attrs there, as JSON
    assert clip_model_of(pd.read_parquet(tmp_path / "X.parquet")) == frame.attrs["clip_model"]


# --------------------------------------------------------------------- the pipeline


def test_a_pipeline_encodes_its_concepts_with_the_model_of_its_embedder(
    tiny_clip, other_clip, images, skplice_home
):
    y = np.arange(12) % 2
    probe = make_pipeline(
        embedder(other_clip),
        SpLiCETransformer(l1=0.05, vocabulary=WORDS, device="cpu"),
        LogisticRegression(),
    ).fit(images, y)
    splice = probe[1]
    assert splice.clip_model_ == f"{other_clip} (random weights)"
    X = np.asarray(embedder(other_clip).transform(images))  # plain: no model to follow
    with_other = SpLiCETransformer(vocabulary=WORDS, encoder=embedder(other_clip)).fit(X)
    with_tiny = SpLiCETransformer(vocabulary=WORDS, encoder=embedder(tiny_clip)).fit(X)
    np.testing.assert_array_equal(splice.components_, with_other.components_)
    assert not np.allclose(splice.components_, with_tiny.components_)
    assert probe.predict(images).shape == (12,)


def test_an_explicit_encoder_of_another_model_is_refused(tiny_clip, other_clip, images):
    X = embedder(other_clip).transform(images)
    splice = SpLiCETransformer(vocabulary=WORDS, encoder=embedder(tiny_clip))
    with pytest.raises(ValueError, match=r"X was embedded by .*other-tiny-clip.* but encoder"):
        splice.fit(X)
    assert not hasattr(splice, "components_")


def test_embeddings_of_another_model_are_refused_after_fit(
    tiny_clip, other_clip, images, skplice_home
):
    splice = SpLiCETransformer(l1=0.05, vocabulary=WORDS).fit(
        embedder(other_clip).transform(images)
    )
    X_tiny = embedder(tiny_clip).transform(images)
    for method in (splice.transform, splice.partial_fit, splice.score):
        with pytest.raises(ValueError, match="but this SpLiCETransformer was fitted for"):
            method(X_tiny)
    assert splice.n_samples_seen_ == 12  # partial_fit left no trace
    splice.transform(np.asarray(X_tiny))  # plain arrays are trusted, as before


def test_a_grid_search_on_precomputed_embeddings_follows_their_model(
    other_clip, images, skplice_home
):
    X = embedder(other_clip).transform(images)
    search = GridSearchCV(
        make_pipeline(SpLiCETransformer(vocabulary=WORDS), LogisticRegression()),
        {"splicetransformer__l1": [0.05, 0.1]},
        cv=2,
    ).fit(X, np.arange(12) % 2)
    assert search.best_estimator_[0].clip_model_ == f"{other_clip} (random weights)"


CLASSES = ["dog", "cat", "car"]


def test_zero_shot_encodes_its_prompts_with_the_model_of_its_embedder(
    tiny_clip, other_clip, images
):
    zero_shot = make_pipeline(embedder(other_clip), ZeroShotClassifier(CLASSES)).fit(images)
    clf = zero_shot[-1]
    assert clf.clip_model_ == f"{other_clip} (random weights)"
    X = np.asarray(embedder(other_clip).transform(images))  # plain: no model to follow
    with_other = ZeroShotClassifier(CLASSES, encoder=embedder(other_clip)).fit(X)
    with_tiny = ZeroShotClassifier(CLASSES, encoder=embedder(tiny_clip)).fit(X)
    np.testing.assert_array_equal(clf.class_embeddings_, with_other.class_embeddings_)
    assert not np.allclose(clf.class_embeddings_, with_tiny.class_embeddings_)
    np.testing.assert_array_equal(zero_shot.predict(images), with_other.predict(X))


def test_zero_shot_refuses_a_prompt_encoder_or_embeddings_of_another_model(
    tiny_clip, other_clip, images
):
    X_other = embedder(other_clip).transform(images)
    clf = ZeroShotClassifier(CLASSES, encoder=embedder(tiny_clip))
    with pytest.raises(ValueError, match=r"X was embedded by .*other-tiny-clip.* but encoder"):
        clf.fit(X_other)
    assert not hasattr(clf, "class_embeddings_")
    clf = ZeroShotClassifier(CLASSES).fit(X_other)
    X_tiny = embedder(tiny_clip).transform(images)
    for method in (clf.predict, clf.predict_proba, clf.decision_function):
        with pytest.raises(ValueError, match="but this ZeroShotClassifier was fitted for"):
            method(X_tiny)
    assert clf.predict(np.asarray(X_tiny)).shape == (12,)  # plain arrays are trusted


def test_reconstructions_carry_the_model_to_a_zero_shot_classifier(
    other_clip, images, skplice_home
):
    reconstruct = SpLiCETransformer(
        l1=0.05, vocabulary=WORDS, output="reconstruction", device="cpu"
    )
    pipeline = make_pipeline(embedder(other_clip), reconstruct, ZeroShotClassifier(CLASSES))
    pipeline.fit(images)
    expected = ClipModel(other_clip, None, "fp32")
    assert clip_model_of(pipeline[:-1].transform(images)) == expected
    assert pipeline[-1].clip_model_ == expected.label()
    weights = SpLiCETransformer(l1=0.05, vocabulary=WORDS, device="cpu").fit(
        embedder(other_clip).transform(images)
    )
    W = weights.transform(embedder(other_clip).transform(images))
    assert clip_model_of(weights.inverse_transform(W)) == expected


LAION = ("ViT-B-32", "laion2b_s34b_b79k")


@pytest.mark.parametrize(
    ("a", "b", "differ"),
    [
        (LAION, ("ViT-B-16", "laion2b_s34b_b88k"), True),  # another architecture
        (LAION, ("ViT-B-32", "openai"), True),  # other weights
        (LAION, ("ViT-B-32", None), True),  # random weights
        (LAION, LAION, False),
        (LAION, ("ViT-B-32", "/models/open_clip_pytorch_model.bin"), False),  # may be LAION's
        (LAION, ("ViT-B-16", "/models/open_clip_pytorch_model.bin"), True),
        (("hf-hub:org/a", None), ("hf-hub:org/b", None), True),
        (("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", None), LAION, False),
        (("local-dir:/models/clip", None), LAION, False),
    ],
)
def test_which_models_surely_differ(a, b, differ):
    first, second = ClipModel(*a, "fp32"), ClipModel(*b, "fp16")  # precision aside
    assert first.differs_from(second) is differ
    assert second.differs_from(first) is differ
