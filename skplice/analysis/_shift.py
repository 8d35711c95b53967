"""Distribution shift in concept space: which concepts became more or less common.

A dataset drifts when what its images show changes; SpLiCE makes that readable as
concept prevalence (the fraction of samples whose weight for a concept is > 0)
changing between a reference set and new data, or across time windows.
"""

import numpy as np
import pandas as pd

from skplice.analysis import _stats
from skplice.decomposition._weights import (
    carried_names,
    check_labels,
    check_same_names,
    check_weights,
    some_values,
)


def concept_shift(W_reference, W_new, concept_names=None, *, alternative="two-sided"):
    """Compare concept prevalence in new data with a reference set.

    Each concept's presence (weight > 0) is compared between the two sets with
    Fisher's exact test, and the p-values are adjusted for the number of concepts
    tested (Benjamini-Hochberg).

    Parameters
    ----------
    W_reference : {array-like, sparse matrix, DataFrame} of shape (n_reference, n_concepts)
        Concept weights of the reference data (e.g. the training set).
    W_new : {array-like, sparse matrix, DataFrame} of shape (n_new, n_concepts)
        Concept weights of the new data, with the same concepts.
    concept_names : list of str, default=None
        One name per column; needed only when neither matrix carries names.
    alternative : {"two-sided", "greater", "less"}, default="two-sided"
        "greater" looks only for concepts more prevalent in the new data.

    Returns
    -------
    DataFrame
        One row per concept, most significant first (ties: larger ``|cohens_h|``
        first). Columns: ``concept``, ``prevalence_new``, ``prevalence_reference``,
        ``prevalence_diff`` (new - reference), ``cohens_h``, ``log_odds_ratio``,
        ``mean_weight_new``, ``mean_weight_reference``, ``mean_weight_diff``,
        ``p_value`` and ``p_adjusted``, as in
        :func:`~skplice.concept_differences`.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.analysis._shift import concept_shift
    >>> names = ["snow", "grass", "road"]
    >>> W_summer = np.zeros((40, 3))
    >>> W_summer[:, 1] = 0.5             # grass in every summer image
    >>> W_summer[::2, 2] = 0.3           # road in half of them
    >>> W_winter = np.zeros((40, 3))
    >>> W_winter[:30, 0] = 0.6           # snow in three winter images out of four
    >>> W_winter[::2, 2] = 0.3
    >>> shift = concept_shift(W_summer, W_winter, names)
    >>> shift[["concept", "prevalence_reference", "prevalence_new", "p_adjusted"]]
      concept  prevalence_reference  prevalence_new    p_adjusted
    0   grass                   1.0            0.00  ...e-23
    1    snow                   0.0            0.75  ...e-13
    2    road                   0.5            0.50  1.000000e+00
    """
    _stats.check_alternative(alternative)
    # Either matrix may carry the names; when both do, they must agree.
    reference_names, new_names = carried_names(W_reference), carried_names(W_new)
    if concept_names is None:
        if reference_names is not None and new_names is not None:
            check_same_names(reference_names, new_names, "W_reference", "W_new")
        concept_names = reference_names if reference_names is not None else new_names
    W_reference, names, _ = check_weights(W_reference, concept_names)
    W_new, _, _ = check_weights(W_new, concept_names)
    result = _stats.contrast(W_new, W_reference, alternative=alternative)
    frame = _stats.comparison_frame(names, result, suffixes=("new", "reference"))
    return _stats.ranked(frame)


def concept_shift_over_time(
    W, windows, concept_names=None, *, freq=None, reference=None, alternative="two-sided"
):
    """Concept prevalence per time window, each window compared with a reference window.

    Parameters
    ----------
    W : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_concepts)
        Concept weights of all samples.
    windows : array-like of shape (n_samples,)
        The window of each sample: batch ids, dates, or timestamps (with ``freq``).
        Windows are ordered by sorting these labels.
    concept_names : list of str, default=None
        One name per column; needed only when ``W`` carries no names.
    freq : str or None, default=None
        A pandas period frequency ("D", "W", "M", "h", ...): ``windows`` are then
        timestamps, grouped into periods of that length.
    reference : object, default=None
        The window the others are compared with; None means the first window. With
        ``freq``, any time inside the window names it (e.g. ``"2024-01-10"`` for the
        week of January 8).
    alternative : {"two-sided", "greater", "less"}, default="two-sided"
        "greater" looks only for concepts more prevalent than in the reference.

    Returns
    -------
    DataFrame
        A long table with one row per window and concept, windows in order and the
        concepts in column order within each: ``window``, ``concept``,
        ``n_samples`` (of the window), ``prevalence``, ``mean_weight``, and, compared
        with the reference window, ``prevalence_diff``, ``cohens_h``, ``p_value`` and
        ``p_adjusted`` (Benjamini-Hochberg over every window and concept tested; NaN
        in the reference window's rows). Pivot it for a window x concept view:
        ``table.pivot(index="window", columns="concept", values="prevalence")``.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.analysis._shift import concept_shift_over_time
    >>> snow = np.r_[np.zeros(30), np.arange(30) < 6, np.arange(30) < 24]
    >>> W = np.c_[0.3 * snow, np.full(90, 0.5)]     # snow grows; road is everywhere
    >>> days = np.repeat(["2024-01-01", "2024-01-02", "2024-01-03"], 30)
    >>> table = concept_shift_over_time(W, days, ["snow", "road"])
    >>> table[table.concept == "snow"][["window", "prevalence", "p_adjusted"]].round(4)
           window  prevalence  p_adjusted
    0  2024-01-01         0.0         NaN
    2  2024-01-02         0.2      0.0237
    4  2024-01-03         0.8      0.0000
    """
    _stats.check_alternative(alternative)
    W, names, _ = check_weights(W, concept_names)
    windows = check_labels(windows, W.shape[0], "windows")
    if freq is not None:
        windows = pd.DatetimeIndex(pd.to_datetime(windows)).to_period(freq)
    codes, labels = pd.factorize(windows, sort=True)
    labels = pd.Index(labels)
    reference_code = 0 if reference is None else _window_position(labels, reference)
    W_reference = W[codes == reference_code]
    frames, tested = [], []
    for code, label in enumerate(labels):
        W_window = W[codes == code]
        prevalence, mean_weight, _ = _stats.summarize(W_window)
        frame = pd.DataFrame(
            {
                "window": [label] * W.shape[1],
                "concept": names,
                "n_samples": W_window.shape[0],
                "prevalence": prevalence,
                "mean_weight": mean_weight,
                "prevalence_diff": np.nan,
                "cohens_h": np.nan,
                "p_value": np.nan,
            }
        )
        if code != reference_code:
            result = _stats.contrast(W_window, W_reference, alternative=alternative)
            frame["prevalence_diff"] = result["prevalence_a"] - result["prevalence_b"]
            frame["cohens_h"] = result["cohens_h"]
            frame["p_value"] = result["p_value"]
            tested.append(result["tested"])
        else:
            tested.append(np.zeros(W.shape[1], dtype=bool))
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    tested = np.concatenate(tested)
    p_adjusted = _stats.adjusted(table["p_value"].fillna(1).to_numpy(), tested)
    table["p_adjusted"] = np.where(table["p_value"].isna(), np.nan, p_adjusted)
    return table


def _window_position(labels, reference):
    if isinstance(labels, pd.PeriodIndex) and not isinstance(reference, pd.Period):
        # Any time inside a period names it: "2024-01-10" is the week of Jan 8-14.
        reference = pd.Period(reference, freq=labels.freq)
    try:
        return int(labels.get_loc(reference))
    except KeyError as exc:
        raise ValueError(
            f"reference={reference!r} is not one of the windows: {some_values(labels)}."
        ) from exc
