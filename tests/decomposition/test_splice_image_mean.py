"""SpLiCETransformer(image_mean=...): a learned, given or published mean image embedding."""

import warnings

import numpy as np
import pytest
import torch
from sklearn import clone
from sklearn.linear_model import Lasso, LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skplice import CLIPEmbedder, SpLiCETransformer, load_image_mean
from skplice.embedding._model_tags import ClipModel, tag
from skplice.exceptions import SingleSampleMeanWarning

D = 512  # the width of the published ViT-B-32 / ViT-B-16 means


def unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def dictionary():
    rng = np.random.default_rng(0)
    return rng.normal(size=(60, D)) + 2.0 * rng.normal(size=D)


@pytest.fixture(scope="module")
def X():
    """Image-like embeddings: a shared offset (the modality gap) plus noise."""
    rng = np.random.default_rng(1)
    return unit(rng.normal(size=D)) * 3 + rng.normal(size=(40, D))


def lasso_weights(components, z, l1):
    lasso = Lasso(alpha=l1 / (2 * z.shape[0]), positive=True, fit_intercept=False, tol=1e-12)
    return lasso.fit(components.T, z).coef_


# ------------------------------------------------------------------------- a given mean


def test_a_given_mean_is_used_as_given(dictionary, X):
    mean = 0.6 * unit(np.random.default_rng(2).normal(size=D))
    given = SpLiCETransformer(dictionary=dictionary, image_mean=mean).fit(X)
    assert given.image_mean_source_ == "given" and given.n_samples_seen_ == 40
    np.testing.assert_array_equal(given.image_mean_, mean)
    assert given.image_mean_ is not mean  # a copy: the parameter is never modified
    # The same as a learned fit whose mean is replaced by it, bit for bit.
    learned = SpLiCETransformer(dictionary=dictionary).fit(X)
    assert learned.image_mean_source_ == "learned"
    learned.image_mean_ = mean
    np.testing.assert_array_equal(given.transform(X).toarray(), learned.transform(X).toarray())
    # And independent of the data it was fitted on.
    other = SpLiCETransformer(dictionary=dictionary, image_mean=mean).fit(X[:3])
    np.testing.assert_array_equal(other.transform(X).toarray(), given.transform(X).toarray())


def test_a_given_mean_accepts_lists_float32_and_tensors(dictionary, X):
    mean = 0.5 * unit(np.random.default_rng(3).normal(size=D))
    expected = SpLiCETransformer(dictionary=dictionary, image_mean=mean).fit(X).image_mean_
    for value in (mean.tolist(), mean.astype(np.float32), torch.from_numpy(mean)):
        fitted = SpLiCETransformer(dictionary=dictionary, image_mean=value).fit(X)
        assert fitted.image_mean_.dtype == np.float64
        np.testing.assert_allclose(fitted.image_mean_, expected, rtol=1e-7)


def test_partial_fit_never_changes_a_fixed_mean(dictionary, X):
    mean = 0.5 * unit(np.random.default_rng(4).normal(size=D))
    splice = SpLiCETransformer(dictionary=dictionary, image_mean=mean)
    for batch in np.array_split(X, 4):
        splice.partial_fit(batch)
        np.testing.assert_array_equal(splice.image_mean_, mean)
    assert splice.n_samples_seen_ == 40
    # A learned mean, for contrast, follows the batches.
    learned = SpLiCETransformer(dictionary=dictionary)
    for batch in np.array_split(X, 4):
        learned.partial_fit(batch)
    np.testing.assert_allclose(learned.image_mean_, unit(X).mean(axis=0), atol=1e-14)


def test_clone_and_grid_search_keep_a_fixed_mean(dictionary, X):
    mean = 0.5 * unit(np.random.default_rng(5).normal(size=D))
    splice = SpLiCETransformer(dictionary=dictionary, image_mean=mean)
    np.testing.assert_array_equal(clone(splice).get_params()["image_mean"], mean)
    y = np.arange(len(X)) % 2
    search = GridSearchCV(
        make_pipeline(splice, LogisticRegression()),
        {"splicetransformer__l1": [0.1, 0.3]},
        cv=2,
    ).fit(X, y)
    fitted = search.best_estimator_[0]
    assert fitted.image_mean_source_ == "given"
    np.testing.assert_array_equal(fitted.image_mean_, mean)


@pytest.mark.parametrize(
    ("image_mean", "error", "message"),
    [
        (np.zeros(D - 1), ValueError, f"X has {D} features but image_mean has {D - 1}"),
        (np.zeros((1, D)), ValueError, r"1-D array of shape \(n_features,\); got shape \(1, "),
        (np.full(D, np.nan), ValueError, "NaN"),
        ("pubished", InvalidParameterError, "'image_mean' parameter"),
    ],
)
def test_bad_means_are_refused_and_leave_no_trace(dictionary, X, image_mean, error, message):
    splice = SpLiCETransformer(dictionary=dictionary, image_mean=image_mean)
    with pytest.raises(error, match=message):
        splice.fit(X)
    assert not hasattr(splice, "components_")


# ----------------------------------------------------------------- one sample, learned


def test_fitting_one_sample_with_a_learned_mean_warns(dictionary, X):
    splice = SpLiCETransformer(dictionary=dictionary)
    with pytest.warns(SingleSampleMeanWarning, match="image_mean='published'"):
        W = splice.fit_transform(X[:1])
    assert W.nnz == 0  # centred to nothing, as the warning says
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these warns
        SpLiCETransformer(dictionary=dictionary, image_mean=unit(X).mean(axis=0)).fit(X[:1])
        SpLiCETransformer(dictionary=dictionary, center=False).fit(X[:1])
        SpLiCETransformer(dictionary=dictionary).fit(X[:2])


# -------------------------------------------------------------------- published means


def test_published_mean_with_the_default_encoder_explains_one_embedding(means_home, dictionary, X):
    x = X[:1]
    published = SpLiCETransformer(dictionary=dictionary, image_mean="published").fit(x)
    # The default encoder is CLIPEmbedder(): ViT-B-32 with the LAION-2B weights.
    mean = load_image_mean("ViT-B-32", "laion2b_s34b_b79k")
    assert published.image_mean_source_ == "published"
    assert published.clip_model_ == "ViT-B-32 laion2b_s34b_b79k"
    np.testing.assert_array_equal(published.image_mean_, mean)
    W = published.transform(x)
    given = SpLiCETransformer(dictionary=dictionary, image_mean=mean).fit(x)
    np.testing.assert_array_equal(W.toarray(), given.transform(x).toarray())  # bit for bit
    # The paper's formula: the mean as published, not normalised again.
    z = unit(unit(x[0]) - mean)
    expected = lasso_weights(published.components_, z, published.l1)
    assert W.nnz > 0
    np.testing.assert_allclose(W.toarray()[0], expected, atol=2e-6)


def test_published_mean_of_the_encoder_or_of_the_embeddings(means_home, dictionary, X):
    vit_b16 = load_image_mean("ViT-B-16", "openai")
    by_encoder = SpLiCETransformer(
        dictionary=dictionary, encoder=CLIPEmbedder("ViT-B-16", "openai"), image_mean="published"
    ).fit(X)
    np.testing.assert_array_equal(by_encoder.image_mean_, vit_b16)
    assert by_encoder.clip_model_ == "ViT-B-16 openai"
    tagged = tag(X.astype(np.float32), ClipModel("ViT-B-16", "openai", "fp32"))
    by_embeddings = SpLiCETransformer(dictionary=dictionary, image_mean="published").fit(tagged)
    np.testing.assert_array_equal(by_embeddings.image_mean_, vit_b16)
    # A transformer bound to ViT-B-16 refuses embeddings of another model.
    other = tag(X.astype(np.float32), ClipModel("ViT-B-32", "openai", "fp32"))
    with pytest.raises(ValueError, match=r"X was embedded by ViT-B-32 openai but .* ViT-B-16"):
        by_embeddings.transform(other)


def test_published_mean_is_refused_where_there_is_none(means_home, dictionary, X, tiny_clip):
    random_weights = CLIPEmbedder(tiny_clip, pretrained=None, device="cpu")
    splice = SpLiCETransformer(
        dictionary=dictionary, encoder=random_weights, image_mean="published"
    )
    with pytest.raises(ValueError, match=r"no mean image embedding for .*random weights") as info:
        splice.fit(X)
    assert "ViT-B-32 laion2b_s34b_b79k" in str(info.value)  # names those that have one

    class Letters:  # not a CLIP model: there is no model to take the mean of
        def encode_text(self, texts):
            return np.array([[t.count(c) for c in "aeiou"] for t in texts], float)

    splice = SpLiCETransformer(dictionary=dictionary, encoder=Letters(), image_mean="published")
    with pytest.raises(ValueError, match=r"needs a CLIP model.*load_image_mean"):
        splice.fit(X)


def test_published_mean_of_the_wrong_width(means_home, X):
    splice = SpLiCETransformer(dictionary="identity", image_mean="published")
    with pytest.raises(ValueError, match="X has 8 features but the published mean of ViT-B-32"):
        splice.fit(X[:, :8])
