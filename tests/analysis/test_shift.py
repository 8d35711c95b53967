"""Concept shift between a reference and new data, and across time windows."""

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from skplice import concept_differences, concept_shift, concept_shift_over_time


def named_csr(W, names):
    matrix = sp.csr_matrix(W)
    matrix.concept_names = np.asarray(names, dtype=object)
    return matrix


def random_weights(rng, n, prevalences):
    present = rng.uniform(size=(n, len(prevalences))) < np.asarray(prevalences)
    return present * rng.uniform(0.05, 0.5, size=present.shape)


NAMES = ["snow", *(f"concept{i}" for i in range(1, 100))]


@pytest.fixture(scope="module")
def drift():
    """Reference and new data with 100 concepts at 20%; "snow" goes from 5% to 40%."""
    rng = np.random.default_rng(0)
    reference = random_weights(rng, 400, [0.05] + [0.2] * 99)
    new = random_weights(rng, 300, [0.4] + [0.2] * 99)
    return reference, new


def test_shift_finds_the_planted_concept_and_nothing_else(drift):
    reference, new = drift
    table = concept_shift(reference, new, NAMES)
    assert table.loc[0, "concept"] == "snow"
    assert table.loc[0, "prevalence_diff"] > 0.25 and table.loc[0, "cohens_h"] > 0.5
    assert table.loc[0, "p_adjusted"] < 1e-10
    assert (table.loc[1:, "p_adjusted"] > 0.05).all()
    assert table.loc[0, "prevalence_new"] == pytest.approx((new[:, 0] > 0).mean())
    assert table.loc[0, "prevalence_reference"] == pytest.approx((reference[:, 0] > 0).mean())


def test_shift_is_concept_differences_on_the_stacked_data(drift):
    reference, new = drift
    stacked = np.vstack([reference, new])
    source = np.repeat(["reference", "new"], [len(reference), len(new)])
    expected = concept_differences(stacked, source, "new", NAMES)
    table = concept_shift(reference, new, NAMES)
    np.testing.assert_allclose(table["p_value"], expected["p_value"])
    np.testing.assert_allclose(table["prevalence_new"], expected["prevalence_target"])
    assert table["concept"].tolist() == expected["concept"].tolist()


def test_shift_takes_names_from_either_matrix(drift):
    reference, new = drift
    expected = concept_shift(reference, new, NAMES)
    for pair in [
        (named_csr(reference, NAMES), new),
        (reference, pd.DataFrame(new, columns=NAMES)),
        (named_csr(reference, NAMES), named_csr(new, NAMES)),
    ]:
        pd.testing.assert_frame_equal(concept_shift(*pair), expected)


def test_shift_refuses_different_concepts(drift):
    reference, new = drift
    with pytest.raises(ValueError, match="between W_reference and W_new"):
        concept_shift(named_csr(reference, NAMES), named_csr(new, NAMES[::-1]))
    with pytest.raises(ValueError, match="99 concept names but X has 100"):
        concept_shift(reference, new[:, :99], NAMES[:99])
    with pytest.raises(ValueError, match="needs concept names"):
        concept_shift(reference, new)


@pytest.fixture(scope="module")
def windows():
    """Six weekly batches: "snow" grows from 2% to 52%, the other concepts stay at 20%."""
    rng = np.random.default_rng(1)
    batches = [random_weights(rng, 150, [0.02 + 0.1 * week] + [0.2] * 99) for week in range(6)]
    week = np.repeat(np.arange(6), 150)
    return np.vstack(batches), week


def test_over_time_detects_a_growing_concept(windows):
    W, week = windows
    table = concept_shift_over_time(W, week, NAMES)
    assert len(table) == 6 * 100
    assert table["window"].unique().tolist() == list(range(6))
    snow = table[table["concept"] == "snow"].set_index("window")
    assert snow["prevalence"].is_monotonic_increasing
    assert snow["prevalence_diff"].iloc[1:].is_monotonic_increasing
    assert np.isnan(snow.loc[0, "p_value"]) and np.isnan(snow.loc[0, "p_adjusted"])
    assert (snow.loc[3:, "p_adjusted"] < 1e-6).all()
    others = table[(table["concept"] != "snow") & (table["window"] > 0)]
    assert (others["p_adjusted"] > 0.05).all()
    assert (table["n_samples"] == 150).all()


def test_over_time_adjusts_over_every_window_and_concept(windows):
    W, week = windows
    table = concept_shift_over_time(W, week, NAMES)
    from scipy.stats import false_discovery_control

    tested = table[table["window"] > 0]
    np.testing.assert_allclose(
        tested["p_adjusted"], false_discovery_control(tested["p_value"], method="bh")
    )


def test_over_time_with_a_reference_window(windows):
    W, week = windows
    table = concept_shift_over_time(W, week, NAMES, reference=5)
    snow = table[table["concept"] == "snow"].set_index("window")
    assert np.isnan(snow.loc[5, "p_value"])
    assert snow.loc[0, "prevalence_diff"] < -0.4 and snow.loc[0, "p_adjusted"] < 1e-10


def test_over_time_groups_timestamps_by_frequency(windows):
    W, week = windows
    start = pd.Timestamp("2024-01-01")  # a Monday
    rng = np.random.default_rng(2)
    times = start + pd.to_timedelta(week * 7 + rng.uniform(0, 7, size=len(week)), unit="D")
    table = concept_shift_over_time(W, times, NAMES, freq="W", reference="2024-01-10")
    periods = table["window"].unique()
    assert len(periods) == 6 and str(periods[0]) == "2024-01-01/2024-01-07"
    by_week = concept_shift_over_time(W, week, NAMES, reference=1)
    np.testing.assert_allclose(table["prevalence"], by_week["prevalence"])
    np.testing.assert_allclose(table["p_value"], by_week["p_value"])


def test_over_time_one_sided(windows):
    W, week = windows
    greater = concept_shift_over_time(W, week, NAMES, alternative="greater")
    less = concept_shift_over_time(W, week, NAMES, alternative="less")
    snow = greater["concept"] == "snow"
    assert (greater[snow & (greater["window"] >= 3)]["p_value"] < 1e-6).all()
    assert (less[snow & (less["window"] >= 1)]["p_value"] > 0.5).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"windows": np.zeros(5)}, "one label per sample"),
        ({"windows": np.r_[np.zeros(899), np.nan]}, "missing values"),
        ({"reference": 9}, "reference=9 is not one of the windows: 0, 1, 2, 3, 4, 5"),
        ({"alternative": "up"}, "alternative must be one of"),
        ({"concept_names": None}, "needs concept names"),
    ],
)
def test_over_time_bad_input(windows, kwargs, message):
    W, week = windows
    arguments = {"windows": week, "concept_names": NAMES, **kwargs}
    with pytest.raises(ValueError, match=message):
        concept_shift_over_time(W, **arguments)


def test_inputs_are_never_modified(drift, windows):
    reference, new = drift
    W, week = windows
    copies = [a.copy() for a in (reference, new, W, week)]
    concept_shift(reference, new, NAMES)
    concept_shift_over_time(W, week, NAMES)
    for array, copy in zip((reference, new, W, week), copies, strict=True):
        np.testing.assert_array_equal(array, copy)


def test_shift_compares_only_matrices_whose_names_agree(drift):
    """Whichever way names come (DataFrame columns, the concept_names attribute, the
    argument), a difference anywhere is an error, never a silent comparison."""
    reference, new = drift
    other = [*NAMES[:-1], "something else"]
    carriers = {
        "csr": named_csr,
        "csr_array": lambda W, names: _named(sp.csr_array(W), names),
        "DataFrame": lambda W, names: pd.DataFrame(W, columns=names),
    }
    for make_first, make_second in itertools.product(carriers.values(), repeat=2):
        with pytest.raises(ValueError, match="Concept names differ"):
            concept_shift(make_first(reference, NAMES), make_second(new, other))
        with pytest.raises(ValueError, match="Concept names differ"):
            concept_shift(make_first(reference, NAMES), make_second(new, NAMES), other)
        with pytest.raises(ValueError, match="Concept names differ"):
            concept_shift(reference, make_second(new, NAMES), other)
        same = concept_shift(make_first(reference, NAMES), make_second(new, NAMES))
        pd.testing.assert_frame_equal(same, concept_shift(reference, new, NAMES))


def _named(matrix, names):
    matrix.concept_names = np.asarray(names, dtype=object)
    return matrix
