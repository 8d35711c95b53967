"""skplice: sparse, non-negative concept decompositions of CLIP embeddings (SpLiCE).

Public names are imported on first use (PEP 562), so that ``import skplice`` and the
``skplice`` command's ``--help`` do not pay for torch, scikit-learn and pandas before
anything needs them; ``from skplice import SpLiCETransformer`` works as usual.
"""

import importlib
from typing import TYPE_CHECKING

from skplice._version import __version__

# Public name -> the public subpackage (or module) that exports it.
_EXPORTS = {
    "build_dictionary": "skplice.concepts",
    "encode_concepts": "skplice.concepts",
    "ConceptEditor": "skplice.editing",
    "edit_embeddings": "skplice.editing",
    "CLIPEmbedder": "skplice.embedding",
    "TextEmbedder": "skplice.embedding",
    "list_image_means": "skplice.concepts",
    "load_image_mean": "skplice.concepts",
    "class_concept_summary": "skplice.analysis",
    "concept_differences": "skplice.analysis",
    "format_top_concepts": "skplice.analysis",
    "probe_report": "skplice.analysis",
    "top_concepts": "skplice.analysis",
    "weights_frame": "skplice.analysis",
    "plot_class_concepts": "skplice.analysis",
    "plot_concept_histogram": "skplice.analysis",
    "plot_image_concepts": "skplice.analysis",
    "plot_sparsity_curve": "skplice.analysis",
    "concept_shift": "skplice.analysis",
    "concept_shift_over_time": "skplice.analysis",
    "SpLiCETransformer": "skplice.decomposition",
    "transform_batches": "skplice.decomposition",
    "sparsity_sweep": "skplice.analysis",
    "load_vocabulary": "skplice.concepts",
    "ZeroShotClassifier": "skplice.zero_shot",
}
_SUBMODULES = {
    "analysis",
    "cli",
    "concepts",
    "decomposition",
    "editing",
    "embedding",
    "exceptions",
    "utils",
    "zero_shot",
}

__all__ = [
    "CLIPEmbedder",
    "ConceptEditor",
    "SpLiCETransformer",
    "TextEmbedder",
    "ZeroShotClassifier",
    "__version__",
    "build_dictionary",
    "class_concept_summary",
    "concept_differences",
    "concept_shift",
    "concept_shift_over_time",
    "edit_embeddings",
    "encode_concepts",
    "format_top_concepts",
    "list_image_means",
    "load_image_mean",
    "load_vocabulary",
    "plot_class_concepts",
    "plot_concept_histogram",
    "plot_image_concepts",
    "plot_sparsity_curve",
    "probe_report",
    "sparsity_sweep",
    "top_concepts",
    "transform_batches",
    "weights_frame",
]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted({*globals(), *__all__, *_SUBMODULES})


if TYPE_CHECKING:  # what static analysers and IDEs see
    from skplice.analysis import (
        class_concept_summary,
        concept_differences,
        concept_shift,
        concept_shift_over_time,
        format_top_concepts,
        plot_class_concepts,
        plot_concept_histogram,
        plot_image_concepts,
        plot_sparsity_curve,
        probe_report,
        sparsity_sweep,
        top_concepts,
        weights_frame,
    )
    from skplice.concepts import (
        build_dictionary,
        encode_concepts,
        list_image_means,
        load_image_mean,
        load_vocabulary,
    )
    from skplice.decomposition import SpLiCETransformer, transform_batches
    from skplice.editing import ConceptEditor, edit_embeddings
    from skplice.embedding import CLIPEmbedder, TextEmbedder
    from skplice.zero_shot import ZeroShotClassifier
