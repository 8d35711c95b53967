"""ZeroShotClassifier: CLIP's zero-shot protocol on dense embeddings and SpLiCE reconstructions."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import clone
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skplice import CLIPEmbedder, SpLiCETransformer, ZeroShotClassifier
from skplice.embedding._model_tags import clip_model_of, text_encoder_for


def unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


class TrigramEncoder:
    """A deterministic toy text encoder: hashed character trigrams, any width."""

    def __init__(self, width=256):
        self.width = width
        self.calls = 0

    def encode_text(self, texts):
        self.calls += 1
        vectorizer = HashingVectorizer(
            n_features=self.width, analyzer="char_wb", ngram_range=(3, 3), alternate_sign=False
        )
        return vectorizer.transform(texts).toarray()


ANIMALS = ["cat", "dog", "horse"]


@pytest.fixture
def toy():
    """Toy embeddings that name their class, so the trigram encoder classifies them."""
    encoder = TrigramEncoder()
    texts = ["my cat sleeps", "a cat on a mat", "two dogs", "a dog barks", "a horse runs"]
    return encoder.encode_text(texts), np.array(["cat", "cat", "dog", "dog", "horse"]), encoder


# ------------------------------------------------------------------ the protocol


def test_minilm_sentences_are_classified_far_above_chance(class_sentences, minilm_encoder):
    X, y, names = class_sentences
    clf = ZeroShotClassifier(names, encoder=minilm_encoder).fit(X, y)
    assert clf.score(X, y) >= 0.9  # chance is 1/6; the sentences never name their class
    assert list(clf.classes_) == names
    assert clf.class_embeddings_.shape == (6, 384) and clf.n_features_in_ == 384


def test_probabilities_are_a_softmax_consistent_with_predict(class_sentences, minilm_encoder):
    X, _, names = class_sentences
    clf = ZeroShotClassifier(names, encoder=minilm_encoder, logit_scale=50.0).fit(X)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
    np.testing.assert_allclose(np.log(proba), clf.predict_log_proba(X), atol=1e-6)
    logits = 50.0 * clf.decision_function(X)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, expected, atol=1e-6)


def test_decision_function_is_the_cosine_with_the_prompt_embedding(
    class_sentences, minilm_encoder
):
    X, _, names = class_sentences
    clf = ZeroShotClassifier(names, encoder=minilm_encoder).fit(X)
    prompts = unit(minilm_encoder.encode_text([f"a photo of a {name}." for name in names]))
    np.testing.assert_allclose(clf.decision_function(X), unit(X) @ prompts.T, atol=1e-5)
    # With two classes, scikit-learn's binary convention: one score, positive for classes_[1].
    binary = ZeroShotClassifier(["cat", "dog"], encoder=minilm_encoder).fit(X)
    scores = binary.decision_function(X)
    cat, dog = prompts[names.index("cat")], prompts[names.index("dog")]
    np.testing.assert_allclose(scores, unit(X) @ (dog - cat), atol=1e-5)
    np.testing.assert_array_equal(binary.predict(X), np.where(scores > 0, "dog", "cat"))


def test_class_embedding_is_the_normalised_mean_of_normalised_prompts(toy):
    X, _, encoder = toy
    templates = ["a photo of a {}.", "a drawing of a {}."]
    classes = {"feline": ["cat", "kitten"], "canine": "dog"}
    clf = ZeroShotClassifier(classes, templates=templates, encoder=encoder).fit(X)
    cat_prompts = [t.format(name) for name in ("cat", "kitten") for t in templates]
    dog_prompts = [t.format("dog") for t in templates]
    expected = [
        unit(unit(encoder.encode_text(prompts)).mean(axis=0))
        for prompts in (cat_prompts, dog_prompts)
    ]
    np.testing.assert_allclose(clf.class_embeddings_, np.stack(expected), atol=1e-12)
    # The prompts' scale does not matter: each is normalised before averaging.
    assert list(clf.classes_) == ["feline", "canine"]


def test_a_single_template_string_is_one_template(toy):
    X, _, encoder = toy
    as_string = ZeroShotClassifier(ANIMALS, templates="{}", encoder=encoder).fit(X)
    as_tuple = ZeroShotClassifier(ANIMALS, templates=("{}",), encoder=encoder).fit(X)
    np.testing.assert_array_equal(as_string.class_embeddings_, as_tuple.class_embeddings_)


def test_dict_classes_predict_their_labels(toy):
    X, y, encoder = toy
    by_name = ZeroShotClassifier(ANIMALS, encoder=encoder).fit(X, y)
    by_index = ZeroShotClassifier(dict(enumerate(ANIMALS)), encoder=encoder)
    y_index = np.array([ANIMALS.index(label) for label in y])
    by_index.fit(X, y_index)
    assert by_index.classes_.dtype.kind == "i"
    np.testing.assert_array_equal(np.asarray(ANIMALS)[by_index.predict(X)], by_name.predict(X))
    assert by_name.score(X, y) == by_index.score(X, y_index) == 1.0


def test_mixed_type_labels_keep_their_types(toy):
    X, _, encoder = toy
    clf = ZeroShotClassifier({0: "cat", "dog": "dog"}, encoder=encoder).fit(X)
    assert clf.classes_.dtype == object and clf.classes_.tolist() == [0, "dog"]


def test_float32_input_and_zero_rows(toy):
    X, _, encoder = toy
    clf = ZeroShotClassifier(ANIMALS, encoder=encoder).fit(X)
    X32 = X.astype(np.float32)
    np.testing.assert_array_equal(clf.predict(X32), clf.predict(X))
    assert clf.decision_function(X32).dtype == np.float32
    # A zero embedding has no direction: every class is equally likely.
    np.testing.assert_allclose(clf.predict_proba(np.zeros((1, X.shape[1]))), [[1 / 3] * 3])


def test_inputs_are_not_modified(toy):
    X, y, encoder = toy
    X.setflags(write=False)
    y_before = y.copy()
    classes = {"cat": ["cat", "kitten"], "dog": "dog", "horse": "horse"}
    templates = ["a {}", "the {}"]
    clf = ZeroShotClassifier(classes, templates=templates, encoder=encoder)
    clf.fit(X, y).predict_proba(X)
    assert classes == {"cat": ["cat", "kitten"], "dog": "dog", "horse": "horse"}
    assert templates == ["a {}", "the {}"] and clf.classes is classes
    np.testing.assert_array_equal(y, y_before)


# ---------------------------------------------------------------------- errors


def test_width_mismatch_points_to_the_model_and_to_reconstructions(toy):
    X, _, _ = toy
    clf = ZeroShotClassifier(ANIMALS, encoder=TrigramEncoder(width=64))
    message = r"X has 256 features but the encoder embeds the prompts in 64.*'reconstruction'"
    with pytest.raises(ValueError, match=message):
        clf.fit(X)
    assert not hasattr(clf, "n_features_in_")  # a failed fit leaves no state
    fitted = ZeroShotClassifier(ANIMALS, encoder=TrigramEncoder()).fit(X)
    with pytest.raises(ValueError, match="X has 64 features"):
        fitted.predict(X[:, :64])


def test_sparse_concept_weights_are_refused_with_the_fix(toy):
    X, _, encoder = toy
    clf = ZeroShotClassifier(ANIMALS, encoder=encoder)
    with pytest.raises(TypeError, match=r"SpLiCETransformer\(output='reconstruction'\)"):
        clf.fit(sp.csr_matrix(X))
    clf.fit(X)
    with pytest.raises(TypeError, match="sparse matrix"):
        clf.predict(sp.csr_matrix(X))


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (["cat", "cat", "dog", "dog", "zebra"], r"1 labels that are not classes: \['zebra'\]"),
        ([0, 0, 1, 1, 2], r"classes=dict\(enumerate\(names\)\)"),
        ([0.5, 0.1, 1.2, 3.3, 2.0], "Unknown label type"),
        (["cat", "dog"], "inconsistent numbers of samples"),
    ],
)
def test_labels_must_be_classes(toy, y, message):
    X, _, encoder = toy
    clf = ZeroShotClassifier(ANIMALS, encoder=encoder)
    with pytest.raises(ValueError, match=message):
        clf.fit(X, y)
    assert encoder.calls == 1  # the toy fixture's own call: labels are checked before encoding
    assert not hasattr(clf, "classes_")


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"classes": ["cat"]}, ValueError, "at least 2 classes"),
        ({"classes": ["cat", "cat"]}, ValueError, "Class names must be unique"),
        ({"classes": {"cat": [], "dog": "dog"}}, ValueError, "Class 'cat' needs one or more"),
        ({"classes": ["cat", ""]}, ValueError, "Class '' needs one or more"),
        ({"classes": ["cat", 3]}, ValueError, "Class 3 needs one or more"),
        ({"classes": np.array([["cat", "dog"]])}, ValueError, "one-dimensional"),
        ({"templates": "a photo"}, ValueError, "must contain exactly one"),
        ({"templates": []}, ValueError, "templates is empty"),
        ({"logit_scale": 0.0}, InvalidParameterError, "logit_scale"),
        ({"encoder": "clip"}, InvalidParameterError, "encoder"),
        ({"classes": "cat"}, InvalidParameterError, "classes"),
    ],
)
def test_bad_configuration_raises_a_clear_error(toy, params, error, message):
    X, _, encoder = toy
    params = {"classes": ANIMALS, "encoder": encoder, **params}
    with pytest.raises(error, match=message):
        ZeroShotClassifier(**params).fit(X)


def test_an_encoder_must_return_one_direction_per_prompt(toy):
    X, _, _ = toy

    class Broken:
        def __init__(self, output):
            self.output = output

        def encode_text(self, texts):
            return self.output(len(texts))

    with pytest.raises(ValueError, match=r"shape \(256,\) for 3 prompts"):
        ZeroShotClassifier(ANIMALS, encoder=Broken(lambda n: np.ones(256))).fit(X)
    with pytest.raises(ValueError, match="zero or non-finite embedding for the prompt 'a photo"):
        ZeroShotClassifier(ANIMALS, encoder=Broken(lambda n: np.zeros((n, 256)))).fit(X)
    opposite = Broken(lambda n: np.tile([[1.0] * 256, [-1.0] * 256], (n // 2, 1)))
    with pytest.raises(ValueError, match="cancel out"):
        ZeroShotClassifier(["cat", "dog"], templates=["{}", "a {}"], encoder=opposite).fit(X)


def test_unfitted_classifier_raises_not_fitted(toy):
    X, _, encoder = toy
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        with pytest.raises(NotFittedError):
            getattr(ZeroShotClassifier(ANIMALS, encoder=encoder), method)(X)


# ------------------------------------------------------- scikit-learn contract


def test_clone_and_params(toy):
    X, _, encoder = toy
    clf = ZeroShotClassifier(ANIMALS, templates=("{}",), encoder=encoder, logit_scale=10.0)
    assert clf.get_params() == {
        "classes": ANIMALS,
        "templates": ("{}",),
        "encoder": encoder,
        "logit_scale": 10.0,
    }
    clf.fit(X)
    copy = clone(clf)
    assert not hasattr(copy, "classes_") and copy.get_params()["classes"] == ANIMALS
    assert copy.set_params(logit_scale=1.0).logit_scale == 1.0 and clf.logit_scale == 10.0


def test_prediction_never_calls_the_encoder_and_survives_pickling(toy):
    X, _, encoder = toy
    clf = ZeroShotClassifier(ANIMALS, encoder=encoder).fit(X)
    calls = encoder.calls
    expected = clf.predict_proba(X)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), expected)
    np.testing.assert_array_equal(clf.predict_proba(X), expected)
    assert encoder.calls == calls


def test_methods_are_per_sample_and_leave_the_estimator_unchanged(toy):
    X, _, encoder = toy
    clf = ZeroShotClassifier(ANIMALS, encoder=encoder).fit(X)
    state = {
        key: value.copy() if hasattr(value, "copy") else value for key, value in vars(clf).items()
    }
    order = np.random.default_rng(0).permutation(len(X))
    for method in ("predict_proba", "decision_function"):
        full = getattr(clf, method)(X)
        np.testing.assert_allclose(getattr(clf, method)(X[order]), full[order], atol=1e-12)
        np.testing.assert_allclose(getattr(clf, method)(X[1:4]), full[1:4], atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X[order]), clf.predict(X)[order])
    assert vars(clf).keys() == state.keys()
    np.testing.assert_array_equal(clf.class_embeddings_, state["class_embeddings_"])
    refitted = clf.fit(X[:2])  # refitting gives the same state: nothing depends on the data
    np.testing.assert_array_equal(refitted.class_embeddings_, state["class_embeddings_"])


def test_dataframe_inputs_record_feature_names(toy):
    pd = pytest.importorskip("pandas")
    X, _, encoder = toy
    frame = pd.DataFrame(X, columns=[f"dim{i}" for i in range(X.shape[1])])
    clf = ZeroShotClassifier(ANIMALS, encoder=encoder).fit(frame)
    assert list(clf.feature_names_in_) == list(frame.columns) and clf.n_features_in_ == 256
    from_array = ZeroShotClassifier(ANIMALS, encoder=encoder).fit(X)
    np.testing.assert_array_equal(clf.predict(frame), from_array.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame.rename(columns={"dim0": "other"}))


def test_encoder_none_means_the_default_clip_embedder():
    # Plain embeddings do not say which model made them: the prompts are then encoded by
    # the default CLIPEmbedder (test_model_tags covers embeddings that do say).
    encoder, clip_model = text_encoder_for(None, clip_model_of(np.ones((2, 3))))
    assert isinstance(encoder, CLIPEmbedder)
    assert encoder.get_params() == CLIPEmbedder().get_params()
    assert clip_model.label() == "ViT-B-32 laion2b_s34b_b79k"


# ------------------------------------------------------- SpLiCE reconstructions


def test_pipeline_classifies_splice_reconstructions(
    class_sentences, minilm_encoder, minilm_laion_concepts
):
    X, y, names = class_sentences
    dictionary, vocabulary = minilm_laion_concepts
    pipe = make_pipeline(
        SpLiCETransformer(
            l1=0.2, dictionary=dictionary, concept_names=vocabulary, output="reconstruction"
        ),
        ZeroShotClassifier(names, encoder=minilm_encoder),
    ).fit(X, y)
    dense = ZeroShotClassifier(names, encoder=minilm_encoder).fit(X, y).score(X, y)
    assert pipe.score(X, y) >= dense - 2 / len(y)  # ~25 concepts keep the class
    assert pipe.predict_proba(X).shape == (len(y), 6)


def test_grid_search_over_sparsity_picks_a_sparsity_that_keeps_the_class(
    class_sentences, minilm_encoder, minilm_laion_concepts
):
    X, y, names = class_sentences
    dictionary, vocabulary = minilm_laion_concepts
    pipe = make_pipeline(
        SpLiCETransformer(
            dictionary=dictionary, concept_names=vocabulary, output="reconstruction"
        ),
        ZeroShotClassifier(names, encoder=minilm_encoder),
    )
    search = GridSearchCV(
        pipe,
        {"splicetransformer__l1": [0.1, 0.3, 5.0]},
        scoring="accuracy",
        cv=StratifiedKFold(3),
    ).fit(X, y)
    scores = dict(
        zip(
            search.cv_results_["param_splicetransformer__l1"],
            search.cv_results_["mean_test_score"],
            strict=True,
        )
    )
    # l1=5 leaves no concept: every reconstruction is the mean embedding, one class for all.
    assert scores[5.0] <= 1 / 6 + 1e-9
    assert search.best_params_["splicetransformer__l1"] in (0.1, 0.3)
    assert search.best_score_ >= 0.85


def test_tiny_clip_pipeline_on_real_photos_is_deterministic(tiny_clip):
    data = pytest.importorskip("skimage.data")
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.camera()]
    clip = CLIPEmbedder(tiny_clip, pretrained=None, device="cpu")
    X = clip.transform(photos)
    words = ["cat", "person", "rocket", "coffee", "space", "cup", "fur", "sky", "camera", "man"]
    classes = {"animal": ["cat", "kitten"], "person": "person", "object": ["cup", "rocket"]}

    def fitted_pipeline():
        return make_pipeline(
            SpLiCETransformer(
                l1=0.05,
                dictionary=clip.encode_text(words),
                concept_names=words,
                output="reconstruction",
                device="cpu",
            ),
            ZeroShotClassifier(classes, encoder=clip),
        ).fit(X)

    pipe = fitted_pipeline()
    proba = pipe.predict_proba(X)
    assert proba.shape == (5, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-6)
    assert set(pipe.predict(X)) <= {"animal", "person", "object"}
    np.testing.assert_array_equal(fitted_pipeline().predict_proba(X), proba)
    # Pickled, the classifier holds the embedder's settings and numpy arrays, no weights.
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(restored.predict_proba(X), proba)
    size = len(pickle.dumps(pipe[-1]))
    assert size < pipe[-1].class_embeddings_.nbytes + 3000, size
