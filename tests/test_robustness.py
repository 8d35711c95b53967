"""Robustness under random and hostile input (hypothesis).

Every input is either handled correctly or refused with a ValueError or TypeError that
names the problem, never with an error from deep inside numpy or torch; inputs are never
modified; and the memory layout of an input never changes a result.
"""

import copy
import os
import pickle
import re
import warnings
from functools import partial

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from skplice import (
    CLIPEmbedder,
    ConceptEditor,
    SpLiCETransformer,
    ZeroShotClassifier,
    encode_concepts,
    load_vocabulary,
    sparsity_sweep,
    transform_batches,
)
from skplice.exceptions import ImageLoadError, SingleSampleMeanWarning, SkippedImagesWarning

# Drawn inputs may hold a single row, which fit warns about (tested in test_one_sample).
pytestmark = pytest.mark.filterwarnings("ignore::skplice.exceptions.SingleSampleMeanWarning")

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

REAL_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8, np.bool_]


def finite_arrays(dtype, shape):
    """Arrays of ``dtype``: any finite value, including the largest and the subnormal."""
    if np.issubdtype(dtype, np.floating):
        elements = st.floats(allow_nan=False, allow_infinity=False, width=np.finfo(dtype).bits)
        return hnp.arrays(dtype, shape, elements=elements)
    return hnp.arrays(dtype, shape)


@st.composite
def embeddings(draw, min_rows=1, max_rows=12, n_features=None):
    """(X, n_features): a 2-D real array of any dtype whose rows are not all zero."""
    n_features = n_features or draw(st.integers(1, 8))
    n_rows = draw(st.integers(min_rows, max_rows))
    dtype = draw(st.sampled_from(REAL_DTYPES))
    X = draw(finite_arrays(dtype, (n_rows, n_features)))
    assume(np.any(X != 0, axis=1).all())
    return X


@st.composite
def dictionaries(draw, n_features):
    n_concepts = draw(st.integers(2, 12))
    raw = draw(
        hnp.arrays(
            np.float64,
            (n_concepts, n_features),
            elements=st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
        )
    )
    norms = np.linalg.norm(raw, axis=1)
    assume((norms > 1e-3).all())
    unit = raw / norms[:, None]
    centred = unit - unit.mean(axis=0)
    assume((np.linalg.norm(centred, axis=1) > 1e-3).all())  # else refused (tested apart)
    return raw


def expected_dtype(X):
    return np.float32 if np.asarray(X).dtype == np.float32 else np.float64


def assert_valid_weights(W, n_samples, n_concepts, dtype):
    assert sp.issparse(W) and W.shape == (n_samples, n_concepts)
    assert W.dtype == dtype
    assert np.isfinite(W.data).all() and (W.data > 0).all()


def kkt_violation(splice, X, W):
    """Largest violation of the non-negative lasso's optimality conditions, per DESIGN.md."""
    Z = np.asarray(X, dtype=np.float64)
    Z = Z / np.max(np.abs(Z), axis=1, keepdims=True)
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    keep = np.ones(len(Z), dtype=bool)
    if splice.center:
        Z = Z - splice.image_mean_
        norms = np.linalg.norm(Z, axis=1, keepdims=True)
        # A sample at the mean (up to rounding) has no direction left: nothing to check.
        keep = norms[:, 0] > 1e-9
        Z = np.divide(Z, norms, out=np.zeros_like(Z), where=norms > 1e-9)
    C = splice.components_
    w = W.toarray().astype(np.float64)
    g = splice.l1 - 2 * (Z - w @ C) @ C.T
    violation = np.where(w > 0, np.abs(g), np.maximum(0.0, -g))[keep]
    return violation.max(initial=0.0)


# -- any finite input ------------------------------------------------------------------------


@SETTINGS
@given(data=st.data())
def test_any_finite_input_gives_valid_weights_and_is_left_unchanged(data):
    X = data.draw(embeddings())
    d = X.shape[1]
    dictionary = data.draw(dictionaries(d))
    l1 = data.draw(st.sampled_from([0.0, 1e-3, 0.2, 1.0, 1e6, 1e300]))
    original, dictionary_copy = X.copy(), dictionary.copy()

    splice = SpLiCETransformer(dictionary=dictionary, l1=l1, tol=1e-8).fit(X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        W = splice.transform(X)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert_valid_weights(W, X.shape[0], dictionary.shape[0], expected_dtype(X))
    assert np.isfinite(splice.image_mean_).all()
    if l1 >= 1e6:
        assert W.nnz == 0  # ||2 C z|| <= 2 * sqrt(n_concepts) < l1
    if X.dtype != np.float32 and converged:  # ill-conditioned tiny problems may not
        assert kkt_violation(splice, X, W) < 1e-6
    recon = splice.inverse_transform(W)
    np.testing.assert_allclose(np.linalg.norm(recon, axis=1), 1.0, rtol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported above if relevant
        assert -1 - 1e-6 <= splice.score(X) <= 1 + 1e-6

    np.testing.assert_array_equal(X, original)
    np.testing.assert_array_equal(dictionary, dictionary_copy)
    assert X.dtype == original.dtype


@SETTINGS
@given(X=embeddings(), k=st.integers(-400, 400))
def test_results_depend_on_direction_only(X, k):
    """Scaling rows by a power of two is exact, so weights must not change by one bit,
    including scales where squaring the entries overflows or underflows."""
    X = X.astype(np.float64)
    rng = np.random.default_rng(0)
    splice = SpLiCETransformer(dictionary=rng.normal(size=(10, X.shape[1])), l1=0.1)
    splice.fit(X)
    with np.errstate(over="ignore", under="ignore"):
        scaled = np.ldexp(X, k)
        # Scaling is exact unless an entry lands among the subnormals, which keep fewer
        # significant bits: then the input itself changed, not only its scale.
        exact = np.array_equal(np.ldexp(scaled, -k), X)
    assume(exact and np.isfinite(scaled).all() and np.any(scaled != 0, axis=1).all())
    np.testing.assert_array_equal(
        splice.transform(scaled).toarray(), splice.transform(X).toarray()
    )
    np.testing.assert_array_equal(clone_fit(splice, scaled).image_mean_, splice.image_mean_)


class HashedPrompts:
    """A toy text encoder: a fixed random vector per text, times ``scale``."""

    def __init__(self, n_features, scale=1.0):
        self.n_features, self.scale = n_features, scale

    def encode_text(self, texts):
        seeds = [int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "little") for text in texts]
        rows = [np.random.default_rng(seed).normal(size=self.n_features) for seed in seeds]
        return np.array(rows) * self.scale


@pytest.mark.parametrize(
    ("dtype", "scale"),
    [(np.float32, 1e20), (np.float32, 1e-30), (np.float64, 1e160), (np.float64, 1e-200)],
)
def test_zero_shot_and_sweep_depend_on_direction_only(dtype, scale):
    """Squaring entries near the float range overflows (or underflows) a plain norm: the
    predictions, probabilities and cosines must still be those of the rows' directions."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 16)).astype(dtype)
    with np.errstate(over="ignore", under="ignore"):
        scaled = (X.astype(np.float64) * scale).astype(dtype)
    assert np.isfinite(scaled).all() and np.all(scaled != 0)
    classes = ["dog", "cat", "car", "tree", "boat"]
    clf = ZeroShotClassifier(classes, encoder=HashedPrompts(16)).fit(X)
    np.testing.assert_array_equal(clf.predict(scaled), clf.predict(X))
    np.testing.assert_allclose(clf.predict_proba(scaled), clf.predict_proba(X), rtol=1e-4)
    loud = ZeroShotClassifier(classes, encoder=HashedPrompts(16, scale=1e200)).fit(X)
    np.testing.assert_allclose(loud.class_embeddings_, clf.class_embeddings_, rtol=1e-12)

    splice = SpLiCETransformer(dictionary=rng.normal(size=(30, 16)), l1=0.1).fit(X)
    expected = sparsity_sweep(splice, X, l1_values=[0.05, 0.2])
    got = sparsity_sweep(splice, scaled, l1_values=[0.05, 0.2])
    np.testing.assert_allclose(got["mean_cosine"], expected["mean_cosine"], rtol=1e-5)
    assert 0.3 < expected["mean_cosine"].iloc[0] < 1


class Echo:
    """A toy text encoder that records the texts it was given."""

    def __init__(self):
        self.texts = []

    def encode_text(self, texts):
        self.texts += texts
        return np.array([[len(t), t.count("{"), t.count("}"), sum(map(ord, t)) % 97 + 1.0]
                         for t in texts])  # fmt: skip


BAD_TEMPLATES = [
    ("a {} and {}", r"it has 2 fields \('\{\}', '\{\}'\)"),
    ("a {} {x}", r"it has 2 fields \('\{\}', '\{x\}'\)"),
    ("a {} {", "Single '{' encountered"),
    ("a {} }", "Single '}' encountered"),
    ("{{}}", "it has 0 fields"),
    ("a photo", "it has 0 fields"),
    ("a {0}", r"its field '\{0\}' is not empty"),
    ("a {!r}", r"its field '\{!r\}' is not empty"),
]


@pytest.mark.parametrize(("template", "problem"), BAD_TEMPLATES)
@pytest.mark.parametrize("where", ["encode_concepts", "SpLiCETransformer", "ZeroShotClassifier"])
def test_a_template_needs_exactly_one_empty_field(template, problem, where, skplice_home):
    encoder = Echo()
    if where == "encode_concepts":
        call = partial(encode_concepts, ["dog", "cat"], encoder, template=template)
    elif where == "SpLiCETransformer":
        splice = SpLiCETransformer(vocabulary=["dog", "cat", "car"], encoder=encoder,
                                   template=template)  # fmt: skip
        call = partial(splice.fit, np.ones((2, 4)))
    else:
        clf = ZeroShotClassifier(["dog", "cat"], templates=["a {}", template], encoder=encoder)
        call = partial(clf.fit, np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"must contain exactly one '\{\}' where the name goes"):
        call()
    with pytest.raises(ValueError, match=problem):
        call()
    assert encoder.texts == []  # refused before anything was encoded


def test_literal_braces_in_templates_and_names_are_kept(skplice_home):
    encoder = Echo()
    encode_concepts(["dog", "{x}"], encoder, template="{{a}} {} }}")
    ZeroShotClassifier(["cat", "{}"], templates="{{{}}}", encoder=encoder).fit(np.ones((2, 4)))
    assert encoder.texts == ["{a} dog }", "{a} {x} }", "{cat}", "{{}}"]


def clone_fit(estimator, X):
    from sklearn.base import clone

    return clone(estimator).fit(X)


# -- layouts, views, read-only and memory-mapped inputs ----------------------------------------


def layouts(X, tmp_path):
    """The same values as a Fortran array, a strided view, a read-only array, a memmap,
    a DataFrame and a list."""
    fortran = np.asfortranarray(X)
    wide = np.zeros((X.shape[0] * 2, X.shape[1] * 3), dtype=X.dtype)
    wide[::2, ::3] = X
    view = wide[::2, ::3]
    readonly = X.copy()
    readonly.setflags(write=False)
    np.save(tmp_path / "X.npy", X)
    memmap = np.load(tmp_path / "X.npy", mmap_mode="r")
    return {
        "fortran": fortran,
        "strided view": view,
        "read-only": readonly,
        "memmap": memmap,
        "dataframe": pd.DataFrame(X),
        **({"list": X.tolist()} if X.dtype == np.float64 else {}),  # Python floats: float64
    }


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(X=embeddings(min_rows=2), data=st.data())
def test_memory_layout_never_changes_a_result(X, data, tmp_path_factory):
    with np.errstate(over="ignore", under="ignore"):
        X = X.astype(data.draw(st.sampled_from([np.float32, np.float64])))
    assume(np.isfinite(X).all() and np.any(X != 0, axis=1).all())
    rng = np.random.default_rng(1)
    dictionary = rng.normal(size=(15, X.shape[1]))
    reference = SpLiCETransformer(dictionary=dictionary, l1=0.05).fit(X)
    W = reference.transform(X).toarray()
    for name, variant in layouts(X, tmp_path_factory.mktemp("layouts")).items():
        before = np.array(variant, copy=True)
        fitted = SpLiCETransformer(dictionary=dictionary, l1=0.05).fit(variant)
        np.testing.assert_array_equal(fitted.image_mean_, reference.image_mean_, err_msg=name)
        np.testing.assert_array_equal(reference.transform(variant).toarray(), W, err_msg=name)
        np.testing.assert_array_equal(np.asarray(variant), before, err_msg=name)
        if name in ("memmap", "strided view", "read-only"):
            parts = list(transform_batches(reference, variant, batch_size=1))
            np.testing.assert_allclose(sp.vstack(parts).toarray(), W, atol=1e-12, err_msg=name)


def test_fortran_ordered_input_gives_the_same_bits():
    """Regression: DataFrame.to_numpy() is Fortran-ordered, and the weights of such input
    used to differ in the last bits (reductions sum in a layout-dependent order)."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 32)).astype(np.float32)
    splice = SpLiCETransformer(dictionary=rng.normal(size=(40, 32)), l1=0.05).fit(X)
    fortran = np.asfortranarray(X)
    np.testing.assert_array_equal(
        splice.transform(fortran).toarray(), splice.transform(X).toarray()
    )
    np.testing.assert_array_equal(
        SpLiCETransformer(dictionary=splice.dictionary).fit(fortran).image_mean_,
        splice.image_mean_,
    )


# -- values that must be refused ---------------------------------------------------------------


@SETTINGS
@given(
    X=embeddings(min_rows=1, n_features=5),
    bad=st.sampled_from([np.nan, np.inf, -np.inf, 0.0]),
    data=st.data(),
)
def test_nan_inf_and_zero_rows_are_refused_and_change_nothing(X, bad, data):
    X = X.astype(np.float64)
    row = data.draw(st.integers(0, X.shape[0] - 1))
    if bad == 0.0:
        X[row] = 0.0
        message = "all-zero rows"
    else:
        X[row, data.draw(st.integers(0, 4))] = bad
        message = "NaN" if np.isnan(bad) else "infinity"
    original = X.copy()
    rng = np.random.default_rng(3)
    good = rng.normal(size=(6, 5))
    splice = SpLiCETransformer(dictionary=rng.normal(size=(8, 5))).fit(good)
    before = copy.deepcopy(vars(splice))
    for method in ("fit", "partial_fit", "transform", "score", "regularization_path"):
        args = (X, [0.1]) if method == "regularization_path" else (X,)
        with pytest.raises(ValueError, match=message):
            getattr(splice, method)(*args)
        assert vars(splice).keys() == before.keys()
        np.testing.assert_array_equal(splice.image_mean_, before["image_mean_"])
    np.testing.assert_array_equal(X, original, strict=True)


BAD_INPUTS = {
    "empty": (np.zeros((0, 5)), ValueError, "0 sample"),
    "no features": (np.zeros((3, 0)), ValueError, "0 feature"),
    "1-D": (np.ones(5), ValueError, "Expected 2D array"),
    "3-D": (np.ones((2, 5, 1)), ValueError, "dim 3"),
    "complex": (np.ones((2, 5), dtype=complex), ValueError, "Complex data"),
    "text": (np.array([["a"] * 5] * 2), ValueError, "could not convert string"),
    "None inside": (np.array([[None] * 5] * 2), ValueError, "NaN|float"),
    "ragged": ([[1.0, 2.0], [3.0]], ValueError, "inhomogeneous"),
    "sparse": (sp.csr_matrix(np.ones((2, 5))), TypeError, "dense data is required"),
    "wrong width": (np.ones((2, 4)), ValueError, "4 features"),
    "scalar": (np.float64(1.0), ValueError, "Expected 2D array"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_malformed_input_names_the_problem(name):
    X, error, message = BAD_INPUTS[name]
    rng = np.random.default_rng(4)
    splice = SpLiCETransformer(dictionary=rng.normal(size=(8, 5))).fit(rng.normal(size=(6, 5)))
    before = copy.deepcopy(vars(splice))
    original = copy.deepcopy(X)
    methods = ["transform", "score", "partial_fit"] + ([] if name == "wrong width" else ["fit"])
    for method in methods:
        with pytest.raises(error, match=message):
            getattr(splice, method)(X)
        assert vars(splice).keys() == before.keys()
    if isinstance(X, np.ndarray):
        np.testing.assert_array_equal(X, original)


@pytest.mark.parametrize(
    ("l1_values", "message"),
    [(None, "l1_values"), (["a"], "l1_values"), ([], "l1_values"), ([np.nan], "l1_values")],
)
def test_bad_l1_values_name_the_argument(l1_values, message):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(4, 5))
    splice = SpLiCETransformer(dictionary=rng.normal(size=(8, 5))).fit(X)
    with pytest.raises(ValueError, match=message):
        splice.regularization_path(X, l1_values)


# -- degenerate but valid problems ------------------------------------------------------------


@SETTINGS
@given(X=embeddings(max_rows=1))
def test_one_sample(X):
    rng = np.random.default_rng(6)
    splice = SpLiCETransformer(dictionary=rng.normal(size=(7, X.shape[1])), l1=0.1)
    with pytest.warns(SingleSampleMeanWarning, match="single sample"):
        splice.fit(X)
    assert_valid_weights(splice.transform(X), 1, 7, expected_dtype(X))
    # The only sample is the mean: nothing is left after centring, so no concept.
    assert splice.transform(X).nnz == 0


@SETTINGS
@given(X=embeddings(), l1=st.floats(0, 10))
def test_one_concept(X, l1):
    rng = np.random.default_rng(7)
    concept = rng.normal(size=(1, X.shape[1]))
    with pytest.raises(ValueError, match="no direction left"):
        SpLiCETransformer(dictionary=concept).fit(X)
    tol = 1e-6 if expected_dtype(X) == np.float32 else 1e-9  # float32 cannot reach 1e-9
    splice = SpLiCETransformer(dictionary=concept, center=False, l1=l1, tol=tol).fit(X)
    W = splice.transform(X)
    assert_valid_weights(W, X.shape[0], 1, expected_dtype(X))
    # Closed form for one unit concept c: w = max(c.z - l1/2, 0).
    Z = X.astype(np.float64)
    Z = Z / np.abs(Z).max(axis=1, keepdims=True)
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    expected = np.maximum(Z @ splice.components_[0] - l1 / 2, 0)
    np.testing.assert_allclose(W.toarray()[:, 0], expected, atol=1e-5)


@SETTINGS
@given(X=embeddings(max_rows=4), repeats=st.integers(2, 5))
def test_duplicate_rows_get_the_same_weights(X, repeats):
    rng = np.random.default_rng(8)
    splice = SpLiCETransformer(dictionary=rng.normal(size=(9, X.shape[1])), l1=0.05)
    stacked = np.repeat(X, repeats, axis=0)
    W = splice.fit(stacked).transform(stacked).toarray()
    for i in range(X.shape[0]):
        block = W[i * repeats : (i + 1) * repeats]
        # Equal up to rounding: the batched solver's last bits depend on a row's
        # position in its batch (about 1e-16).
        np.testing.assert_allclose(block, np.broadcast_to(block[0], block.shape), atol=1e-12)


@SETTINGS
@given(data=st.data())
def test_any_dictionary_is_used_or_refused_by_name(data):
    d = data.draw(st.integers(1, 6))
    dtype = data.draw(st.sampled_from(REAL_DTYPES))
    dictionary = data.draw(finite_arrays(dtype, (data.draw(st.integers(1, 8)), d)))
    center = data.draw(st.booleans())
    X = np.random.default_rng(9).normal(size=(5, d))
    original = dictionary.copy()
    splice = SpLiCETransformer(dictionary=dictionary, center=center, l1=0.1)
    try:
        splice.fit(X)
    except ValueError as exc:
        assert re.search("all zeros|no direction left", str(exc)), exc
        assert not hasattr(splice, "components_")
    else:
        assert np.isfinite(splice.components_).all()
        np.testing.assert_allclose(np.linalg.norm(splice.components_, axis=1), 1.0, rtol=1e-6)
        assert_valid_weights(splice.transform(X), 5, dictionary.shape[0], np.float64)
    np.testing.assert_array_equal(dictionary, original)


@SETTINGS
@given(data=st.data())
def test_inverse_transform_of_any_weights(data):
    rng = np.random.default_rng(10)
    splice = SpLiCETransformer(dictionary=rng.normal(size=(6, 4))).fit(rng.normal(size=(5, 4)))
    W = data.draw(finite_arrays(data.draw(st.sampled_from([np.float32, np.float64])), (3, 6)))
    W = np.abs(W)
    original = W.copy()
    for weights in (W, sp.csr_matrix(W), sp.coo_matrix(W)):
        recon = splice.inverse_transform(weights)
        assert recon.shape == (3, 4) and np.isfinite(recon).all()
        np.testing.assert_allclose(np.linalg.norm(recon, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(W, original)
    with pytest.raises(ValueError, match="6 concepts"):
        splice.inverse_transform(W[:, :5])


# -- streaming over random batches -------------------------------------------------------------


@SETTINGS
@given(X=embeddings(max_rows=30), batch_size=st.integers(1, 40))
def test_transform_batches_equals_transform_for_any_batch_size(X, batch_size):
    rng = np.random.default_rng(11)
    splice = SpLiCETransformer(dictionary=rng.normal(size=(9, X.shape[1])), l1=0.05).fit(X)
    parts = list(transform_batches(splice, X, batch_size=batch_size))
    assert len(parts) == -(-X.shape[0] // batch_size)
    # To rounding: the solver's last bits depend on the batch (see the test above).
    np.testing.assert_allclose(
        sp.vstack(parts).toarray(), splice.transform(X).toarray(), rtol=0, atol=1e-12
    )


# -- images: any array is embedded or refused by position ----------------------------------------


@st.composite
def image_arrays(draw):
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    channels = draw(st.sampled_from([None, 1, 2, 3, 4, 5]))
    shape = (height, width) if channels is None else (height, width, channels)
    dtype = draw(
        st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.bool_, np.int64])
    )
    if np.issubdtype(dtype, np.floating):
        elements = st.floats(-0.5, 1.5, width=np.finfo(dtype).bits) | st.sampled_from(
            [np.nan, np.inf, 0.0, 1.0]
        )
        return draw(hnp.arrays(dtype, shape, elements=elements))
    return draw(hnp.arrays(dtype, shape))


@pytest.fixture(scope="module")
def tiny_embedder(tiny_clip):
    return CLIPEmbedder(tiny_clip, pretrained=None, device="cpu", batch_size=4)


@pytest.mark.filterwarnings("ignore:No pretrained weights loaded")
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(images=st.lists(image_arrays(), min_size=1, max_size=4))
def test_any_image_array_is_embedded_or_refused_by_position(tiny_embedder, images):
    originals = [image.copy() for image in images]
    try:
        X = tiny_embedder.transform(images)
    except ImageLoadError as exc:
        assert isinstance(exc, ValueError)
        assert 0 <= exc.index < len(images)
        assert f"image {exc.index}" in str(exc)
    else:
        assert X.shape == (len(images), 32) and X.dtype == np.float32
        assert np.isfinite(X).all()
        np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-5)
    for image, original in zip(images, originals, strict=True):
        np.testing.assert_array_equal(image, original)


# -- only regular files are opened -------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:No pretrained weights loaded")
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_a_named_pipe_among_image_paths_is_refused_without_opening_it(
    tiny_embedder, fifo, no_hang, tmp_path, n_jobs
):
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(photo)
    embedder = clone(tiny_embedder).set_params(n_jobs=n_jobs)
    with pytest.raises(ImageLoadError, match=r"image 1 .*named pipe \(FIFO\), not an image file"):
        no_hang(embedder.transform, [photo, fifo])
    with pytest.warns(SkippedImagesWarning, match="named pipe") as caught:
        X, kept = no_hang(embedder.set_params(on_error="skip").embed, [fifo, photo, fifo])
    np.testing.assert_array_equal(kept, [1])
    assert [i for i, _, _ in caught[0].message.skipped] == [0, 2]
    np.testing.assert_array_equal(X, tiny_embedder.transform([photo]))


def test_a_device_file_is_refused(tiny_embedder):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    with pytest.raises(ImageLoadError, match="character device"):
        tiny_embedder.transform(["/dev/zero"])  # an endless stream of zeros


# -- a parameter that shaped the fitted state cannot change under it --------------------------


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("center", False),
        ("dictionary", "other"),
        ("concept_names", [f"other{i}" for i in range(12)]),
    ],
)
def test_changing_a_state_parameter_after_fit_asks_for_a_refit(change, value):
    rng = np.random.default_rng(4)
    X, dictionary = rng.normal(size=(6, 8)), rng.normal(size=(12, 8))
    names = [f"word{i}" for i in range(12)]
    splice = SpLiCETransformer(dictionary=dictionary, concept_names=names, l1=0.1).fit(X)
    W = splice.transform(X)
    value = rng.normal(size=(12, 8)) if value == "other" else value
    splice.set_params(**{change: value})
    for method, argument in [
        (splice.transform, X),
        (splice.inverse_transform, W),
        (splice.score, X),
        (splice.partial_fit, X),
        (partial(splice.regularization_path, l1_values=[0.1]), X),
    ]:
        with pytest.raises(NotFittedError, match=rf"parameter {change} changed since fit.*fit"):
            method(argument)
    splice.set_params(l1=0.3, batch_size=2, device="cpu", verbose=False)  # not state
    with pytest.raises(NotFittedError):
        splice.transform(X)
    # Setting it back to an equal value (a copy) is no change at all.
    original = {"center": True, "dictionary": dictionary.copy(), "concept_names": list(names)}
    original = original[change]
    splice.set_params(l1=0.1, **{change: original})
    np.testing.assert_array_equal(splice.transform(X).toarray(), W.toarray())
    refit = pickle.loads(pickle.dumps(splice.set_params(**{change: value}).fit(X)))
    refit.transform(X)  # refitted, and the digests survive a pickle


@pytest.mark.parametrize(("change", "value"), [("template", "a {}"), ("vocabulary_size", 5)])
def test_changing_how_the_vocabulary_was_encoded_asks_for_a_refit(change, value):
    splice = SpLiCETransformer(vocabulary=["dog", "cat", "car"], encoder=HashedPrompts(8))
    X = np.random.default_rng(4).normal(size=(6, 8))
    splice.fit(X).set_params(**{change: value})
    with pytest.raises(NotFittedError, match=f"parameter {change} changed since fit"):
        splice.transform(X)


def test_parameters_a_given_dictionary_ignores_may_change():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(6, 8))
    splice = SpLiCETransformer(dictionary=rng.normal(size=(12, 8)), l1=0.1).fit(X)
    W = splice.transform(X)
    splice.set_params(encoder=HashedPrompts(8), template="a {}", vocabulary_size=3)
    np.testing.assert_array_equal(splice.transform(X).toarray(), W.toarray())
    splice.set_params(dictionary=None)  # now they matter, and the dictionary changed
    with pytest.raises(NotFittedError, match="parameter dictionary changed"):
        splice.transform(X)


def test_state_parameters_of_the_classifier_and_the_editor(skplice_home):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(5, 8))
    clf = ZeroShotClassifier(["dog", "cat"], encoder=HashedPrompts(8)).fit(X)
    clf.set_params(logit_scale=10.0)  # a prediction setting, not state
    clf.predict_proba(X)
    clf.set_params(encoder=HashedPrompts(8))  # another instance of the same class: its type
    clf.predict_proba(X)  # is all a plain object is known by (its state may hold a model)
    for change in [{"classes": ["dog", "car"]}, {"templates": "a {}"}, {"encoder": Echo()}]:
        changed = clone(clf).fit(X).set_params(**change)
        with pytest.raises(NotFittedError, match=f"parameter {next(iter(change))} changed"):
            changed.predict(X)
    W = np.abs(rng.normal(size=(4, 3)))
    editor = ConceptEditor(remove=["a"], concepts=["a", "b", "c"]).fit(W)
    editor.set_params(remove=["b"])
    with pytest.raises(NotFittedError, match="parameter remove changed since fit"):
        editor.transform(W)


@pytest.mark.parametrize("change", ["model", "pretrained", "precision", "normalize"])
def test_an_encoder_changed_in_place_after_fit_asks_for_a_refit(change, tiny_clip, skplice_home):
    embedder = CLIPEmbedder(tiny_clip, pretrained=None, device="cpu")
    splice = SpLiCETransformer(vocabulary=["dog", "cat", "car"], encoder=embedder, l1=0.1)
    splice.fit(np.random.default_rng(6).normal(size=(3, 32)))
    splice.set_params(encoder__device="cpu", encoder__batch_size=3)  # how, not what
    splice.transform(np.ones((1, 32)))
    value = {"model": "ViT-B-32", "pretrained": "openai", "precision": "bf16",
             "normalize": False}[change]  # fmt: skip
    splice.set_params(**{f"encoder__{change}": value})
    with pytest.raises(NotFittedError, match="parameter encoder changed since fit"):
        splice.transform(np.ones((1, 32)))


# -- concept names, weights ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["dog", "", "car"], r"concept_names\[1\] is empty or only whitespace"),
        (["dog", "  \t", "car"], r"concept_names\[1\] is empty or only whitespace"),
        (
            ["dog", " dog", "car"],
            "Concept names must be unique; concept_names repeats 1 name: 'dog'",
        ),
        (
            ["dog", "car ", "car"],
            "Concept names must be unique; concept_names repeats 1 name: 'car'",
        ),
    ],
)
def test_concept_names_of_an_array_dictionary_are_checked_like_a_vocabulary(names, message):
    splice = SpLiCETransformer(dictionary=np.eye(3), concept_names=names)
    with pytest.raises(ValueError, match=message):
        splice.fit(np.ones((2, 3)))
    assert not hasattr(splice, "components_")
    spaced = SpLiCETransformer(dictionary=np.eye(3), concept_names=[" dog", "cat\n", "car"])
    assert list(spaced.fit(np.ones((2, 3))).get_feature_names_out()) == ["dog", "cat", "car"]


def test_negative_weights_are_refused():
    rng = np.random.default_rng(7)
    splice = SpLiCETransformer(dictionary=rng.normal(size=(5, 4)), l1=0.1).fit(
        rng.normal(size=(6, 4))
    )
    W = splice.transform(rng.normal(size=(3, 4))).toarray()
    W[1, 2] = -0.5
    for bad in (W, sp.csr_matrix(W)):
        with pytest.raises(ValueError, match="Negative values in data passed to SpLiCETransform"):
            splice.inverse_transform(bad)
        with pytest.raises(ValueError, match="Negative values in data passed to ConceptEditor"):
            ConceptEditor(concepts=list("abcde")).fit(bad)
    editor = ConceptEditor(remove=["a"], concepts=list("abcde")).fit(np.abs(W))
    with pytest.raises(ValueError, match="non-negative"):
        editor.transform(W)


# -- messages quote long paths by their two ends ---------------------------------------------


LONG = "/tmp/" + "deep/" * 1000  # 5,005 characters


def test_long_paths_are_shortened_in_the_middle_of_messages(tiny_clip):
    identity = SpLiCETransformer(dictionary="identity").fit(np.ones((2, 2)))
    cases = [
        (lambda: load_vocabulary(LONG + "words.txt"), ValueError),
        (lambda: CLIPEmbedder(tiny_clip, pretrained=LONG + "w.pt").fit(["a.jpg"]), ValueError),
        (lambda: CLIPEmbedder("local-dir:" + LONG).fit(["a.jpg"]), ValueError),
        (lambda: transform_batches(identity, LONG + "x.npy"), OSError),
    ]
    for call, error in cases:
        with pytest.raises(error) as info:
            call()
        message = str(info.value)
        assert len(message) < 1000, message[:300]
        assert "/tmp/deep/" in message and "..." in message, message
    with pytest.raises(ImageLoadError) as info:
        CLIPEmbedder(tiny_clip, pretrained=None, device="cpu").transform([LONG + "photo.jpg"])
    assert len(str(info.value)) < 600 and str(info.value).count("deep/") < 100
    assert "photo.jpg'" in str(info.value)  # the end of the path, its file name, is kept
