"""skplice: sparse, non-negative concept decompositions of CLIP embeddings (SpLiCE)."""

from skplice.editing import ConceptEditor, edit_embeddings
from skplice.embedding import CLIPEmbedder, TextEmbedder
from skplice.splice import SpLiCETransformer
from skplice.vocabulary import load_vocabulary

__version__ = "0.1.0.dev0"

__all__ = [
    "CLIPEmbedder",
    "ConceptEditor",
    "SpLiCETransformer",
    "TextEmbedder",
    "__version__",
    "edit_embeddings",
    "load_vocabulary",
]
