"""Integer arguments: one check (skplice.utils._validation.check_int), one wording everywhere."""

import re

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skplice import (
    SpLiCETransformer,
    class_concept_summary,
    format_top_concepts,
    load_vocabulary,
    probe_report,
    top_concepts,
    transform_batches,
)
from skplice.utils._validation import check_int

NAMES = ["sand", "dog", "desk"]
W = np.array([[0.3, 0.1, 0.0], [0.0, 0.2, 0.4], [0.1, 0.0, 0.2], [0.0, 0.3, 0.1]])
Y = np.array([0, 1, 0, 1])


def _plot_class_concepts(**kwargs):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from skplice import plot_class_concepts

    return plot_class_concepts(W, Y, NAMES, **kwargs)


def _transform_batches(**kwargs):
    X = np.random.default_rng(0).normal(size=(6, 3))
    splice = SpLiCETransformer(dictionary=np.eye(3) + 0.1).fit(X)
    return transform_batches(splice, X, **kwargs)


# (call with the argument, its name, smallest valid value, whether None is allowed)
ARGUMENTS = {
    "top_concepts(n)": (lambda v: top_concepts(W, NAMES, n=v), "n", 1, False),
    "format_top_concepts(decimals)": (
        lambda v: format_top_concepts(W, NAMES, decimals=v),
        "decimals",
        0,
        False,
    ),
    "class_concept_summary(top)": (
        lambda v: class_concept_summary(W, Y, NAMES, top=v),
        "top",
        1,
        True,
    ),
    "probe_report(top)": (
        lambda v: probe_report(LogisticRegression().fit(W, Y), NAMES, top=v),
        "top",
        1,
        False,
    ),
    "load_vocabulary(size)": (lambda v: load_vocabulary(["dog", "cat"], size=v), "size", 1, True),
    "transform_batches(batch_size)": (
        lambda v: _transform_batches(batch_size=v),
        "batch_size",
        1,
        True,
    ),
    "plot_class_concepts(ncols)": (lambda v: _plot_class_concepts(ncols=v), "ncols", 1, False),
}


@pytest.mark.parametrize(
    ("call", "name", "min_value", "allow_none"), ARGUMENTS.values(), ids=ARGUMENTS
)
def test_integer_arguments_are_checked_alike(call, name, min_value, allow_none):
    expected = f"{name} must be an int >= {min_value}{' or None' if allow_none else ''}; got "
    with pytest.raises(ValueError, match=re.escape(f"{expected}{min_value - 1}.")):
        call(min_value - 1)
    for wrong_type in [1.5, float(min_value + 1), True, "2", *([] if allow_none else [None])]:
        with pytest.raises(TypeError, match=re.escape(f"{expected}{wrong_type!r}.")):
            call(wrong_type)
    call(np.int64(min_value + 1))  # numpy integers are integers
    if allow_none:
        call(None)


def test_check_int_returns_a_python_int_and_passes_none_through_when_allowed():
    value = check_int(np.uint8(7), "n", min_value=7)
    assert value == 7 and type(value) is int
    assert check_int(None, "n", min_value=1, allow_none=True) is None
    with pytest.raises(TypeError, match=r"^n must be an int >= 1; got np.True_\.$"):
        check_int(np.bool_(True), "n", min_value=1)
