"""SpLiCETransformer inside scikit-learn pipelines, probes and grid searches."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline

from skplice import SpLiCETransformer


def unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def planted():
    """Embeddings whose label is whether the concept "stripes" is present."""
    rng = np.random.default_rng(0)
    n_concepts, d = 120, 32
    names = [f"word{i}" for i in range(n_concepts)]
    names[7] = "stripes"
    raw = rng.normal(size=(n_concepts, d)) + 1.5 * rng.normal(size=d)
    directions = unit(unit(raw) - unit(raw).mean(axis=0))
    y = rng.integers(0, 2, size=300)
    W = np.zeros((300, n_concepts))
    for row, label in zip(W, y, strict=True):
        others = rng.choice(np.delete(np.arange(n_concepts), 7), 4, replace=False)
        row[others] = rng.uniform(0.4, 1, 4)
        if label:
            row[7] = rng.uniform(0.6, 1)
    X = W @ directions + unit(rng.normal(size=d)) + 0.05 * rng.normal(size=(300, d))
    return X, y, raw, names


def test_probe_on_concepts_finds_the_planted_concept(planted):
    X, y, raw, names = planted
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    pipe = make_pipeline(
        SpLiCETransformer(dictionary=raw, concept_names=names, l1=0.05),
        LogisticRegression(max_iter=1000),
    )
    pipe.fit(X_train, y_train)
    W = pipe[0].transform(X).toarray()
    assert (W[y == 1, 7] > 0).mean() > 0.95  # the planted concept is found...
    assert not (W[y == 0, 7] > 0).any()  # ...and never hallucinated
    concepts = pipe[:-1].get_feature_names_out()
    assert concepts[np.argmax(pipe[-1].coef_[0])] == "stripes"
    raw_probe = LogisticRegression(max_iter=1000).fit(X_train, y_train).score(X_test, y_test)
    assert pipe.score(X_test, y_test) >= raw_probe - 0.02


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_over_sparsity(planted, n_jobs):
    X, y, raw, names = planted
    pipe = make_pipeline(
        SpLiCETransformer(dictionary=raw, concept_names=names), LogisticRegression(max_iter=1000)
    )
    search = GridSearchCV(
        pipe, {"splicetransformer__l1": [0.05, 0.2, 3.0]}, cv=3, n_jobs=n_jobs
    ).fit(X, y)
    scores = dict(
        zip(
            search.cv_results_["param_splicetransformer__l1"],
            search.cv_results_["mean_test_score"],
            strict=True,
        )
    )
    # l1=3 zeroes nearly every concept, so the probe loses the signal.
    assert search.best_params_["splicetransformer__l1"] in (0.05, 0.2)
    assert scores[3.0] < scores[0.2] - 0.2
    assert search.best_estimator_.score(X, y) > 0.9


def test_grid_search_results_do_not_depend_on_n_jobs(planted):
    X, y, raw, names = planted
    pipe = make_pipeline(
        SpLiCETransformer(dictionary=raw, concept_names=names), LogisticRegression(max_iter=1000)
    )
    grid = {"splicetransformer__l1": [0.1, 0.3]}
    serial = GridSearchCV(pipe, grid, cv=3, n_jobs=1).fit(X, y).cv_results_
    parallel = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X, y).cv_results_
    np.testing.assert_array_equal(serial["mean_test_score"], parallel["mean_test_score"])
