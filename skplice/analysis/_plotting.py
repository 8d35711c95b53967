"""Plots of SpLiCE concepts: an image beside its top concepts, class concept histograms,
the distribution of one concept's weights, and the sparsity curves of
:func:`~skplice.sparsity_sweep`.

matplotlib is an optional dependency (``pip install "skplice[plot]"``), imported only
when a plot is drawn.
"""

import difflib

import numpy as np
import pandas as pd

from skplice.analysis._inspection import class_concept_summary, top_concepts
from skplice.decomposition._weights import check_labels, check_weights
from skplice.embedding._images import load_rgb
from skplice.utils._deps import import_optional
from skplice.utils._validation import check_int

_VALUE_LABELS = {"prevalence": "prevalence (fraction of samples)", "mean_weight": "mean weight"}
_SWEEP_LABELS = {
    "mean_l0": "Mean number of concepts (l0)",
    "mean_cosine": "Mean cosine(embedding, reconstruction)",
    "accuracy": "Accuracy",
}


def plot_image_concepts(image, weights, concept_names=None, *, n=10, axes=None):
    """Show an image beside a bar chart of its heaviest concepts.

    Parameters
    ----------
    image : path, bytes, PIL image or ndarray
        The image, in any form :class:`~skplice.CLIPEmbedder` accepts.
    weights : {array-like, sparse matrix, DataFrame} of shape (n_concepts,) or (1, n_concepts)
        The image's concept weights, e.g. one row of
        :meth:`SpLiCETransformer.transform`.
    concept_names : list of str, default=None
        One name per concept; needed only when ``weights`` carries no names.
    n : int, default=10
        Number of concepts shown (fewer if fewer are non-zero).
    axes : pair of matplotlib Axes, default=None
        Where to draw the image and the bars; None makes a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure; ``figure.axes[0]`` holds the image and ``figure.axes[1]`` the
        bars, heaviest concept at the top.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.analysis._plotting import plot_image_concepts
    >>> image = np.zeros((32, 48, 3), dtype=np.uint8)
    >>> image[:16] = [135, 206, 235]                    # sky above sand
    >>> image[16:] = [237, 201, 175]
    >>> fig = plot_image_concepts(image, [0.0, 0.4, 0.1], ["dog", "sky", "sand"])
    >>> [label.get_text() for label in fig.axes[1].get_yticklabels()]
    ['sky', 'sand']
    """
    plt = _pyplot()
    if isinstance(weights, pd.Series):  # one row of a DataFrame: its index names concepts
        weights = weights.to_frame().T
    elif getattr(weights, "ndim", 2) == 1 or isinstance(weights, (list, tuple)):
        weights = np.asarray(weights, dtype=float).reshape(1, -1)
    if weights.shape[0] != 1:
        raise ValueError(
            f"weights must hold one image's concepts; got {weights.shape[0]} rows. Select "
            "one row, e.g. W[[i]]."
        )
    W, names, _ = check_weights(weights, concept_names)
    top = top_concepts(W, names, n=n)
    rgb = np.asarray(load_rgb(image, 0))
    if axes is None:
        _, axes = plt.subplots(
            1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [1, 1]}, layout="constrained"
        )
    image_ax, bar_ax = axes
    image_ax.imshow(rgb)
    image_ax.set_axis_off()
    _bars(bar_ax, top["concept"], top["weight"])
    bar_ax.set_xlabel("concept weight")
    if top.empty:
        bar_ax.set_title("no concept")
    return image_ax.figure


def plot_class_concepts(
    W, y, concept_names=None, *, top=10, value="prevalence", ncols=3, figsize=None
):
    """Class concept histograms: each class's top concepts as horizontal bars.

    Parameters
    ----------
    W : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_concepts)
        Non-negative concept weights.
    y : array-like of shape (n_samples,)
        Class (or group) of each sample.
    concept_names : list of str, default=None
        One name per column; needed only when ``W`` carries no names.
    top : int, default=10
        Concepts shown per class.
    value : {"prevalence", "mean_weight"}, default="prevalence"
        What the bars show: the fraction of the class's samples with the concept,
        or its mean weight (see :func:`~skplice.class_concept_summary`).
    ncols : int, default=3
        Panels per row.
    figsize : (float, float) or None, default=None
        Figure size in inches; None sizes it by the number of panels.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per class (in sorted order, titled with the class), largest bar at
        the top; unused grid cells are hidden.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.analysis._plotting import plot_class_concepts
    >>> W = np.array([[0.4, 0.0, 0.2], [0.3, 0.1, 0.0], [0.0, 0.3, 0.2]])
    >>> fig = plot_class_concepts(W, ["cat", "cat", "dog"], ["whiskers", "leash", "sofa"])
    >>> [ax.get_title() for ax in fig.axes]
    ['cat', 'dog']
    """
    plt = _pyplot()
    if value not in _VALUE_LABELS:
        raise ValueError(f"value must be 'prevalence' or 'mean_weight'; got {value!r}.")
    check_int(ncols, "ncols", min_value=1)
    summary = class_concept_summary(W, y, concept_names, top=top, sort_by=value)
    classes = summary["class"].unique()
    ncols = min(ncols, len(classes))
    nrows = -(-len(classes) // ncols)
    if figsize is None:
        figsize = (4.5 * ncols, (0.3 * top + 1.2) * nrows)
    fig, grid = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, layout="constrained")
    for ax, label in zip(grid.ravel(), classes, strict=False):
        rows = summary[summary["class"] == label]
        _bars(ax, rows["concept"], rows[value])
        ax.set_title(str(label))
        ax.set_xlabel(_VALUE_LABELS[value])
        if value == "prevalence":
            ax.set_xlim(0, 1)
    for ax in grid.ravel()[len(classes) :]:
        fig.delaxes(ax)
    return fig


def plot_concept_histogram(W, concept, y=None, concept_names=None, *, bins=20, log=True, ax=None):
    """Histogram of one concept's weights across samples, optionally one per class.

    The SpLiCE paper's view of a spurious correlation: how much weight a concept
    (e.g. "swimwear") gets in the images of each class ("man", "woman"), sample by
    sample, rather than on average (:func:`plot_class_concepts` shows averages).

    Parameters
    ----------
    W : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_concepts)
        Non-negative concept weights, e.g. the output of
        :meth:`SpLiCETransformer.transform`.
    concept : str or sequence of str
        The concept's name. With several names, each sample's value is the mean of
        their weights, as the paper does for a group of related concepts (e.g.
        "trunks", "underwear", "bra", "swimwear").
    y : array-like of shape (n_samples,), default=None
        Class (or group) of each sample: one histogram per class, in sorted order,
        overlaid on the same bins. None draws one histogram of all samples.
    concept_names : list of str, default=None
        One name per column; needed only when ``W`` carries no names.
    bins : int or sequence of float, default=20
        Number of equal-width bins over the range of the values, or the bin edges
        (as :func:`numpy.histogram` takes them), shared by all classes.
    log : bool, default=True
        Count samples on a logarithmic axis: most samples of a dataset give any one
        concept a zero weight, and the log scale keeps the few that do not visible.
    ax : matplotlib Axes, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure. Samples with a zero weight are counted in the first bin. Each
        class's bars are one matplotlib container in ``ax.containers``, labelled
        ``"<class> (n=<samples>)"`` in the legend.

    See Also
    --------
    plot_class_concepts : Each class's top concepts by prevalence or mean weight.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice import plot_concept_histogram
    >>> W = np.array([[0.4, 0.0], [0.3, 0.1], [0.0, 0.2], [0.0, 0.0]])
    >>> fig = plot_concept_histogram(W, "swimwear", ["woman", "woman", "man", "man"],
    ...                              ["swimwear", "tie"], bins=4)
    >>> ax = fig.axes[0]
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['man (n=2)', 'woman (n=2)']
    >>> [[int(bar.get_height()) for bar in bars] for bars in ax.containers]
    [[2, 0, 0, 0], [0, 0, 1, 1]]
    """
    plt = _pyplot()
    W, names, _ = check_weights(W, concept_names)
    wanted = [concept] if isinstance(concept, str) else list(concept)
    if not wanted:
        raise ValueError("concept must name at least one concept.")
    columns = [_column_of(name, names) for name in wanted]
    values = np.asarray(W[:, columns].mean(axis=1)).ravel()
    if y is None:
        groups = [(None, values)]
    else:
        labels = check_labels(y, W.shape[0], "y")
        groups = [(label, values[labels == label]) for label in np.unique(labels)]
    edges = np.histogram_bin_edges(values, bins=bins)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
    for label, group in groups:
        legend = "_nolegend_" if label is None else f"{label} (n={len(group)})"
        ax.hist(group, bins=edges, alpha=0.6 if y is not None else 1.0, label=legend)
    if log:
        ax.set_yscale("log")
    shown = ", ".join(repr(str(name)) for name in wanted)
    ax.set_xlabel(f"weight of {shown}" if len(wanted) == 1 else f"mean weight of {shown}")
    ax.set_ylabel("samples")
    ax.set_title(" + ".join(str(name) for name in wanted))
    if y is not None:
        ax.legend()
    return ax.figure


def _column_of(name, names):
    """The column of concept ``name``, or a ValueError suggesting close names."""
    matches = np.flatnonzero(names == name)
    if matches.size:
        return int(matches[0])
    close = difflib.get_close_matches(str(name), [str(n) for n in names], n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"{name!r} is not one of the {len(names)} concepts of W.{hint}")


def plot_sparsity_curve(results, *, axes=None):
    """Plot cosine and accuracy against the mean number of concepts.

    Needs matplotlib (``pip install "skplice[plot]"``).

    Parameters
    ----------
    results : pandas.DataFrame
        The output of :func:`~skplice.sparsity_sweep`.
    axes : sequence of matplotlib Axes or None, default=None
        Where to draw: one Axes for the cosine and, when ``results`` has an
        ``accuracy`` column, one for the accuracy. None makes a new figure.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure holding the plots. The SpLiCE curve is drawn with markers,
        ordered by number of concepts; the dense embeddings' accuracy is a
        dashed horizontal line.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from skplice import plot_sparsity_curve
    >>> results = pd.DataFrame({
    ...     "representation": ["splice", "splice", "dense"], "l1": [0.1, 0.3, None],
    ...     "mean_l0": [40.0, 8.0, None], "mean_cosine": [0.9, 0.7, 1.0],
    ...     "accuracy": [0.8, 0.6, 0.85]})
    >>> figure = plot_sparsity_curve(results)
    >>> [ax.get_ylabel() for ax in figure.axes]
    ['Mean cosine(embedding, reconstruction)', 'Accuracy']
    """
    missing = {"representation", "mean_l0", "mean_cosine"} - set(results.columns)
    if missing:
        raise ValueError(
            f"results lacks the columns {sorted(missing)}; pass the output of sparsity_sweep."
        )
    plt = _pyplot()
    columns = ["mean_cosine", "accuracy"] if "accuracy" in results else ["mean_cosine"]
    if axes is None:
        _, axes = plt.subplots(1, len(columns), figsize=(5 * len(columns), 3.8), squeeze=False)
        axes = axes[0]
    elif len(axes) != len(columns):
        raise ValueError(f"axes must hold {len(columns)} Axes, one per plot of {columns}.")
    curve = results[results["representation"] == "splice"].sort_values("mean_l0")
    dense = results[results["representation"] == "dense"]
    for ax, column in zip(axes, columns, strict=True):
        ax.plot(curve["mean_l0"], curve[column], marker="o", label="SpLiCE")
        if column == "accuracy" and not dense.empty:
            ax.axhline(dense[column].iloc[0], linestyle="--", color="gray", label="dense")
        ax.set_xlabel(_SWEEP_LABELS["mean_l0"])
        ax.set_ylabel(_SWEEP_LABELS[column])
        ax.legend()
    figure = axes[0].figure
    figure.tight_layout()
    return figure


def _bars(ax, concepts, values):
    """Horizontal bars, the first concept at the top."""
    positions = np.arange(len(concepts))
    ax.barh(positions, np.asarray(values, dtype=float), color="tab:blue")
    ax.set_yticks(positions, labels=list(concepts))
    ax.invert_yaxis()


def _pyplot():
    return import_optional("matplotlib.pyplot")
