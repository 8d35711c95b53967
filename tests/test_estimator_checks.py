"""scikit-learn conformance: the generic estimator checks plus those check_estimator skips."""

import pytest
from sklearn.utils import estimator_checks as checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from skplice import ConceptEditor, SpLiCETransformer

# The generic checks feed 1-10 features, so the transformers are configured with a
# dictionary that adapts to the input width (each feature is its own concept).
# They also feed plain arrays, which carry no concept names: ConceptEditor is checked
# with no edits, the one configuration that needs no names (it is then the identity).
ESTIMATORS = [
    SpLiCETransformer(dictionary="identity"),
    SpLiCETransformer(dictionary="identity", sparse_output=False),
    SpLiCETransformer(dictionary="identity", output="reconstruction"),
    ConceptEditor(),
]

# Every entry is a deliberate behaviour that a generic check does not expect.
EXPECTED_FAILURES = {
    "SpLiCETransformer": {
        "check_estimators_dtypes": (
            "the check's integer data contains an all-zero row, which SpLiCETransformer "
            "rejects by design (a zero embedding has no direction to decompose); dtypes "
            "are covered by test_splice.py::test_float32_in_float32_out_and_dense_output"
        ),
        "check_transformer_n_iter": (
            "max_iter bounds the solver in transform; fit runs no iterative solver, so "
            "there is no n_iter_ to report after fit"
        ),
    },
}


def expected_failures(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# Checks that check_estimator does not run by itself.
EXTRA_CHECKS = [
    checks.check_param_validation,
    checks.check_estimators_partial_fit_n_features,
    checks.check_dataframe_column_names_consistency,
    checks.check_get_feature_names_out_error,
    checks.check_transformer_get_feature_names_out,
    checks.check_transformer_get_feature_names_out_pandas,
    checks.check_set_output_transform,
]
DENSE_OUTPUT_CHECKS = [
    checks.check_set_output_transform_pandas,
    checks.check_global_output_transform_pandas,
    checks.check_set_output_transform_polars,
    checks.check_global_set_output_transform_polars,
]


def ids(value):
    return getattr(value, "__name__", None) or repr(value)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=ids)
@pytest.mark.parametrize("check", EXTRA_CHECKS, ids=ids)
def test_checks_not_run_by_check_estimator(estimator, check):
    check(type(estimator).__name__, estimator)


@pytest.mark.parametrize("check", DENSE_OUTPUT_CHECKS, ids=ids)
def test_dataframe_output_checks_with_dense_output(check):
    # Sparse output refuses DataFrame containers with a clear error (test_splice.py).
    for estimator in (
        SpLiCETransformer(dictionary="identity", sparse_output=False),
        SpLiCETransformer(dictionary="identity", output="reconstruction"),
        ConceptEditor(),
    ):
        check(type(estimator).__name__, estimator)
