"""Comparing concept prevalence between two sets of samples: effect sizes and Fisher's test.

A concept is *present* in a sample when its weight is > 0; its prevalence in a set is the
fraction of samples where it is present. Two sets are compared per concept with the 2x2
table (present/absent x set A/set B) and Fisher's exact test, computed for all concepts at
once (a per-concept call to :func:`scipy.stats.fisher_exact` is too slow for 10,000
concepts compared over many time windows).
"""

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control, hypergeom

#: Tables whose probability is within this relative tolerance of the observed table's count
#: as "at most as likely" in the two-sided test (as R's fisher.test does).
_RELATIVE_TOLERANCE = 1e-7

ALTERNATIVES = ("two-sided", "greater", "less")


def check_alternative(alternative):
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}; got {alternative!r}.")


def summarize(W):
    """Per-concept prevalence (weight > 0), mean weight and present count of CSR ``W``."""
    present = np.asarray((W > 0).sum(axis=0)).ravel()
    mean = np.asarray(W.mean(axis=0)).ravel()
    return present / W.shape[0], mean, present


def contrast(W_a, W_b, *, alternative):
    """Compare each concept's prevalence in ``W_a`` with ``W_b`` (CSR, same width).

    Returns a dict of arrays: ``prevalence_a``, ``prevalence_b``, ``mean_weight_a``,
    ``mean_weight_b``, ``cohens_h``, ``log_odds_ratio``, ``p_value`` and ``tested``
    (False for concepts absent from every sample of both sets, or present in every
    one: only one table is then possible, so they carry no information and get a
    p-value of 1).
    """
    prevalence_a, mean_a, present_a = summarize(W_a)
    prevalence_b, mean_b, present_b = summarize(W_b)
    n_a, n_b = W_a.shape[0], W_b.shape[0]
    # Haldane-Anscombe correction: +0.5 per cell keeps the log odds ratio finite.
    log_odds_ratio = np.log(
        (present_a + 0.5) * (n_b - present_b + 0.5) / ((n_a - present_a + 0.5) * (present_b + 0.5))
    )
    return {
        "prevalence_a": prevalence_a,
        "prevalence_b": prevalence_b,
        "mean_weight_a": mean_a,
        "mean_weight_b": mean_b,
        "cohens_h": 2 * np.arcsin(np.sqrt(prevalence_a)) - 2 * np.arcsin(np.sqrt(prevalence_b)),
        "log_odds_ratio": log_odds_ratio,
        "p_value": fisher_exact_pvalues(present_a, present_a + present_b, n_a, n_b, alternative),
        "tested": (present_a + present_b > 0) & (present_a + present_b < n_a + n_b),
    }


def adjusted(p_value, tested):
    """Benjamini-Hochberg adjusted p-values over the tested concepts; 1 for the others.

    Leaving out untestable concepts keeps the false discovery rate: whether
    a concept is tested depends only on its total count, which Fisher's test conditions
    on, so the filter is independent of the p-values under the null hypothesis.
    """
    p_adjusted = np.ones_like(p_value, dtype=float)
    if tested.any():
        p_adjusted[tested] = false_discovery_control(p_value[tested], method="bh")
    return p_adjusted


def ranked(frame):
    """Rows by increasing p-value, then decreasing absolute effect size (Cohen's h)."""
    order = np.lexsort((-frame["cohens_h"].abs().to_numpy(), frame["p_value"].to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def comparison_frame(names, result, *, suffixes):
    """The per-concept comparison as a DataFrame, with columns named by ``suffixes``."""
    a, b = suffixes
    return pd.DataFrame(
        {
            "concept": names,
            f"prevalence_{a}": result["prevalence_a"],
            f"prevalence_{b}": result["prevalence_b"],
            "prevalence_diff": result["prevalence_a"] - result["prevalence_b"],
            "cohens_h": result["cohens_h"],
            "log_odds_ratio": result["log_odds_ratio"],
            f"mean_weight_{a}": result["mean_weight_a"],
            f"mean_weight_{b}": result["mean_weight_b"],
            "mean_weight_diff": result["mean_weight_a"] - result["mean_weight_b"],
            "p_value": result["p_value"],
            "p_adjusted": adjusted(result["p_value"], result["tested"]),
        }
    )


def fisher_exact_pvalues(x, total, n_a, n_b, alternative):
    """Fisher's exact test for many tables ``[[x, n_a - x], [total - x, n_b - total + x]]``.

    Vectorised over concepts; the same p-values as :func:`scipy.stats.fisher_exact`.
    ``alternative="greater"`` tests whether the concept is more prevalent in set A.
    Under the null, ``x`` is hypergeometric: ``total`` present among ``n_a + n_b``
    samples, ``n_a`` of them drawn into set A.
    """
    x = np.asarray(x, dtype=np.int64)
    total = np.asarray(total, dtype=np.int64)
    n = n_a + n_b
    if alternative == "greater":
        return np.clip(hypergeom.sf(x - 1, n, total, n_a), 0, 1)
    if alternative == "less":
        return np.clip(hypergeom.cdf(x, n, total, n_a), 0, 1)
    # Two-sided: the probability of all tables at most as likely as the observed one.
    # The distribution is unimodal, so those tables are the observed tail plus a tail on
    # the other side of the mode. Tails are computed only where needed: hypergeometric
    # tails are slow for large counts.
    mode = (total + 1) * (n_a + 1) // (n + 2)
    p_value = np.ones(x.shape)  # at the mode, every table is at most as likely
    below, above = x < mode, x > mode
    if below.any():
        p_value[below] = _two_sided_below_mode(x[below], total[below], mode[below], n_a, n_b)
    if above.any():
        p_value[above] = _two_sided_above_mode(x[above], total[above], mode[above], n_a, n_b)
    return np.clip(p_value, 0, 1)


def _two_sided_below_mode(x, total, mode, n_a, n_b):
    """Lower tail up to x, plus the upper tail from the first y >= mode at most as likely."""
    n = n_a + n_b
    unlikely = _at_most_as_likely_as(x, total, n, n_a)
    # The support ends at min(total, n_a); one past it has probability 0.
    start = _first_true(unlikely, mode, np.minimum(total, n_a) + 1)
    return hypergeom.cdf(x, n, total, n_a) + hypergeom.sf(start - 1, n, total, n_a)


def _two_sided_above_mode(x, total, mode, n_a, n_b):
    """Upper tail from x, plus the lower tail up to the last y <= mode at most as likely."""
    n = n_a + n_b
    unlikely = _at_most_as_likely_as(x, total, n, n_a)
    # The support starts at max(0, total - n_b); one before it has probability 0.
    end = _last_true(unlikely, np.maximum(0, total - n_b) - 1, mode)
    return hypergeom.sf(x - 1, n, total, n_a) + hypergeom.cdf(end, n, total, n_a)


def _at_most_as_likely_as(x, total, n, n_a):
    threshold = hypergeom.logpmf(x, n, total, n_a) + np.log1p(_RELATIVE_TOLERANCE)
    return lambda y: hypergeom.logpmf(y, n, total, n_a) <= threshold


def _first_true(predicate, lo, hi):
    """Smallest y in [lo, hi] with predicate(y), for a predicate that is False then True
    on the range and True at ``hi``."""
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        true = predicate(mid)
        lo, hi = np.where(true, lo, mid + 1), np.where(true, mid, hi)
    return hi


def _last_true(predicate, lo, hi):
    """Largest y in [lo, hi] with predicate(y), for a predicate that is True then False
    on the range and True at ``lo``."""
    while np.any(lo < hi):
        mid = (lo + hi + 1) // 2
        true = predicate(mid)
        lo, hi = np.where(true, mid, lo), np.where(true, hi, mid - 1)
    return lo
