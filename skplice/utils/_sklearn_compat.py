"""The scikit-learn private names skplice relies on, imported here and nowhere else.

scikit-learn may move or change a private name in any release. Every module of skplice
imports these names from this one (``tests/test_sklearn_compat.py`` scans the package to
keep it so), so an upgrade that breaks one is fixed here, in one place. Each name says
why skplice needs it and what public replacement would retire it.
"""

# Parameter validation: the decorator that checks ``_parameter_constraints`` once per
# fit (and skips nested estimators' checks). scikit-learn offers no public equivalent
# to third-party estimators; calling ``BaseEstimator._validate_params`` by hand would
# trade one private name for another.
from sklearn.base import _fit_context

# Constraint objects for ``_parameter_constraints`` (ranges, string options, duck
# types). scikit-learn's own estimators use them and ``check_param_validation`` in
# ``estimator_checks`` reads them; they have no public home yet.
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

# Where ``set_output`` stores an estimator's output container, and the global default.
# The public ``set_output``/``get_config`` set these; nothing public reads the result
# for a given estimator.
from sklearn.utils._set_output import _get_output_config

# Feature names: ``_get_feature_names`` reads a DataFrame's column names with
# scikit-learn's checks (all strings, no mixed types), for weights passed to functions
# that are not estimators; ``_check_feature_names_in`` resolves the ``input_features``
# of ``get_feature_names_out`` against ``feature_names_in_``/``n_features_in_``. Neither
# has a public counterpart; writing our own would duplicate checks and error messages
# that users meet everywhere else in scikit-learn.
from sklearn.utils.validation import _check_feature_names_in, _get_feature_names

__all__ = [
    "HasMethods",
    "Interval",
    "StrOptions",
    "_check_feature_names_in",
    "_fit_context",
    "_get_feature_names",
    "transform_output",
]


def transform_output(estimator):
    """The container ``estimator.transform`` is asked for: "default", "pandas" or "polars".

    The estimator's own ``set_output(transform=...)`` if it set one, else the global
    ``sklearn.set_config(transform_output=...)``.
    """
    return _get_output_config("transform", estimator)["dense"]
