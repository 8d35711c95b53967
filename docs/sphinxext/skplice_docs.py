"""Helpers for the skplice documentation build (a Sphinx extension loaded by ``conf.py``)."""

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.directives.other import TocTree
from sphinx.util import docname_join
from sphinx.util.docutils import SphinxDirective

#: Gallery examples in reading order; examples not listed come after, by file name.
EXAMPLE_ORDER = (
    "plot_explain_photos.py",
    "plot_class_histograms.py",
    "plot_spurious_correlations.py",
    "plot_edit_probe.py",
    "plot_distribution_shift.py",
    "plot_sparsity_accuracy.py",
    "plot_regularization_path.py",
)


class ExampleOrder:
    """Sort key for sphinx-gallery's ``within_subsection_order``.

    sphinx-gallery instantiates it with the gallery folder and calls it on file names.
    A module-level class (rather than a lambda in ``conf.py``) keeps the configuration
    picklable, so Sphinx can cache it without a warning.

    Parameters
    ----------
    src_dir : str
        The gallery folder (unused).
    """

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        """Return the sort key of ``filename``: its place in ``EXAMPLE_ORDER``, then its name.

        Parameters
        ----------
        filename : str
            An example's file name.

        Returns
        -------
        tuple of (int, str)
            The position in ``EXAMPLE_ORDER`` (the end for unlisted files) and the name.
        """
        if filename in EXAMPLE_ORDER:
            return EXAMPLE_ORDER.index(filename), filename
        return len(EXAMPLE_ORDER), filename

    def __repr__(self):
        return f"{type(self).__name__}()"


class OptionalTocTree(TocTree):
    """A ``toctree`` whose entries are left out when their document does not exist.

    For pages that other parts of the project add (the command-line and Dask pages):
    the table of contents lists them once they are there, and the build stays free of
    warnings before.
    """

    def run(self):
        """Drop the missing entries, then build the toctree as usual.

        Returns
        -------
        list of docutils.nodes.Node
            The nodes of the toctree (empty when no entry exists).
        """
        env = self.state.document.settings.env
        kept = [
            line
            for line in self.content
            if line.strip() and docname_join(env.docname, line.strip()) in env.found_docs
        ]
        if not kept:
            return []
        self.content = StringList(kept, source=self.content.source(0))
        return super().run()


class IfPageExists(SphinxDirective):
    """Content shown only when the document named by the argument exists.

    Its references to that document then resolve; without the document the content
    is dropped before any reference is looked up (Sphinx's ``only`` directive is
    evaluated after references are resolved, so it cannot do this).
    """

    required_arguments = 1
    has_content = True

    def run(self):
        """Parse the content if the document exists.

        Returns
        -------
        list of docutils.nodes.Node
            The parsed content, or nothing.
        """
        if docname_join(self.env.docname, self.arguments[0]) not in self.env.found_docs:
            return []
        container = nodes.container()
        self.state.nested_parse(self.content, self.content_offset, container)
        return container.children


def skip_metadata_request_methods(app, what, name, obj, skip, options):
    """Leave out the ``set_{method}_request`` methods that scikit-learn generates.

    scikit-learn adds them to every estimator whose methods take extra arguments
    (metadata routing); their docstrings refer to scikit-learn's own documentation.

    Parameters
    ----------
    app : sphinx.application.Sphinx
        The Sphinx application.
    what : str
        The kind of the parent object.
    name : str
        The member's name.
    obj : object
        The member.
    skip : bool
        Whether autodoc would skip it.
    options : object
        The directive's options.

    Returns
    -------
    bool or None
        True to skip the member, None to let autodoc decide.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    """Register the ``optional-toctree`` and ``if-page-exists`` directives.

    Parameters
    ----------
    app : sphinx.application.Sphinx
        The Sphinx application.

    Returns
    -------
    dict
        Extension metadata: safe for parallel reading and writing.
    """
    app.add_directive("optional-toctree", OptionalTocTree)
    app.add_directive("if-page-exists", IfPageExists)
    app.connect("autodoc-skip-member", skip_metadata_request_methods)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
