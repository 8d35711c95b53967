"""sparsity_sweep and plot_sparsity_curve: sparsity, faithfulness and accuracy curves."""

import io
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from skplice import SpLiCETransformer, ZeroShotClassifier, plot_sparsity_curve, sparsity_sweep

L1_VALUES = [0.05, 0.1, 0.2, 0.4, 0.8, 1.5]


def unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def minilm_sweep(class_sentences, minilm_encoder, minilm_laion_concepts):
    X, y, names = class_sentences
    dictionary, vocabulary = minilm_laion_concepts
    splice = SpLiCETransformer(dictionary=dictionary, concept_names=vocabulary, device="cpu").fit(
        X
    )
    classifier = ZeroShotClassifier(names, encoder=minilm_encoder).fit(X, y)
    return sparsity_sweep(splice, X, y, l1_values=L1_VALUES, classifier=classifier), len(y)


@pytest.fixture
def toy():
    """Random embeddings, a random dictionary and a fitted transformer."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 16)) + 2.0
    dictionary = rng.normal(size=(60, 16)) + 1.0
    splice = SpLiCETransformer(dictionary=dictionary, device="cpu").fit(X)
    return X, rng.integers(0, 2, size=30), splice


def test_sweep_on_minilm_has_the_papers_monotone_curves(minilm_sweep):
    results, n_samples = minilm_sweep
    assert results.columns.tolist() == [
        "representation",
        "l1",
        "mean_l0",
        "mean_cosine",
        "accuracy",
    ]
    assert results["representation"].tolist() == ["splice"] * len(L1_VALUES) + ["dense"]
    curve, dense = results.iloc[:-1], results.iloc[-1]
    assert curve["l1"].tolist() == L1_VALUES
    # Fewer concepts and less faithful reconstructions as l1 grows...
    assert (np.diff(curve["mean_l0"]) < 0).all(), curve
    assert (np.diff(curve["mean_cosine"]) < 0).all(), curve
    assert curve["mean_cosine"].between(0, 1).all()
    # ...and accuracy approaches the dense embeddings' as l1 shrinks.
    assert dense["accuracy"] >= 0.9
    assert abs(curve["accuracy"].iloc[0] - dense["accuracy"]) <= 1 / n_samples + 1e-9
    assert curve["accuracy"].iloc[-1] < dense["accuracy"] - 0.1
    assert np.isnan(dense["l1"]) and np.isnan(dense["mean_l0"]) and dense["mean_cosine"] == 1.0


def test_sweep_agrees_with_one_transform_per_l1(toy):
    X, _, splice = toy
    results = sparsity_sweep(splice, X, l1_values=[0.3, 0.1])
    for row in results.iloc[:-1].itertuples():
        fitted = splice.set_params(l1=row.l1)
        assert row.mean_l0 == pytest.approx(fitted.transform(X).getnnz(axis=1).mean(), abs=0.1)
        assert row.mean_cosine == pytest.approx(fitted.score(X), abs=1e-5)
    assert "accuracy" not in results


def test_dense_weights_give_the_same_sweep(toy):
    X, _, splice = toy
    sparse = sparsity_sweep(splice, X, l1_values=[0.2, 0.5])
    dense = sparsity_sweep(splice.set_params(sparse_output=False), X, l1_values=[0.2, 0.5])
    pd.testing.assert_frame_equal(sparse, dense)


def test_any_fitted_classifier_scores_reconstructions(toy):
    X, y, splice = toy
    probe = LogisticRegression().fit(X, y)
    results = sparsity_sweep(splice, X, y, l1_values=[0.1, 100.0], classifier=probe)
    assert results["accuracy"].iloc[-1] == probe.score(X, y)
    reconstructions = splice.inverse_transform(splice.set_params(l1=0.1).transform(X))
    assert results["accuracy"].iloc[0] == probe.score(reconstructions, y)


def test_class_names_make_a_zero_shot_classifier_with_the_splice_encoder(toy):
    X, _, splice = toy
    rng = np.random.default_rng(1)
    prompts = {"a photo of a cat.": rng.normal(size=16), "a photo of a dog.": rng.normal(size=16)}

    class PromptTable:
        def encode_text(self, texts):
            return np.stack([prompts[text] for text in texts])

    splice.set_params(encoder=PromptTable())
    y = np.where(np.arange(30) % 3, "cat", "dog")
    results = sparsity_sweep(splice, X, y, l1_values=[0.2], classifier=["cat", "dog"])
    expected = ZeroShotClassifier(["cat", "dog"], encoder=PromptTable()).fit(X).score(X, y)
    assert results["accuracy"].iloc[-1] == expected
    with pytest.raises(ValueError, match="not classes"):
        sparsity_sweep(splice, X, y, l1_values=[0.2], classifier=["cat", "horse"])


def test_dataframe_inputs_keep_their_feature_names(toy):
    X, y, _ = toy
    frame = pd.DataFrame(X, columns=[f"dim{i}" for i in range(X.shape[1])])
    splice = SpLiCETransformer(dictionary="identity", device="cpu").fit(frame)
    probe = LogisticRegression().fit(frame, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names" warning
        from_frame = sparsity_sweep(splice, frame, y, l1_values=[0.1], classifier=probe)
    assert from_frame["accuracy"].iloc[-1] == probe.score(frame, y)
    from_array = sparsity_sweep(
        SpLiCETransformer(dictionary="identity", device="cpu").fit(X),
        X,
        y,
        l1_values=[0.1],
        classifier=LogisticRegression().fit(X, y),
    )
    pd.testing.assert_frame_equal(from_frame, from_array)


def test_inputs_are_not_modified(toy):
    X, y, splice = toy
    X_before, y_before = X.copy(), y.copy()
    X.setflags(write=False)
    l1_values = [0.3, 0.1]
    sparsity_sweep(splice, X, y, l1_values=l1_values, classifier=LogisticRegression().fit(X, y))
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    assert l1_values == [0.3, 0.1] and splice.l1 == 0.2


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"y": [0] * 30}, ValueError, "Pass both y and classifier"),
        ({"classifier": ["cat", "dog"]}, ValueError, "Pass both y and classifier"),
        ({"y": [0] * 30, "classifier": LogisticRegression()}, NotFittedError, "not fitted"),
        ({"y": [0] * 30, "classifier": "cat"}, TypeError, "fitted classifier"),
        ({"y": [0] * 29, "classifier": ["a"]}, ValueError, "inconsistent numbers"),
        ({"l1_values": [-1.0]}, ValueError, "l1_values must be"),
    ],
)
def test_bad_arguments_raise_a_clear_error(toy, arguments, error, message):
    X, _, splice = toy
    arguments = {"l1_values": [0.2], **arguments}
    with pytest.raises(error, match=message):
        sparsity_sweep(splice, X, **arguments)


def test_the_transformer_must_be_a_fitted_splice_transformer(toy):
    X, _, _ = toy
    with pytest.raises(NotFittedError):
        sparsity_sweep(SpLiCETransformer(dictionary="identity"), X, l1_values=[0.2])
    with pytest.raises(TypeError, match="must be a SpLiCETransformer"):
        sparsity_sweep(LogisticRegression(), X, l1_values=[0.2])


# ------------------------------------------------------------------------- plot


@pytest.fixture
def pyplot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_plot_draws_each_series_against_the_number_of_concepts(minilm_sweep, pyplot):
    results, _ = minilm_sweep
    figure = plot_sparsity_curve(results)
    cosine_ax, accuracy_ax = figure.axes
    assert cosine_ax.get_xlabel() == accuracy_ax.get_xlabel() == "Mean number of concepts (l0)"
    assert cosine_ax.get_ylabel() == "Mean cosine(embedding, reconstruction)"
    assert accuracy_ax.get_ylabel() == "Accuracy"
    curve = results.iloc[:-1].sort_values("mean_l0")
    (cosine_line,) = cosine_ax.lines
    np.testing.assert_allclose(cosine_line.get_xdata(), curve["mean_l0"])
    np.testing.assert_allclose(cosine_line.get_ydata(), curve["mean_cosine"])
    splice_line, dense_line = accuracy_ax.lines
    np.testing.assert_allclose(splice_line.get_ydata(), curve["accuracy"])
    # axhline: a horizontal line at the dense accuracy, across the whole Axes.
    np.testing.assert_allclose(dense_line.get_ydata(), [results["accuracy"].iloc[-1]] * 2)
    assert dense_line.get_linestyle() == "--"
    assert [t.get_text() for t in accuracy_ax.get_legend().get_texts()] == ["SpLiCE", "dense"]
    png = io.BytesIO()
    figure.savefig(png, format="png")
    assert png.getvalue().startswith(b"\x89PNG") and len(png.getvalue()) > 10_000


def test_plot_without_accuracy_and_into_given_axes(toy, pyplot):
    X, _, splice = toy
    results = sparsity_sweep(splice, X, l1_values=[0.1, 0.5])
    figure = plot_sparsity_curve(results)
    assert len(figure.axes) == 1 and len(figure.axes[0].lines) == 1
    _, ax = pyplot.subplots()
    assert plot_sparsity_curve(results, axes=[ax]) is ax.figure
    with pytest.raises(ValueError, match="axes must hold 1 Axes"):
        plot_sparsity_curve(results, axes=[ax, ax])
    with pytest.raises(ValueError, match=r"lacks the columns \['mean_l0'\]"):
        plot_sparsity_curve(results.drop(columns="mean_l0"))


def test_plot_without_matplotlib_names_the_extra(toy, monkeypatch):
    X, _, splice = toy
    results = sparsity_sweep(splice, X, l1_values=[0.1])
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"skplice\[plot\]"):
        plot_sparsity_curve(results)
