"""skplice.utils._rollback: a failed fit leaves the estimator as it was."""

import numpy as np
import pytest

from skplice import ConceptEditor, SpLiCETransformer
from skplice.utils._rollback import unchanged_on_error


class Estimator:
    pass


@pytest.mark.parametrize("error", [ValueError("bad input"), KeyboardInterrupt()])
def test_attributes_added_replaced_and_deleted_in_a_failing_block_are_restored(error):
    estimator = Estimator()
    mean, names = np.ones(3), ["a", "b"]
    estimator.mean_, estimator.names_, estimator.param = mean, names, 1
    with pytest.raises(type(error)):
        with unchanged_on_error(estimator):
            estimator.n_features_in_ = 3  # added
            estimator.mean_ = np.zeros(3)  # replaced
            del estimator.names_  # deleted
            raise error
    assert list(vars(estimator)) == ["mean_", "names_", "param"]
    assert estimator.mean_ is mean and estimator.names_ is names and estimator.param == 1


def test_a_block_that_succeeds_keeps_its_changes():
    estimator = Estimator()
    estimator.param = 1
    with unchanged_on_error(estimator):
        estimator.n_features_in_ = 3
        del estimator.param
    assert vars(estimator) == {"n_features_in_": 3}


@pytest.mark.parametrize(
    ("estimator", "X"),
    [
        # validate_data records n_features_in_; the dictionary check fails afterwards.
        (SpLiCETransformer(dictionary=np.eye(3)), np.ones((4, 5))),
        # validate_data records n_features_in_; resolving the concept names fails afterwards.
        (ConceptEditor(remove=["dog"], concepts=["cat", "sun"]), np.ones((4, 2))),
    ],
    ids=["SpLiCETransformer", "ConceptEditor"],
)
def test_estimators_that_fail_to_fit_stay_unfitted(estimator, X):
    before = dict(vars(estimator))
    with pytest.raises(ValueError):
        estimator.fit(X)
    assert vars(estimator) == before
