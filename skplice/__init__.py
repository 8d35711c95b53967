"""skplice: sparse, non-negative concept decompositions of CLIP embeddings (SpLiCE)."""

from skplice.dictionary import build_dictionary, encode_concepts
from skplice.editing import ConceptEditor, edit_embeddings
from skplice.embedding import CLIPEmbedder, TextEmbedder
from skplice.image_means import list_image_means, load_image_mean
from skplice.inspection import (
    class_concept_summary,
    concept_differences,
    format_top_concepts,
    probe_report,
    top_concepts,
)
from skplice.plotting import (
    plot_class_concepts,
    plot_concept_histogram,
    plot_image_concepts,
    plot_sparsity_curve,
)
from skplice.shift import concept_shift, concept_shift_over_time
from skplice.splice import SpLiCETransformer
from skplice.streaming import transform_batches
from skplice.sweep import sparsity_sweep
from skplice.vocabulary import load_vocabulary
from skplice.zero_shot import ZeroShotClassifier

__version__ = "0.1.0.dev0"

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
]
