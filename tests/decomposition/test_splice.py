"""SpLiCETransformer: the method as DESIGN.md states it, outputs, state and bad input."""

import copy
import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn import clone, config_context
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import Lasso
from sklearn.utils._param_validation import InvalidParameterError

from skplice import SpLiCETransformer


def unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


@pytest.fixture
def concepts():
    """A dictionary with a shared offset, like CLIP text embeddings, and its names."""
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(80, 16)) + 2.0 * rng.normal(size=16)
    return raw, [f"concept{i}" for i in range(80)]


@pytest.fixture
def embeddings(concepts):
    """Image-like embeddings: sparse mixtures of concept directions, shifted by a modality
    gap so that the mean normalised embedding has a CLIP-like norm (about 0.56)."""
    rng = np.random.default_rng(1)
    raw, _ = concepts
    directions = unit(unit(raw) - unit(raw).mean(axis=0))
    W = np.zeros((60, raw.shape[0]))
    for row in W:
        row[rng.choice(raw.shape[0], 4, replace=False)] = rng.uniform(0.5, 1, 4)
    gap = unit(rng.normal(size=raw.shape[1]))
    return W @ directions + gap + 0.05 * rng.normal(size=(60, raw.shape[1]))


def make(concepts, **params):
    raw, names = concepts
    return SpLiCETransformer(dictionary=raw, concept_names=names, **params)


def test_fit_learns_the_centring_statistics_of_design_md(concepts, embeddings):
    raw, names = concepts
    splice = make(concepts).fit(embeddings)
    expected = unit(raw)
    expected = unit(expected - expected.mean(axis=0))
    np.testing.assert_allclose(splice.components_, expected, atol=1e-12)
    np.testing.assert_allclose(splice.image_mean_, unit(embeddings).mean(axis=0), atol=1e-12)
    assert splice.n_samples_seen_ == 60 and splice.n_features_in_ == 16
    assert list(splice.get_feature_names_out()) == names


def test_transform_solves_the_lasso_of_design_md(concepts, embeddings):
    l1 = 0.2
    splice = make(concepts, l1=l1, tol=1e-9).fit(embeddings)
    W = splice.transform(embeddings)
    assert sp.isspmatrix_csr(W) and W.shape == (60, 80) and (W.data > 0).all()
    Z = unit(unit(embeddings) - splice.image_mean_)
    C = splice.components_
    lasso = Lasso(alpha=l1 / (2 * 16), positive=True, fit_intercept=False, tol=1e-12)
    for w, z in zip(W.toarray(), Z, strict=True):
        oracle = lasso.fit(C.T, z).coef_
        ours = np.sum((w @ C - z) ** 2) + l1 * w.sum()
        theirs = np.sum((oracle @ C - z) ** 2) + l1 * oracle.sum()
        assert abs(ours - theirs) <= 1e-6 * theirs


def test_centring_recovers_planted_concepts_across_a_modality_gap(concepts):
    rng = np.random.default_rng(2)
    raw, _ = concepts
    planted = rng.choice(80, size=(40, 3))
    gap = 4.0 * unit(rng.normal(size=16))
    X = np.stack([unit(raw[p]).sum(axis=0) for p in planted]) + gap
    found = make(concepts, l1=0.05).fit(X).transform(X).toarray()
    top3 = np.argsort(-found, axis=1)[:, :3]
    hits = np.mean([len(set(t) & set(p)) / 3 for t, p in zip(top3, planted, strict=True)])
    uncentred = make(concepts, l1=0.05, center=False).fit(X).transform(X).toarray()
    top3_uncentred = np.argsort(-uncentred, axis=1)[:, :3]
    hits_uncentred = np.mean(
        [len(set(t) & set(p)) / 3 for t, p in zip(top3_uncentred, planted, strict=True)]
    )
    assert hits > 0.8
    assert hits > hits_uncentred


def test_float32_in_float32_out_and_dense_output(concepts, embeddings):
    splice = make(concepts).fit(embeddings)
    W32 = splice.transform(embeddings.astype(np.float32))
    assert W32.dtype == np.float32
    dense = make(concepts, sparse_output=False).fit(embeddings).transform(embeddings)
    assert isinstance(dense, np.ndarray)
    np.testing.assert_allclose(dense, splice.transform(embeddings).toarray())
    np.testing.assert_allclose(W32.toarray(), dense, atol=1e-5)


def test_results_do_not_depend_on_batch_size_or_order(concepts, embeddings):
    full = make(concepts).fit(embeddings)
    W = full.transform(embeddings).toarray()
    small = clone(full).set_params(batch_size=7).fit(embeddings)
    np.testing.assert_allclose(small.transform(embeddings).toarray(), W, atol=1e-12)
    order = np.random.default_rng(3).permutation(60)
    np.testing.assert_allclose(full.transform(embeddings[order]).toarray(), W[order], atol=1e-12)


def test_inverse_transform_and_score(concepts, embeddings):
    splice = make(concepts, l1=0.05).fit(embeddings)
    W = splice.transform(embeddings)
    recon = splice.inverse_transform(W)
    expected = unit(unit(W.toarray() @ splice.components_) + splice.image_mean_)
    np.testing.assert_allclose(recon, expected, atol=1e-12)
    np.testing.assert_allclose(splice.inverse_transform(W.toarray()), recon)
    cosine = np.sum(unit(embeddings) * recon, axis=1).mean()
    assert splice.score(embeddings) == pytest.approx(cosine)
    # Concepts add to what the mean alone reconstructs; sparser codes add less.
    mean_only = np.sum(unit(embeddings) * unit(splice.image_mean_), axis=1).mean()
    sparser = clone(splice).set_params(l1=1.0).fit(embeddings).score(embeddings)
    assert mean_only < sparser < cosine
    assert cosine > 0.95
    zero = splice.inverse_transform(sp.csr_matrix((1, 80)))
    np.testing.assert_allclose(zero[0], unit(splice.image_mean_))


def test_partial_fit_is_streaming_exact(concepts, embeddings):
    streamed = make(concepts)
    for batch in np.array_split(embeddings, [5, 23, 24]):
        streamed.partial_fit(batch)
    fitted = make(concepts).fit(embeddings)
    np.testing.assert_allclose(streamed.image_mean_, fitted.image_mean_, rtol=0, atol=1e-15)
    assert streamed.n_samples_seen_ == 60
    np.testing.assert_array_equal(streamed.components_, fitted.components_)


def test_generated_names_and_identity_dictionary(concepts, embeddings):
    raw, _ = concepts
    unnamed = SpLiCETransformer(dictionary=raw).fit(embeddings)
    assert unnamed.get_feature_names_out()[[0, 79]].tolist() == ["concept_0", "concept_79"]
    frame = pd.DataFrame(embeddings[:, :4], columns=["a", "b", "c", "d"])
    identity = SpLiCETransformer(dictionary="identity", l1=0.1).fit(frame)
    assert identity.get_feature_names_out().tolist() == ["a", "b", "c", "d"]
    Z = unit(unit(frame.to_numpy()) - identity.image_mean_)
    np.testing.assert_allclose(
        identity.transform(frame).toarray(), np.maximum(Z - 0.05, 0), atol=1e-9
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        # vocabulary once named an array dictionary's rows: such code is told the fix.
        ({"vocabulary": [f"word{i}" for i in range(80)]}, r"go in concept_names, not vocabulary"),
        ({"vocabulary": "concepts"}, r"vocabulary='concepts' has no use with an array dict"),
        ({"dictionary": None, "concept_names": ["a"]}, r"dictionary is None.*vocabulary="),
        ({"dictionary": "identity", "concept_names": ["a"]}, r"concept_names has no use"),
        ({"dictionary": "identity", "vocabulary": ["a"]}, r"vocabulary has no use"),
    ],
    ids=["old-names", "old-generated", "names-to-encode", "identity-names", "identity-vocab"],
)
def test_each_dictionary_takes_its_names_from_one_parameter(concepts, embeddings, params, message):
    raw, _ = concepts
    splice = SpLiCETransformer(dictionary=raw).set_params(**params)
    with pytest.raises(ValueError, match=message):
        splice.fit(embeddings)
    assert not hasattr(splice, "components_")
    # The default vocabulary goes with any dictionary: it is what to encode, unused here.
    named = SpLiCETransformer(dictionary=raw, vocabulary="laion", concept_names=concepts[1])
    assert list(named.fit(embeddings).get_feature_names_out()) == concepts[1]


def test_dense_output_supports_pandas_and_sparse_output_refuses_it(concepts, embeddings):
    dense = make(concepts, sparse_output=False).set_output(transform="pandas")
    frame = dense.fit_transform(embeddings)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == concepts[1]
    sparse = make(concepts).fit(embeddings)
    with pytest.raises(ValueError, match="sparse_output=False"):
        clone(sparse).set_output(transform="pandas").fit(embeddings).transform(embeddings)
    with config_context(transform_output="polars"):
        with pytest.raises(ValueError, match="polars output cannot hold"):
            sparse.transform(embeddings)


def test_convergence_warning_counts_unfinished_samples(concepts, embeddings):
    splice = make(concepts, l1=0.01, max_iter=1).fit(embeddings)
    with pytest.warns(ConvergenceWarning, match=r"\d+ of 60 samples did not reach"):
        W = splice.transform(embeddings)
    assert (W.data > 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(concepts, l1=0.01).fit(embeddings).transform(embeddings)


def test_clone_pickle_and_joblib_round_trips(concepts, embeddings, tmp_path):
    splice = make(concepts).fit(embeddings)
    W = splice.transform(embeddings).toarray()
    restored = pickle.loads(pickle.dumps(splice))
    np.testing.assert_array_equal(restored.transform(embeddings).toarray(), W)
    joblib.dump(splice, tmp_path / "splice.joblib")
    loaded = joblib.load(tmp_path / "splice.joblib")
    np.testing.assert_array_equal(loaded.transform(embeddings).toarray(), W)
    refit = clone(splice).fit(embeddings)
    np.testing.assert_array_equal(refit.transform(embeddings).toarray(), W)
    # Fitted state is numpy arrays and plain values (never torch objects or models).
    plain = (np.ndarray, int, str, type(None))
    assert all(isinstance(v, plain) for k, v in vars(splice).items() if k[-1] == "_")


def snapshot(estimator):
    return copy.deepcopy(vars(estimator))


def assert_unchanged(before, estimator):
    after = vars(estimator)
    assert before.keys() == after.keys()
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key], value)
        elif key != "dictionary":
            assert after[key] == value


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda X: np.where(np.arange(len(X))[:, None] == 3, np.nan, X), "NaN"),
        (lambda X: np.where(np.arange(len(X))[:, None] == 3, np.inf, X), "infinity"),
        (lambda X: X[:, :10], "features"),
        (lambda X: np.where(np.arange(len(X))[:, None] == 2, 0.0, X), "all-zero rows"),
    ],
    ids=["nan", "inf", "width", "zero-row"],
)
def test_bad_embeddings_raise_and_change_nothing(concepts, embeddings, corrupt, message):
    splice = make(concepts).fit(embeddings[:30])
    bad = corrupt(embeddings)
    original = bad.copy()
    before = snapshot(splice)
    for method in (splice.fit, splice.partial_fit, splice.transform, splice.score):
        with pytest.raises(ValueError, match=message):
            method(bad)
        assert_unchanged(before, splice)
    np.testing.assert_array_equal(bad, original)


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"dictionary": np.zeros((0, 16))}, ValueError, "at least one concept"),
        ({"dictionary": np.ones((3, 12))}, ValueError, "12"),
        ({"concept_names": ["a", "b", "a"] + [f"c{i}" for i in range(77)]}, ValueError, "'a'"),
        ({"concept_names": ["a", "b"]}, ValueError, "one name per concept"),
        ({"concept_names": list(range(80))}, TypeError, "strings"),
        ({"concept_names": "concepts"}, InvalidParameterError, "concept_names"),
        ({"l1": -0.1}, InvalidParameterError, "l1"),
        ({"solver": "admm"}, InvalidParameterError, "solver"),
        ({"tol": 0}, InvalidParameterError, "tol"),
        ({"device": "cuda:7"} if not __import__("torch").cuda.is_available() else {}, None, ""),
    ],
    ids=[
        "empty",
        "width",
        "duplicates",
        "name-count",
        "name-type",
        "name-string",
        "l1",
        "solver",
        "tol",
        "cuda",
    ],
)
def test_bad_configuration_raises_a_clear_error(concepts, embeddings, params, error, message):
    if not params:
        pytest.skip("CUDA is available here")
    splice = make(concepts)
    splice.set_params(**params)
    if error is None:  # errors found at transform time
        splice.fit(embeddings)
        with pytest.raises(ValueError, match="CUDA"):
            splice.transform(embeddings)
        return
    with pytest.raises(error, match=message):
        splice.fit(embeddings)
    assert not hasattr(splice, "components_")


def test_invalid_parameter_error_is_a_value_error():
    assert issubclass(InvalidParameterError, ValueError)


def test_degenerate_dictionaries_are_refused(embeddings):
    with pytest.raises(ValueError, match="all zeros"):
        SpLiCETransformer(dictionary=np.vstack([np.ones(16), np.zeros(16)])).fit(embeddings)
    with pytest.raises(ValueError, match="no direction left"):
        SpLiCETransformer(dictionary=np.ones((1, 16))).fit(embeddings)
    one = SpLiCETransformer(dictionary=np.ones((1, 16)), center=False).fit(embeddings)
    assert one.transform(embeddings).shape == (60, 1)


def test_unfitted_and_inverse_width_errors(concepts, embeddings):
    with pytest.raises(NotFittedError):
        make(concepts).transform(embeddings)
    splice = make(concepts).fit(embeddings)
    with pytest.raises(ValueError, match="80 concepts"):
        splice.inverse_transform(np.ones((2, 5)))


def test_regularization_path_matches_separate_transforms(concepts, embeddings):
    splice = make(concepts, tol=1e-9).fit(embeddings)
    values = [0.3, 0.02, 1.0, 0.1]
    path = splice.regularization_path(embeddings, values)
    for l1, W in zip(values, path, strict=True):
        alone = clone(splice).set_params(l1=l1).fit(embeddings).transform(embeddings)
        np.testing.assert_allclose(W.toarray(), alone.toarray(), atol=1e-7)
    counts = {l1: W.nnz for l1, W in zip(values, path, strict=True)}
    assert counts[0.02] > counts[0.1] > counts[0.3] > counts[1.0]
    dense = clone(splice).set_params(sparse_output=False).fit(embeddings)
    assert isinstance(dense.regularization_path(embeddings, [0.2])[0], np.ndarray)
    for bad in ([], [-0.1], [np.nan]):
        with pytest.raises(ValueError, match="l1_values"):
            splice.regularization_path(embeddings, bad)


def test_sparse_output_carries_concept_names_through_pickling(concepts, embeddings):
    splice = make(concepts).fit(embeddings)
    W = splice.transform(embeddings)
    assert list(W.concept_names) == concepts[1]
    assert list(pickle.loads(pickle.dumps(W)).concept_names) == concepts[1]
    assert all(
        list(P.concept_names) == concepts[1]
        for P in splice.regularization_path(embeddings, [0.1, 0.5])
    )


def test_reconstruction_output_replaces_embeddings(concepts, embeddings):
    weights = make(concepts).fit(embeddings)
    recon = clone(weights).set_params(output="reconstruction").fit(embeddings)
    expected = weights.inverse_transform(weights.transform(embeddings))
    np.testing.assert_allclose(recon.transform(embeddings), expected)
    frame = pd.DataFrame(embeddings, columns=[f"dim{i}" for i in range(16)])
    out = recon.set_output(transform="pandas").fit_transform(frame)
    assert list(out.columns) == list(frame.columns)
    np.testing.assert_allclose(np.linalg.norm(out.to_numpy(), axis=1), 1.0)


def test_score_samples_scores_given_weights_without_solving_again(concepts, embeddings):
    splice = make(concepts, l1=0.05).fit(embeddings)
    W = splice.transform(embeddings)
    recon = splice.inverse_transform(W)
    per_sample = np.sum(unit(embeddings) * recon, axis=1)
    np.testing.assert_allclose(splice.score_samples(embeddings), per_sample, atol=1e-12)
    solved = splice.score_samples(embeddings, centred=True)
    np.testing.assert_array_equal(
        splice.score_samples(embeddings, weights=W, centred=True), solved
    )
    for given, rtol in ((W.toarray(), 1e-14), (W.astype(np.float32), 1e-6)):
        scores = splice.score_samples(embeddings, weights=given, centred=True)
        np.testing.assert_allclose(scores, solved, rtol=rtol)
    # Other weights give other scores: the given ones are used, not recomputed.
    sparser = clone(splice).set_params(l1=1.0).fit(embeddings).transform(embeddings)
    assert np.all(splice.score_samples(embeddings, weights=sparser) <= per_sample + 1e-12)
    assert np.any(splice.score_samples(embeddings, weights=sparser) < per_sample - 1e-3)
    with pytest.raises(ValueError, match=r"weights has shape \(59, 80\).*output='weights'"):
        splice.score_samples(embeddings, weights=W[:59])
    reconstruction = clone(splice).set_params(output="reconstruction").fit(embeddings)
    with pytest.raises(ValueError, match="weights has shape"):
        splice.score_samples(embeddings, weights=reconstruction.transform(embeddings))


def test_score_is_the_same_whatever_the_output(concepts, embeddings):
    weights = make(concepts).fit(embeddings)
    reconstruction = clone(weights).set_params(output="reconstruction").fit(embeddings)
    assert reconstruction.score(embeddings) == weights.score(embeddings)
    assert 0 < weights.score(embeddings) <= 1
