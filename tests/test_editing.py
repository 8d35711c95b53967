"""ConceptEditor and edit_embeddings: edits by name, name resolution, formats, pipelines."""

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skplice import CLIPEmbedder, ConceptEditor, SpLiCETransformer, edit_embeddings

NAMES = ["glasses", "sunglasses", "goggles", "beach", "dog", "cat"]


def unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


@pytest.fixture
def weights():
    rng = np.random.default_rng(0)
    W = rng.uniform(0.1, 1, size=(20, len(NAMES)))
    W[rng.uniform(size=W.shape) < 0.4] = 0
    return W


def named_csr(W, names=NAMES):
    matrix = sp.csr_matrix(W)
    matrix.concept_names = np.asarray(names, dtype=object)
    return matrix


# ------------------------------------------------------------------------ the edits


def test_scale_multiplies_exactly_and_leaves_other_columns_untouched(weights):
    editor = ConceptEditor(scale={"beach": 2.5, "dog": 0.5}, concepts=NAMES)
    edited = editor.fit_transform(weights)
    expected = weights.copy()
    expected[:, 3] *= 2.5
    expected[:, 4] *= 0.5
    np.testing.assert_array_equal(edited, expected)
    np.testing.assert_array_equal(editor.multipliers_, [1, 1, 1, 2.5, 0.5, 1])


def test_remove_zeroes_and_keep_zeroes_the_rest(weights):
    removed = ConceptEditor(remove=["glasses", "cat"], concepts=NAMES).fit_transform(weights)
    assert not removed[:, [0, 5]].any()
    np.testing.assert_array_equal(removed[:, 1:5], weights[:, 1:5])
    kept = ConceptEditor(keep=["beach", "dog"], concepts=NAMES).fit_transform(weights)
    np.testing.assert_array_equal(kept[:, 3:5], weights[:, 3:5])
    assert not kept[:, [0, 1, 2, 5]].any()


def test_a_single_name_needs_no_list(weights):
    one = ConceptEditor(remove="cat", concepts=NAMES).fit(weights).multipliers_
    np.testing.assert_array_equal(
        one, ConceptEditor(remove=["cat"], concepts=NAMES).fit(weights).multipliers_
    )


def test_groups_expand_in_remove_scale_and_keep(weights):
    groups = {"eyewear": ["glasses", "sunglasses", "goggles"], "pets": ["dog", "cat"]}
    multipliers = {
        "remove": ConceptEditor(remove=["eyewear"], groups=groups, concepts=NAMES),
        "scale": ConceptEditor(scale={"pets": 3.0}, groups=groups, concepts=NAMES),
        "keep": ConceptEditor(keep=["pets", "beach"], groups=groups, concepts=NAMES),
    }
    expected = {
        "remove": [0, 0, 0, 1, 1, 1],
        "scale": [1, 1, 1, 1, 3, 3],
        "keep": [0, 0, 0, 1, 1, 1],
    }
    for edit, editor in multipliers.items():
        np.testing.assert_array_equal(editor.fit(weights).multipliers_, expected[edit])


def test_edits_apply_keep_then_scale_then_remove(weights):
    groups = {"pets": ["dog", "cat"]}
    editor = ConceptEditor(
        keep=["pets", "beach"],
        scale={"dog": 2.0, "glasses": 5.0},
        remove=["cat"],
        groups=groups,
        concepts=NAMES,
    )
    # glasses is not kept, so scaling it leaves it at zero; cat is kept but removed.
    np.testing.assert_array_equal(editor.fit(weights).multipliers_, [0, 0, 0, 1, 2, 0])


def test_a_group_may_share_its_name_with_a_member(weights):
    editor = ConceptEditor(remove=["dog"], groups={"dog": ["dog", "cat"]}, concepts=NAMES)
    np.testing.assert_array_equal(editor.fit(weights).multipliers_, [1, 1, 1, 1, 0, 0])


def test_no_edits_is_the_identity_and_needs_no_names(weights):
    editor = ConceptEditor().fit(weights)
    np.testing.assert_array_equal(editor.transform(weights), weights)
    assert editor.concept_names_ is None
    assert list(editor.get_feature_names_out()) == [f"x{i}" for i in range(6)]


# ------------------------------------------------------------------ name resolution


def test_names_from_dataframe_columns(weights):
    frame = pd.DataFrame(weights, columns=NAMES, index=[f"img{i}" for i in range(20)])
    editor = ConceptEditor(remove=["dog"]).set_output(transform="pandas")
    edited = editor.fit_transform(frame)
    assert isinstance(edited, pd.DataFrame)
    assert list(edited.columns) == NAMES and list(edited.index) == list(frame.index)
    assert not edited["dog"].any()
    np.testing.assert_array_equal(edited.drop(columns="dog"), frame.drop(columns="dog"))


def test_names_from_the_sparse_concept_names_attribute(weights):
    W = named_csr(weights)
    editor = ConceptEditor(remove=["beach"]).fit(W)
    assert list(editor.concept_names_) == NAMES
    assert list(editor.get_feature_names_out()) == NAMES


def test_names_from_the_concepts_parameter(weights):
    editor = ConceptEditor(remove=["beach"], concepts=NAMES).fit(weights)
    assert list(editor.get_feature_names_out()) == NAMES


def test_splice_output_carries_names_into_the_editor():
    rng = np.random.default_rng(0)
    splice = SpLiCETransformer(l1=0.05, dictionary=rng.normal(size=(6, 8)), concept_names=NAMES)
    X = rng.normal(size=(10, 8))
    W = splice.fit_transform(X)
    edited = ConceptEditor(remove=["beach"]).fit_transform(W)
    assert W[:, 3].nnz > 0 and edited[:, 3].nnz == 0
    assert list(edited.concept_names) == NAMES


def test_agreeing_sources_are_accepted_and_disagreeing_ones_refused(weights):
    ConceptEditor(remove=["dog"], concepts=NAMES).fit(named_csr(weights))
    shuffled = NAMES[::-1]
    with pytest.raises(ValueError, match="between concepts and the names X carries"):
        ConceptEditor(remove=["dog"], concepts=shuffled).fit(named_csr(weights))
    frame = pd.DataFrame(weights, columns=NAMES)
    with pytest.raises(
        ValueError, match="column 0 is 'cat' in concepts but 'glasses' in the names X"
    ):
        ConceptEditor(remove=["dog"], concepts=shuffled).fit(frame)


def test_no_names_explains_the_three_ways(weights):
    with pytest.raises(ValueError) as error:
        ConceptEditor(remove=["glasses"]).fit(weights)
    message = str(error.value)
    assert "DataFrame" in message and "concept_names attribute" in message
    assert "concepts=splice.get_feature_names_out()" in message
    # A sparse matrix rebuilt by scipy has lost its names, and the message says so.
    assert "scipy operations that build a new matrix drop it" in message
    assert "cross-validation" in message and "same Pipeline" in message


def test_unknown_names_list_close_matches(weights):
    with pytest.raises(ValueError) as error:
        ConceptEditor(remove=["glases"], scale={"Beach": 2.0}, keep=["zebra"], concepts=NAMES).fit(
            weights
        )
    message = str(error.value)
    assert "'glases' in remove (did you mean 'glasses'" in message
    assert "'Beach' in scale (did you mean 'beach'?)" in message
    assert "'zebra' in keep (no close match)" in message


def test_unknown_group_members_are_refused(weights):
    with pytest.raises(ValueError, match=r"'sunglases' in groups\['eyewear'\]"):
        ConceptEditor(remove=["eyewear"], groups={"eyewear": ["sunglases"]}, concepts=NAMES).fit(
            weights
        )


def test_transform_refuses_columns_that_moved(weights):
    editor = ConceptEditor(remove=["dog"]).fit(named_csr(weights))
    moved = named_csr(weights, NAMES[1:] + NAMES[:1])
    with pytest.raises(ValueError, match="column 0 is 'glasses' in fit but 'sunglasses' in X"):
        editor.transform(moved)
    # A sparse matrix without names is taken on trust (scipy operations drop them).
    editor.transform(sp.csr_matrix(weights))


def test_get_feature_names_out_checks_input_features(weights):
    editor = ConceptEditor(remove=["dog"], concepts=NAMES).fit(weights)
    assert list(editor.get_feature_names_out(NAMES)) == NAMES
    with pytest.raises(ValueError, match="between fit and input_features"):
        editor.get_feature_names_out(NAMES[::-1])


# ----------------------------------------------------------------- formats and data


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csr_array])
def test_sparse_input_keeps_its_format_and_drops_zeroed_entries(weights, fmt, container):
    W = container(weights).asformat(fmt)
    W.data = W.data.astype(np.float32)
    edited = ConceptEditor(remove=["dog"], scale={"cat": 2}, concepts=NAMES).fit_transform(W)
    assert edited.format == fmt and type(edited) is type(W)
    assert edited.dtype == np.float32
    assert edited.nnz == W.nnz - W[:, [4]].nnz and (edited.data != 0).all()
    expected = weights.astype(np.float32) * np.float32([1, 1, 1, 1, 0, 2])
    np.testing.assert_array_equal(edited.toarray(), expected)
    assert list(edited.concept_names) == NAMES


@pytest.mark.parametrize("fmt", ["coo", "lil", "dok", "bsr", "dia"])
@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csr_array])
def test_every_sparse_format_is_kept(weights, fmt, container):
    W = container(weights).asformat(fmt)
    edited = ConceptEditor(remove=["dog"], scale={"cat": 2}, concepts=NAMES).fit_transform(W)
    assert edited.format == fmt and type(edited) is type(W)
    expected = weights * [1, 1, 1, 1, 0, 2]
    np.testing.assert_array_equal(edited.toarray(), expected)
    assert list(edited.concept_names) == NAMES


def test_dense_float32_stays_float32(weights):
    edited = ConceptEditor(scale={"dog": 3}, concepts=NAMES).fit_transform(
        weights.astype(np.float32)
    )
    assert edited.dtype == np.float32


@pytest.mark.parametrize("kind", ["dense", "sparse", "frame"])
def test_inputs_are_never_modified(weights, kind):
    X = {
        "dense": weights.copy(),
        "sparse": named_csr(weights),
        "frame": pd.DataFrame(weights, columns=NAMES),
    }[kind]
    before = X.copy()
    ConceptEditor(remove=["dog"], scale={"cat": 2}, concepts=NAMES).fit(X).transform(X)
    if kind == "sparse":
        np.testing.assert_array_equal(X.toarray(), before.toarray())
    else:
        np.testing.assert_array_equal(np.asarray(X), np.asarray(before))


def test_a_failed_fit_leaves_the_editor_as_it_was(weights):
    editor = ConceptEditor(remove=["dog"], concepts=NAMES)
    with pytest.raises(ValueError):
        editor.fit(weights[:, :5])  # five columns, six names
    assert not hasattr(editor, "n_features_in_")
    editor.fit(weights)
    state = {key: value for key, value in vars(editor).items() if key.endswith("_")}
    with pytest.raises(ValueError):
        editor.set_params(remove=["dgo"]).fit(weights)
    assert vars(editor).keys() >= state.keys()
    np.testing.assert_array_equal(editor.multipliers_, state["multipliers_"])


def test_clone_and_pickle(weights):
    editor = ConceptEditor(remove=["dog"], groups={"pets": ["cat"]}, concepts=NAMES)
    assert clone(editor).get_params() == editor.get_params()
    fitted = pickle.loads(pickle.dumps(editor.fit(weights)))
    np.testing.assert_array_equal(fitted.transform(weights), editor.transform(weights))


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"scale": {"dog": -1.0}}, ValueError, "finite and >= 0"),
        ({"scale": {"dog": float("nan")}}, ValueError, "finite and >= 0"),
        ({"scale": {"dog": float("inf")}}, ValueError, "finite and >= 0"),
        ({"scale": {"dog": True}}, TypeError, "must be a number"),
        ({"scale": {"dog": "2"}}, TypeError, "must be a number"),
        ({"scale": {3: 2.0}}, TypeError, "scale keys must be concept names"),
        ({"remove": [3]}, TypeError, "remove must hold concept names"),
        ({"keep": []}, ValueError, "keep=None to keep them all"),
        ({"groups": {"pets": []}}, ValueError, "is empty"),
        ({"groups": {"dog": ["cat"]}, "remove": ["dog"]}, ValueError, "ambiguous"),
        (
            {"groups": {"pets": ["dog", "cat"]}, "scale": {"pets": 2, "dog": 3}},
            ValueError,
            "scaled by both 'pets' and 'dog'",
        ),
        ({"concepts": NAMES[:5], "remove": ["dog"]}, ValueError, "5 concept names but X has 6"),
        ({"concepts": [*NAMES[:5], "dog"]}, ValueError, "must be unique"),
        ({"concepts": "dog", "remove": ["dog"]}, InvalidParameterError, "concepts"),
        ({"remove": 3}, InvalidParameterError, "remove"),
        ({"scale": ["dog"]}, InvalidParameterError, "scale"),
    ],
)
def test_bad_parameters_raise_clear_errors(weights, params, error, message):
    with pytest.raises(error, match=message):
        ConceptEditor(**{"concepts": NAMES, **params}).fit(weights)


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.zeros((0, 6)), "0 sample"),
        (np.full((2, 6), np.nan), "NaN"),
        (np.ones(6), "Expected 2D array"),
    ],
)
def test_bad_inputs_raise(X, message):
    with pytest.raises(ValueError, match=message):
        ConceptEditor().fit(X)


def test_transform_checks_width_and_fitting(weights):
    editor = ConceptEditor(remove=["dog"], concepts=NAMES)
    with pytest.raises(NotFittedError):
        editor.transform(weights)
    editor.fit(weights)
    with pytest.raises(ValueError, match="X has 5 features"):
        editor.transform(weights[:, :5])


# ----------------------------------------------------------------------- pipelines


@pytest.fixture(scope="module")
def planted():
    """Embeddings whose label is whether the concept "stripes" is present.

    Every other concept is drawn independently of the label, and the concept directions
    are nearly orthogonal (128 dimensions, 60 concepts), so no other concept can stand
    in for "stripes": with a coherent dictionary, correlated concepts would carry part
    of the label after "stripes" is removed.
    """
    rng = np.random.default_rng(0)
    n_concepts, d, n = 60, 128, 600
    names = [f"word{i}" for i in range(n_concepts)]
    names[7] = "stripes"
    raw = rng.normal(size=(n_concepts, d)) + 1.5 * rng.normal(size=d)
    directions = unit(unit(raw) - unit(raw).mean(axis=0))
    y = rng.integers(0, 2, size=n)
    W = np.zeros((n, n_concepts))
    for row, label in zip(W, y, strict=True):
        others = rng.choice(np.delete(np.arange(n_concepts), 7), 4, replace=False)
        row[others] = rng.uniform(0.4, 1, 4)
        if label:
            row[7] = rng.uniform(0.6, 1)
    X = W @ directions + unit(rng.normal(size=d)) + 0.02 * rng.normal(size=(n, d))
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    splice = SpLiCETransformer(dictionary=raw, concept_names=names, l1=0.1).fit(X_train)
    # Decomposed once: the edits below are searched over on fixed concept weights.
    return {
        "X": (X_train, X_test),
        "W": (splice.transform(X_train), splice.transform(X_test)),
        "y": (y_train, y_test),
        "splice": splice,
    }


def test_removing_a_concept_removes_a_probes_reliance_on_it(planted):
    (X_train, X_test), (W_train, W_test), (y_train, y_test) = (
        planted["X"],
        planted["W"],
        planted["y"],
    )
    full = make_pipeline(
        clone(planted["splice"]), ConceptEditor(remove=["stripes"]), LogisticRegression()
    ).fit(X_train, y_train)
    assert abs(full.score(X_test, y_test) - 0.5) < 0.1  # chance: the label is stripes
    assert full[-1].coef_[0, 7] == 0  # a column that is always zero gets no weight
    assert list(full[:-1].get_feature_names_out()) == list(planted["splice"].concept_names_)

    def probe_score(editor):
        probe = make_pipeline(editor, LogisticRegression()).fit(W_train, y_train)
        return probe.score(W_test, y_test)

    assert probe_score(ConceptEditor()) > 0.95
    assert probe_score(ConceptEditor(keep=["stripes"])) > 0.95


def test_grid_search_over_edits(planted):
    (W_train, _), (y_train, _) = planted["W"], planted["y"]
    # Cross-validation splits W with scipy indexing, which drops the concept_names
    # attribute: the names are given explicitly.
    names = planted["splice"].get_feature_names_out()
    search = GridSearchCV(
        make_pipeline(ConceptEditor(concepts=names), LogisticRegression()),
        {"concepteditor__remove": [None, ["stripes"]]},
        cv=3,
    ).fit(W_train, y_train)
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] > 0.95 and scores[1] < 0.65
    assert search.best_params_ == {"concepteditor__remove": None}


@pytest.mark.parametrize("cached", [False, True], ids=["plain", "memory"])
def test_names_reach_the_editor_in_every_fold_of_a_grid_search(planted, cached, tmp_path):
    # Cross-validation slices the dense embeddings; each fold's SpLiCETransformer output
    # carries the concept names to the editor, so no concepts= is needed.
    (X_train, _), (y_train, _) = planted["X"], planted["y"]
    pipe = make_pipeline(
        clone(planted["splice"]),
        ConceptEditor(),
        LogisticRegression(),
        memory=str(tmp_path) if cached else None,
    )
    search = GridSearchCV(
        pipe, {"concepteditor__remove": [None, ["stripes"]]}, cv=3, error_score="raise"
    ).fit(X_train, y_train)
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] > 0.95 and scores[1] < 0.65
    assert search.best_estimator_[1].concept_names_[7] == "stripes"


def test_clip_pipeline_on_real_photos(tiny_clip):
    data = pytest.importorskip("skimage.data")
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.cat()]
    photos += [np.fliplr(photo) for photo in photos]
    labels = [0, 1, 0, 1, 1] * 2
    embedder = CLIPEmbedder(tiny_clip, pretrained=None, device="cpu")
    words = ["glasses", "cat", "coffee", "rocket", "person", "sky", "cup", "fur", "space", "face"]
    splice = SpLiCETransformer(
        l1=0.01, dictionary=embedder.encode_text(words), concept_names=words
    )
    pipe = make_pipeline(
        embedder, splice, ConceptEditor(remove=["glasses"]), LogisticRegression()
    ).fit(photos, labels)
    unedited = pipe[:2].transform(photos)
    assert unedited[:, [0]].nnz > 0, "the test needs 'glasses' in some decomposition"
    edited = pipe[:3].transform(photos)
    assert edited[:, [0]].nnz == 0
    np.testing.assert_array_equal(edited[:, 1:].toarray(), unedited[:, 1:].toarray())
    assert pipe[-1].coef_[0, 0] == 0
    assert pipe.predict(photos).shape == (10,)
    assert list(pipe[:-1].get_feature_names_out()) == words


# ---------------------------------------------------------------- edit_embeddings


@pytest.fixture
def fitted_splice():
    rng = np.random.default_rng(3)
    names = [*NAMES, *(f"w{i}" for i in range(34))]
    raw = rng.normal(size=(40, 16)) + 1.5 * rng.normal(size=16)
    X = rng.normal(size=(12, 16)) + 2 * rng.normal(size=16)
    return SpLiCETransformer(l1=0.05, dictionary=raw, concept_names=names).fit(X), X


def test_edit_embeddings_is_decompose_edit_reconstruct(fitted_splice):
    splice, X = fitted_splice
    edited = edit_embeddings(X, splice, remove=["beach"], scale={"dog": 2.0})
    W = splice.transform(X).toarray()
    W[:, 3] = 0
    W[:, 4] *= 2
    np.testing.assert_allclose(edited, splice.inverse_transform(W), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(edited, axis=1), 1)


def test_edit_embeddings_removes_the_concept_from_the_embedding(fitted_splice):
    splice, X = fitted_splice
    W = splice.transform(X)
    assert W[:, [3]].nnz >= 3
    again = splice.transform(edit_embeddings(X, splice, remove=["beach"]))
    assert again[:, [3]].sum() < 0.2 * W[:, [3]].sum()


def test_edit_embeddings_ignores_the_output_setting_and_changes_nothing(fitted_splice):
    splice, X = fitted_splice
    expected = edit_embeddings(X, splice, keep=["beach", "dog"])
    params = splice.set_params(output="reconstruction").get_params()
    X_before = X.copy()
    np.testing.assert_array_equal(edit_embeddings(X, splice, keep=["beach", "dog"]), expected)
    assert splice.get_params() == params
    np.testing.assert_array_equal(X, X_before)


def test_edit_embeddings_errors(fitted_splice):
    splice, X = fitted_splice
    with pytest.raises(NotFittedError):
        edit_embeddings(X, clone(splice), remove=["beach"])
    with pytest.raises(ValueError, match="did you mean 'beach'"):
        edit_embeddings(X, splice, remove=["beech"])
