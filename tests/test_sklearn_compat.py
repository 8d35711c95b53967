"""skplice imports scikit-learn's private names in one place: ``skplice/utils/``.

A scikit-learn release may move or change a private name without notice; keeping every
such import in ``skplice.utils._sklearn_compat`` means an upgrade that breaks one is
fixed in one module. The AST scan below enforces it for every module of the package.
"""

import ast
from pathlib import Path

import pytest

import skplice

PACKAGE = Path(skplice.__file__).parent
ALLOWED = PACKAGE / "utils"


def private_sklearn_imports(source, filename="<source>"):
    """``[(line, imported name)]`` for each import of a private scikit-learn name.

    A name is private when any dotted component, of the module or of the imported name,
    starts with an underscore: ``from sklearn.base import _fit_context``,
    ``from sklearn.utils._param_validation import Interval``, ``import sklearn.utils._x``.
    """
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module.split(".")
            if module[0] != "sklearn":
                continue
            for alias in node.names:
                if any(part.startswith("_") for part in [*module, alias.name]):
                    found.append((node.lineno, f"{node.module}.{alias.name}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "sklearn" and any(part.startswith("_") for part in parts):
                    found.append((node.lineno, alias.name))
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from sklearn.base import BaseEstimator, _fit_context", ["sklearn.base._fit_context"]),
        (
            "from sklearn.utils._param_validation import Interval",
            ["sklearn.utils._param_validation.Interval"],
        ),
        ("import sklearn.utils._set_output as so", ["sklearn.utils._set_output"]),
        (
            "def f():\n    from sklearn.utils.validation import _check_feature_names_in",
            ["sklearn.utils.validation._check_feature_names_in"],
        ),
        ("from sklearn.utils.validation import check_array, validate_data", []),
        ("import sklearn.utils.validation", []),
        ("from sklearn import get_config", []),
        ("from skplice.utils._rows import unit_rows", []),  # skplice's own private names
        ("from ._sklearn_compat import Interval", []),  # relative: not scikit-learn
        ("from sklearnx._private import thing", []),  # another package
    ],
)
def test_the_scanner_finds_private_sklearn_imports(source, expected):
    assert [name for _, name in private_sklearn_imports(source)] == expected


def test_only_utils_imports_private_sklearn_names():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 30  # the whole package is scanned
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {name}"
        for path in modules
        if ALLOWED not in path.parents
        for line, name in private_sklearn_imports(path.read_text(), str(path))
    ]
    assert not offenders, (
        "Import scikit-learn's private names from skplice.utils._sklearn_compat, not "
        "directly:\n" + "\n".join(offenders)
    )
