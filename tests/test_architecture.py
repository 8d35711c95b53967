"""The package's layers (docs/architecture.rst): imports point one way, from high to low.

Every import in skplice's source, at module level or inside a function, is read from
the syntax tree and checked against the layer table below, so a shortcut from a low
layer to a high one fails here rather than as an import cycle months later.
"""

import ast
import sys
from pathlib import Path

import pytest

import skplice

PACKAGE = Path(skplice.__file__).resolve().parent

#: Layer of each part of the package, lowest first. A module may import its own layer
#: and lower ones; the solvers import nothing of skplice at all (checked separately).
LAYERS = {
    "skplice._version": 0,
    "skplice.exceptions": 0,
    "skplice.utils": 1,
    "skplice.embedding": 2,
    "skplice.concepts": 3,
    "skplice.decomposition": 4,
    "skplice.editing": 5,
    "skplice.zero_shot": 5,
    "skplice.analysis": 6,
    "skplice.cli": 7,
    "skplice.__main__": 8,
    # The top-level package re-exports the public names of every layer up to analysis
    # (lazily): importing it is importing analysis.
    "skplice": 6.5,
}
SOLVERS = "skplice.decomposition._solvers"


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(name):
    """The entry of LAYERS that ``name`` (a module of skplice) belongs to."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in LAYERS:
            return candidate
    raise KeyError(f"{name} belongs to no layer: add its package to LAYERS")


def exported_from(name):
    """The module behind ``from skplice import name``."""
    if name == "__version__":
        return "skplice._version"
    return skplice._EXPORTS.get(name, f"skplice.{name}")


def imported_modules(path):
    """``(line, module)`` for every skplice module that ``path`` imports."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports would hide the layer; the package has none
                found.append((node.lineno, "." * node.level + (node.module or "")))
            elif node.module == "skplice":
                # ``from skplice import x``: x is a subpackage or a lazily exported name
                found += [(node.lineno, exported_from(alias.name)) for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] in {"skplice", ""}]


def layer_violations(path):
    here = module_name(path)
    problems = []
    for line, target in imported_modules(path):
        where = f"{path.relative_to(PACKAGE.parent)}:{line}"
        if target.startswith("."):
            problems.append(f"{where}: relative import {target!r}; import skplice.... absolutely")
            continue
        if here.startswith(SOLVERS) and not target.startswith(SOLVERS):
            problems.append(f"{where}: the solvers import {target}; they depend on torch only")
            continue
        try:
            low, high = LAYERS[part_of(here)], LAYERS[part_of(target)]
        except KeyError as exc:
            problems.append(f"{where}: {exc.args[0]}")
            continue
        if high > low:
            problems.append(f"{where}: {here} (layer {low}) imports {target} (layer {high})")
        elif high == low and part_of(here) != part_of(target):
            problems.append(f"{where}: {here} imports its peer {target}; share code lower down")
    return problems


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_layer():
    assert len(MODULES) > 30  # guards the discovery: an empty list would pass every check
    for path in MODULES:
        part_of(module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    problems = layer_violations(path)
    assert not problems, "\n".join(problems)


def test_the_scanner_catches_an_upward_and_a_sideways_import(tmp_path, monkeypatch):
    fake = tmp_path / "skplice"
    (fake / "utils").mkdir(parents=True)
    (fake / "decomposition" / "_solvers").mkdir(parents=True)
    upward = fake / "utils" / "_up.py"
    upward.write_text("def f():\n    from skplice.decomposition import SpLiCETransformer\n")
    through_the_top = fake / "utils" / "_top.py"
    through_the_top.write_text("import skplice\nfrom skplice import top_concepts\n")
    sideways = fake / "editing.py"
    sideways.write_text("from skplice import zero_shot\n")
    solver = fake / "decomposition" / "_solvers" / "_x.py"
    solver.write_text("from skplice.utils._rows import unit_rows\n")
    fine = fake / "analysis.py"
    fine.write_text("import numpy\nfrom skplice.decomposition import SpLiCETransformer\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert "layer 1" in layer_violations(upward)[0]
    assert len(layer_violations(through_the_top)) == 2  # the package, and analysis
    assert "peer" in layer_violations(sideways)[0]
    assert "torch only" in layer_violations(solver)[0]
    assert layer_violations(fine) == []
