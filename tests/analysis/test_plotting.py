"""Plots, checked on the rendered PNG: the image panel's pixels, bar lengths and labels."""

import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from skplice import (  # noqa: E402
    class_concept_summary,
    plot_class_concepts,
    plot_concept_histogram,
    plot_image_concepts,
)

BAR_COLOR = np.array([31, 119, 180])  # matplotlib's "tab:blue"
NAMES = ["astronaut", "flag", "space", "suit", "smile", "rocket"]
WEIGHTS = np.array([0.45, 0.0, 0.3, 0.15, 0.05, 0.0])


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def photo():
    return pytest.importorskip("skimage.data").astronaut()


def render(fig, tmp_path):
    """Save to PNG and read the pixels back (rows from the top, as stored)."""
    path = tmp_path / "figure.png"
    fig.savefig(path)
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def crop(pixels, artist, inset=2):
    """The pixels inside an artist's bounding box (display coordinates start bottom-left)."""
    box = artist.get_window_extent()
    height = pixels.shape[0]
    top, bottom = int(np.ceil(height - box.y1)) + inset, int(height - box.y0) - inset
    left, right = int(np.ceil(box.x0)) + inset, int(box.x1) - inset
    return pixels[top:bottom, left:right]


def bar_lengths(pixels, ax):
    """Length in pixels of the bar colour along each bar's middle row, inside ``ax``."""
    panel = ax.get_window_extent()
    lengths = []
    for bar in ax.patches:
        box = bar.get_window_extent()
        row = pixels[int(pixels.shape[0] - (box.y0 + box.y1) / 2)]
        row = row[int(panel.x0) : int(np.ceil(panel.x1))]
        lengths.append(int(np.all(np.abs(row - BAR_COLOR) < 8, axis=1).sum()))
    return np.array(lengths)


def test_image_panel_shows_the_image(photo, tmp_path):
    fig = plot_image_concepts(photo, WEIGHTS, NAMES)
    pixels = render(fig, tmp_path)
    shown = crop(pixels, fig.axes[0].images[0], inset=0)
    height, width = shown.shape[:2]
    assert 0.95 < width / height < 1.05  # the square photo is not distorted
    expected = np.asarray(Image.fromarray(photo).resize((width, height), Image.LANCZOS))
    error = np.abs(shown - expected.astype(int))[2:-2, 2:-2].mean()
    flipped = np.abs(shown - expected[::-1].astype(int))[2:-2, 2:-2].mean()
    assert error < 6, error
    assert flipped > 5 * error  # the comparison tells images apart


def test_bars_show_the_top_concepts_heaviest_first(photo, tmp_path):
    fig = plot_image_concepts(photo, WEIGHTS, NAMES, n=3)
    bar_ax = fig.axes[1]
    assert [label.get_text() for label in bar_ax.get_yticklabels()] == [
        "astronaut",
        "space",
        "suit",
    ]
    bars = bar_ax.patches
    np.testing.assert_allclose([bar.get_width() for bar in bars], [0.45, 0.3, 0.15])
    tops = [bar.get_window_extent().y0 for bar in bars]
    assert tops[0] > tops[1] > tops[2]  # heaviest at the top
    assert bar_ax.get_xlabel() == "concept weight"
    lengths = bar_lengths(render(fig, tmp_path), bar_ax)
    np.testing.assert_allclose(lengths / lengths[0], [1, 0.3 / 0.45, 0.15 / 0.45], atol=0.02)


def test_names_and_weights_from_a_named_row(photo):
    matrix = sp.csr_matrix(np.vstack([WEIGHTS[::-1], WEIGHTS]))
    matrix.concept_names = np.asarray(NAMES, dtype=object)
    frame = pd.DataFrame([WEIGHTS], columns=NAMES)
    for row in (matrix[[1]], frame, frame.iloc[0]):
        if sp.issparse(row):
            row.concept_names = matrix.concept_names  # indexing drops the attribute
        fig = plot_image_concepts(photo, row, n=2)
        assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["astronaut", "space"]


def test_image_plot_draws_into_given_axes(photo):
    fig, axes = plt.subplots(1, 2)
    assert plot_image_concepts(photo, WEIGHTS, NAMES, axes=axes) is fig
    assert len(axes[1].patches) == 4


def test_image_plot_errors(photo):
    with pytest.raises(ValueError, match="one image's concepts; got 2 rows"):
        plot_image_concepts(photo, np.vstack([WEIGHTS, WEIGHTS]), NAMES)
    with pytest.raises(ValueError, match="needs concept names"):
        plot_image_concepts(photo, WEIGHTS)
    with pytest.raises(ValueError, match="negative entries"):
        plot_image_concepts(photo, -WEIGHTS, NAMES)


@pytest.fixture(scope="module")
def classes():
    rng = np.random.default_rng(0)
    names = ["sand", "waves", "desk", "laptop", "tree", "grass", "sky"]
    prevalence = {
        "beach": [0.9, 0.6, 0.0, 0.05, 0.1, 0.0, 0.7],
        "office": [0.0, 0.0, 0.8, 0.7, 0.05, 0.0, 0.05],
        "park": [0.05, 0.0, 0.0, 0.0, 0.8, 0.9, 0.5],
        "street": [0.0, 0.0, 0.0, 0.1, 0.3, 0.0, 0.6],
    }
    W, y = [], []
    for label, p in prevalence.items():
        W.append((rng.uniform(size=(40, 7)) < p) * rng.uniform(0.1, 0.5, size=(40, 7)))
        y += [label] * 40
    return np.vstack(W), np.array(y), names


def test_class_histograms_show_each_class_top_concepts(classes, tmp_path):
    W, y, names = classes
    fig = plot_class_concepts(W, y, names, top=3, ncols=3)
    assert [ax.get_title() for ax in fig.axes] == ["beach", "office", "park", "street"]
    summary = class_concept_summary(W, y, names, top=3, sort_by="prevalence")
    pixels = render(fig, tmp_path)
    for ax in fig.axes:
        expected = summary[summary["class"] == ax.get_title()]
        assert [t.get_text() for t in ax.get_yticklabels()] == expected["concept"].tolist()
        widths = [bar.get_width() for bar in ax.patches]
        np.testing.assert_allclose(widths, expected["prevalence"])
        assert ax.get_xlim() == (0, 1) and "prevalence" in ax.get_xlabel()
        # On a shared 0-1 scale, bar lengths in pixels are proportional to prevalence.
        axis_width = ax.get_window_extent().width
        np.testing.assert_allclose(
            bar_lengths(pixels, ax) / axis_width, expected["prevalence"], atol=0.02
        )
    beach = fig.axes[0]
    assert beach.get_yticklabels()[0].get_text() == "sand"


def test_class_histograms_by_mean_weight(classes):
    W, y, names = classes
    fig = plot_class_concepts(W, y, names, top=2, value="mean_weight", ncols=2)
    summary = class_concept_summary(W, y, names, top=2, sort_by="mean_weight")
    assert len(fig.axes) == 4 and fig.axes[0].get_xlabel() == "mean weight"
    for ax in fig.axes:
        expected = summary[summary["class"] == ax.get_title()]
        np.testing.assert_allclose([b.get_width() for b in ax.patches], expected["mean_weight"])


def test_class_histograms_errors(classes):
    W, y, names = classes
    with pytest.raises(ValueError, match="value must be 'prevalence' or 'mean_weight'"):
        plot_class_concepts(W, y, names, value="weight")
    with pytest.raises(ValueError, match="ncols must be an int >= 1"):
        plot_class_concepts(W, y, names, ncols=0)
    with pytest.raises(ValueError, match="one label per sample"):
        plot_class_concepts(W, y[:10], names)


def colour_pixels(pixels, rgb, tolerance=6):
    return int(np.all(np.abs(pixels - np.asarray(rgb)) <= tolerance, axis=-1).sum())


def test_concept_histogram_per_class_counts_every_sample(classes, tmp_path):
    W, y, names = classes
    fig = plot_concept_histogram(W, "sand", y, names, bins=10, log=False)
    ax = fig.axes[0]
    values = W[:, names.index("sand")]
    edges = np.histogram_bin_edges(values, bins=10)
    assert ax.get_title() == "sand" and ax.get_xlabel() == "weight of 'sand'"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        f"{label} (n=40)" for label in ("beach", "office", "park", "street")
    ]
    assert len(ax.containers) == 4
    for label, bars in zip(("beach", "office", "park", "street"), ax.containers, strict=True):
        counts, _ = np.histogram(values[y == label], bins=edges)
        np.testing.assert_array_equal([bar.get_height() for bar in bars], counts)
        np.testing.assert_allclose([bar.get_x() for bar in bars], edges[:-1], atol=1e-12)
        assert sum(bar.get_height() for bar in bars) == 40  # zeros counted in the first bin
    # The class that has sand (beach) reaches the heavy bins; office never does.
    beach, office = ax.containers[0], ax.containers[1]
    assert sum(bar.get_height() for bar in beach[1:]) > 30
    assert sum(bar.get_height() for bar in office[1:]) == 0
    # Both colours are drawn: each class's bars show on the rendered image.
    pixels = render(fig, tmp_path)
    colours = [np.round(np.asarray(bars[0].get_facecolor()[:3]) * 255) for bars in ax.containers]
    for colour in colours:  # blended with white by the transparency where alone
        alpha = ax.containers[0][0].get_alpha()
        assert colour_pixels(pixels, alpha * colour + (1 - alpha) * 255) > 100


def test_concept_histogram_of_all_samples_on_a_log_scale(classes):
    W, _, names = classes
    fig = plot_concept_histogram(W, ["desk", "laptop"], concept_names=names)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_legend() is None
    assert ax.get_xlabel() == "mean weight of 'desk', 'laptop'"
    values = W[:, [names.index("desk"), names.index("laptop")]].mean(axis=1)
    counts, edges = np.histogram(values, bins=20)
    (bars,) = ax.containers
    np.testing.assert_array_equal([bar.get_height() for bar in bars], counts)
    np.testing.assert_allclose(bars[-1].get_x() + bars[-1].get_width(), edges[-1])


def test_concept_histogram_reads_carried_names_and_draws_into_axes(classes):
    W, y, names = classes
    frame = pd.DataFrame(W, columns=names)
    fig, ax = plt.subplots()
    assert plot_concept_histogram(frame, "grass", y, ax=ax) is fig
    matrix = sp.csr_matrix(W)
    matrix.concept_names = np.asarray(names, dtype=object)
    other = plot_concept_histogram(matrix, "grass", y).axes[0]
    for first, second in zip(ax.containers, other.containers, strict=True):
        assert [b.get_height() for b in first] == [b.get_height() for b in second]


def test_concept_histogram_errors(classes):
    W, y, names = classes
    with pytest.raises(ValueError, match=r"'gras' is not one of the 7 concepts.*'grass'"):
        plot_concept_histogram(W, "gras", y, names)
    with pytest.raises(ValueError, match="at least one concept"):
        plot_concept_histogram(W, [], y, names)
    with pytest.raises(ValueError, match="one label per sample"):
        plot_concept_histogram(W, "sand", y[:3], names)
    with pytest.raises(ValueError, match="needs concept names"):
        plot_concept_histogram(W, "sand", y)


def test_missing_matplotlib_names_the_extra(monkeypatch, photo):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "skplice\[plot\]"'):
        plot_image_concepts(photo, WEIGHTS, NAMES)
