"""skplice: sparse, non-negative concept decompositions of CLIP embeddings (SpLiCE).

Public names are imported on first use (PEP 562), so that ``import skplice`` and the
``skplice`` command's ``--help`` do not pay for torch, scikit-learn and pandas before
anything needs them; ``from skplice import SpLiCETransformer`` works as usual.
"""

import importlib
from typing import TYPE_CHECKING

from skplice._version import __version__

# Public name -> the module that defines it.
_EXPORTS = {
    "build_dictionary": "skplice.dictionary",
    "encode_concepts": "skplice.dictionary",
    "ConceptEditor": "skplice.editing",
    "edit_embeddings": "skplice.editing",
    "CLIPEmbedder": "skplice.embedding",
    "TextEmbedder": "skplice.embedding",
    "class_concept_summary": "skplice.inspection",
    "concept_differences": "skplice.inspection",
    "format_top_concepts": "skplice.inspection",
    "probe_report": "skplice.inspection",
    "top_concepts": "skplice.inspection",
    "plot_class_concepts": "skplice.plotting",
    "plot_image_concepts": "skplice.plotting",
    "plot_sparsity_curve": "skplice.plotting",
    "concept_shift": "skplice.shift",
    "concept_shift_over_time": "skplice.shift",
    "SpLiCETransformer": "skplice.splice",
    "transform_batches": "skplice.streaming",
    "sparsity_sweep": "skplice.sweep",
    "load_vocabulary": "skplice.vocabulary",
    "ZeroShotClassifier": "skplice.zero_shot",
}
_SUBMODULES = {
    "cli",
    "dictionary",
    "editing",
    "embedding",
    "exceptions",
    "inspection",
    "plotting",
    "shift",
    "splice",
    "streaming",
    "sweep",
    "vocabulary",
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
    "load_vocabulary",
    "plot_class_concepts",
    "plot_image_concepts",
    "plot_sparsity_curve",
    "probe_report",
    "sparsity_sweep",
    "top_concepts",
    "transform_batches",
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
    from skplice.dictionary import build_dictionary, encode_concepts
    from skplice.editing import ConceptEditor, edit_embeddings
    from skplice.embedding import CLIPEmbedder, TextEmbedder
    from skplice.inspection import (
        class_concept_summary,
        concept_differences,
        format_top_concepts,
        probe_report,
        top_concepts,
    )
    from skplice.plotting import plot_class_concepts, plot_image_concepts, plot_sparsity_curve
    from skplice.shift import concept_shift, concept_shift_over_time
    from skplice.splice import SpLiCETransformer
    from skplice.streaming import transform_batches
    from skplice.sweep import sparsity_sweep
    from skplice.vocabulary import load_vocabulary
    from skplice.zero_shot import ZeroShotClassifier
