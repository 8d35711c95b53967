"""skplice: sparse, non-negative concept decompositions of CLIP embeddings (SpLiCE)."""

from .vocabulary import load_vocabulary

__version__ = "0.1.0.dev0"

__all__ = ["__version__", "load_vocabulary"]
