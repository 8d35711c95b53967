"""skplice: sparse, non-negative concept decompositions of CLIP embeddings (SpLiCE)."""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
