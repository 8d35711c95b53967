"""skplice: sparse, non-negative concept decompositions of CLIP embeddings (SpLiCE)."""

from .embedding import CLIPEmbedder, TextEmbedder

__version__ = "0.1.0.dev0"

__all__ = ["CLIPEmbedder", "TextEmbedder", "__version__"]
