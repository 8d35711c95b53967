"""Explanations, class summaries, probe reports and group differences on planted concepts."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import false_discovery_control, fisher_exact
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skplice import (
    ConceptEditor,
    class_concept_summary,
    concept_differences,
    format_top_concepts,
    probe_report,
    top_concepts,
)
from skplice.analysis._stats import fisher_exact_pvalues

NAMES = ["sand", "dog", "desk", "beach", "laptop"]
W_SMALL = np.array(
    [
        [0.1, 0.0, 0.0, 0.3, 0.0],
        [0.0, 0.2, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [0.2, 0.2, 0.2, 0.0, 0.05],
    ]
)


def named_csr(W, names=NAMES):
    matrix = sp.csr_matrix(W)
    matrix.concept_names = np.asarray(names, dtype=object)
    return matrix


@pytest.fixture(scope="module")
def planted_groups():
    """200 concepts drawn at random, plus "swimwear" (column 0) planted in group "a".

    "swimwear" is present in 80% of group "a" and 10% of group "b"; every other
    concept has the same prevalence (15%) in both groups.
    """
    rng = np.random.default_rng(0)
    n, n_concepts = 300, 200
    groups = np.repeat(["a", "b"], n // 2)
    present = rng.uniform(size=(n, n_concepts)) < 0.15
    present[:, 0] = rng.uniform(size=n) < np.where(groups == "a", 0.8, 0.1)
    W = present * rng.uniform(0.05, 0.5, size=(n, n_concepts))
    names = ["swimwear", *(f"concept{i}" for i in range(1, n_concepts))]
    return W, groups, names


# --------------------------------------------------------------------- top concepts


def test_top_concepts_ranks_by_weight_and_skips_zeros():
    table = top_concepts(W_SMALL, NAMES, n=2)
    assert list(table.columns) == ["sample", "rank", "concept", "weight"]
    assert table.values.tolist() == [
        [0, 1, "beach", 0.3],
        [0, 2, "sand", 0.1],
        [1, 1, "dog", 0.2],
        [3, 1, "sand", 0.2],  # equal weights keep column order
        [3, 2, "dog", 0.2],
    ]


def test_top_concepts_takes_names_and_sample_labels_from_the_input():
    frame = pd.DataFrame(W_SMALL, columns=NAMES, index=["a", "b", "c", "d"])
    by_frame = top_concepts(frame, n=1)
    assert by_frame["sample"].tolist() == ["a", "b", "d"]
    assert by_frame["concept"].tolist() == ["beach", "dog", "sand"]
    by_attribute = top_concepts(named_csr(W_SMALL), n=1)
    assert by_attribute["concept"].tolist() == ["beach", "dog", "sand"]


def test_top_concepts_matches_a_sort_of_each_row():
    rng = np.random.default_rng(1)
    W = rng.uniform(size=(30, 50)) * (rng.uniform(size=(30, 50)) < 0.3)
    names = [f"c{i}" for i in range(50)]
    table = top_concepts(sp.csr_matrix(W), names, n=4)
    for i, row in enumerate(W):
        expected = np.argsort(-row, kind="stable")[: min(4, np.count_nonzero(row))]
        rows = table[table["sample"] == i]
        assert rows["concept"].tolist() == [names[j] for j in expected]
        np.testing.assert_array_equal(rows["weight"], row[expected])


def test_format_top_concepts():
    lines = format_top_concepts(named_csr(W_SMALL), n=2)
    assert lines == ["0.30 beach, 0.10 sand", "0.20 dog", "", "0.20 sand, 0.20 dog"]
    assert format_top_concepts(W_SMALL, NAMES, n=1, decimals=3)[0] == "0.300 beach"


# ------------------------------------------------------------------ class summaries


def test_class_summary_matches_a_direct_computation():
    rng = np.random.default_rng(2)
    W = rng.uniform(size=(40, 6)) * (rng.uniform(size=(40, 6)) < 0.5)
    y = rng.choice(["cat", "dog", "bird"], size=40)
    names = [f"c{i}" for i in range(6)]
    table = class_concept_summary(W, y, names)
    assert table["class"].unique().tolist() == ["bird", "cat", "dog"]
    for label in ("bird", "cat", "dog"):
        rows = table[table["class"] == label].set_index("concept").loc[names]
        in_class = W[y == label]
        np.testing.assert_allclose(rows["mean_weight"], in_class.mean(axis=0))
        np.testing.assert_allclose(rows["prevalence"], (in_class > 0).mean(axis=0))
        assert (rows["n_samples"] == len(in_class)).all()
        ranked = table[table["class"] == label]
        assert ranked["rank"].tolist() == list(range(1, 7))
        assert ranked["mean_weight"].is_monotonic_decreasing


def test_class_summary_top_and_sort_by(planted_groups):
    W, groups, names = planted_groups
    table = class_concept_summary(W, groups, names, top=3, sort_by="prevalence")
    assert table.groupby("class").size().tolist() == [3, 3]
    top_a = table[table["class"] == "a"].iloc[0]
    assert top_a["concept"] == "swimwear" and top_a["rank"] == 1
    assert table[table["class"] == "a"]["prevalence"].is_monotonic_decreasing
    assert "swimwear" not in table[table["class"] == "b"]["concept"].tolist()


def test_class_summary_top_leaves_out_absent_concepts():
    table = class_concept_summary(W_SMALL, ["x", "x", "y", "y"], NAMES, top=5)
    assert table[table["class"] == "x"]["concept"].tolist() == ["beach", "dog", "sand"]


# --------------------------------------------------------------------- probe report


@pytest.fixture(scope="module")
def probe_data():
    """Concept weights whose class is given by which of three concepts is present."""
    rng = np.random.default_rng(3)
    names = ["beach", "desk", "forest", *(f"noise{i}" for i in range(7))]
    y = rng.integers(0, 3, size=300)
    W = rng.uniform(0, 0.3, size=(300, 10)) * (rng.uniform(size=(300, 10)) < 0.3)
    W[np.arange(300), y] = rng.uniform(0.5, 1, size=300)
    labels = np.array(["sea", "office", "woods"])[y]
    return W, labels, names


def test_probe_report_names_the_planted_concept_of_each_class(probe_data):
    W, labels, names = probe_data
    probe = make_pipeline(ConceptEditor(concepts=names), LogisticRegression())
    report = probe_report(probe.fit(W, labels), top=3)
    assert list(report.columns) == ["class", "direction", "rank", "concept", "coefficient"]
    first = report[(report["direction"] == "positive") & (report["rank"] == 1)]
    assert dict(zip(first["class"], first["concept"], strict=True)) == {
        "office": "desk",
        "sea": "beach",
        "woods": "forest",
    }
    sea = report[report["class"] == "sea"]
    assert (sea[sea["direction"] == "positive"]["coefficient"] > 0).all()
    assert sea[sea["direction"] == "negative"]["concept"].iloc[:2].tolist() in (
        ["desk", "forest"],
        ["forest", "desk"],
    )
    assert (report.groupby(["class", "direction"]).size() <= 3).all()


def test_probe_report_binary_is_reported_for_the_second_class(probe_data):
    W, labels, names = probe_data
    binary = labels == "sea"
    probe = LogisticRegression().fit(pd.DataFrame(W, columns=names), binary)
    report = probe_report(probe)  # names from feature_names_in_
    assert set(report["class"]) == {True}
    positive = report[report["direction"] == "positive"]
    assert positive["concept"].iloc[0] == "beach"


def test_probe_report_after_removing_the_concept_drops_it(probe_data):
    W, labels, names = probe_data
    probe = make_pipeline(
        ConceptEditor(remove=["beach"], concepts=names), LogisticRegression()
    ).fit(W, labels)
    report = probe_report(probe)
    assert "beach" not in report["concept"].tolist()


def test_probe_report_regressor_and_explicit_names(probe_data):
    W, _, names = probe_data
    target = 3 * W[:, 2] - W[:, 0]
    report = probe_report(LinearRegression().fit(W, target), names, top=1)
    assert report.values[:, [0, 1, 3]].tolist() == [
        [0, "positive", "forest"],
        [0, "negative", "beach"],
    ]


def test_probe_report_errors(probe_data):
    W, labels, names = probe_data
    with pytest.raises(NotFittedError):
        probe_report(LogisticRegression(), names)
    with pytest.raises(TypeError, match="StandardScaler has no coef_"):
        probe_report(StandardScaler().fit(W), names)
    with pytest.raises(ValueError, match="9 concept names but X has 10 columns"):
        probe_report(LogisticRegression().fit(W, labels), names[:9])
    with pytest.raises(ValueError, match="probe_report needs concept names"):
        probe_report(LogisticRegression().fit(W, labels))
    with pytest.raises(ValueError, match="top must be an int >= 1"):
        probe_report(LogisticRegression().fit(W, labels), names, top=0)


# ------------------------------------------------------------ group differences


def test_planted_concept_ranks_first_and_nothing_else_is_significant(planted_groups):
    W, groups, names = planted_groups
    table = concept_differences(W, groups, "a", names)
    assert table.loc[0, "concept"] == "swimwear"
    assert table.loc[0, "p_value"] < 1e-20 and table.loc[0, "p_adjusted"] < 1e-18
    assert table.loc[0, "cohens_h"] > 1 and table.loc[0, "log_odds_ratio"] > 2
    assert (table.loc[1:, "p_adjusted"] > 0.05).all()
    # The other way round, the effect sizes change sign.
    reverse = concept_differences(W, groups, "b", names)
    assert reverse.loc[0, "concept"] == "swimwear" and reverse.loc[0, "cohens_h"] < -1


def test_group_differences_match_scipy_per_concept(planted_groups):
    W, groups, names = planted_groups
    table = concept_differences(W, groups, "a", names).set_index("concept").loc[names]
    a, b = W[groups == "a"] > 0, W[groups == "b"] > 0
    expected_p = [
        fisher_exact([[x, len(a) - x], [z, len(b) - z]]).pvalue
        for x, z in zip(a.sum(axis=0), b.sum(axis=0), strict=True)
    ]
    np.testing.assert_allclose(table["p_value"], expected_p, rtol=1e-9)
    np.testing.assert_allclose(
        table["p_adjusted"], false_discovery_control(expected_p, method="bh"), rtol=1e-9
    )
    np.testing.assert_allclose(table["prevalence_target"], a.mean(axis=0))
    np.testing.assert_allclose(table["prevalence_rest"], b.mean(axis=0))
    np.testing.assert_allclose(table["mean_weight_target"], W[groups == "a"].mean(axis=0))
    p_a, p_b = a.mean(axis=0), b.mean(axis=0)
    np.testing.assert_allclose(
        table["cohens_h"], 2 * np.arcsin(np.sqrt(p_a)) - 2 * np.arcsin(np.sqrt(p_b))
    )


def test_one_sided_alternatives(planted_groups):
    W, groups, names = planted_groups
    greater = concept_differences(W, groups, "b", names, alternative="greater")
    assert greater.set_index("concept").loc["swimwear", "p_value"] > 0.99
    less = concept_differences(W, groups, "b", names, alternative="less")
    assert less.loc[0, "concept"] == "swimwear" and less.loc[0, "p_value"] < 1e-20


def test_more_than_two_groups_compare_target_with_the_rest(planted_groups):
    W, groups, names = planted_groups
    three = np.where(np.arange(len(groups)) % 2 & (groups == "b"), "c", groups)
    table = concept_differences(W, three, "a", names)
    assert table.loc[0, "concept"] == "swimwear"
    assert table.loc[0, "prevalence_rest"] == pytest.approx((W[groups == "b", 0] > 0).mean())


def test_untestable_concepts_get_p_value_one_and_stay_out_of_the_correction():
    W = np.zeros((20, 3))
    W[:10, 0] = 1.0  # only in the target group
    W[:, 1] = 1.0  # everywhere: only one table is possible
    table = concept_differences(W, np.repeat([1, 0], 10), 1, ["x", "y", "z"])
    table = table.set_index("concept")
    assert table.loc["y", "p_value"] == 1 and table.loc["z", "p_value"] == 1
    # Only "x" is tested, so its p-value needs no adjustment.
    assert table.loc["x", "p_adjusted"] == table.loc["x", "p_value"]


def test_fisher_pvalues_match_scipy_on_many_tables():
    rng = np.random.default_rng(4)
    for _ in range(100):
        n_a, n_b = (int(v) for v in rng.integers(1, 40, size=2))
        x, z = rng.integers(0, n_a + 1, size=15), rng.integers(0, n_b + 1, size=15)
        z[:5] = x[:5] * n_b // n_a  # tables near the null, where ties matter
        for alternative in ("two-sided", "greater", "less"):
            ours = fisher_exact_pvalues(x, x + z, n_a, n_b, alternative)
            expected = [
                fisher_exact([[xi, n_a - xi], [zi, n_b - zi]], alternative=alternative).pvalue
                for xi, zi in zip(x, z, strict=True)
            ]
            np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-300)


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: top_concepts(W_SMALL), "needs concept names"),
        (lambda: top_concepts(-W_SMALL, NAMES), "negative entries"),
        (lambda: top_concepts(W_SMALL, NAMES[:4]), "4 concept names but X has 5"),
        (lambda: top_concepts(W_SMALL, NAMES, n=0), "n must be an int >= 1"),
        (lambda: top_concepts(np.zeros((0, 5)), NAMES), "0 sample"),
        (lambda: top_concepts(np.full((2, 5), np.nan), NAMES), "NaN"),
        (lambda: top_concepts(named_csr(W_SMALL), NAMES[::-1]), "differ"),
        (lambda: format_top_concepts(W_SMALL, NAMES, decimals=-1), "decimals"),
        (lambda: class_concept_summary(W_SMALL, [0, 1], NAMES), "one label per sample"),
        (lambda: class_concept_summary(W_SMALL, [0, 1, None, 1], NAMES), "missing values"),
        (lambda: class_concept_summary(W_SMALL, [0] * 4, NAMES, sort_by="x"), "sort_by"),
        (lambda: class_concept_summary(W_SMALL, [0] * 4, NAMES, top=0), "top must be"),
        (lambda: concept_differences(W_SMALL, [0, 0, 1, 1], 2, NAMES), "not one of the groups"),
        (lambda: concept_differences(W_SMALL, [0] * 4, 0, NAMES), "nothing to compare"),
        (
            lambda: concept_differences(W_SMALL, [0, 0, 1, 1], 0, NAMES, alternative="more"),
            "alternative must be one of",
        ),
    ],
)
def test_bad_input_raises_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_inputs_are_never_modified(planted_groups):
    W, groups, names = planted_groups
    matrix = named_csr(W, names)
    frame = pd.DataFrame(W, columns=names)
    copies = (W.copy(), matrix.copy(), frame.copy(), groups.copy())
    top_concepts(matrix)
    format_top_concepts(frame)
    class_concept_summary(W, groups, names, top=3)
    concept_differences(frame, groups, "a")
    np.testing.assert_array_equal(W, copies[0])
    np.testing.assert_array_equal(matrix.toarray(), copies[1].toarray())
    pd.testing.assert_frame_equal(frame, copies[2])
    np.testing.assert_array_equal(groups, copies[3])
