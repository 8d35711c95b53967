"""skplice: sparse, non-negative concept decompositions of CLIP embeddings (SpLiCE)."""

from skplice.embedding import CLIPEmbedder, TextEmbedder
from skplice.splice import SpLiCETransformer
from skplice.sweep import plot_sparsity_curve, sparsity_sweep
from skplice.vocabulary import load_vocabulary
from skplice.zero_shot import ZeroShotClassifier

__version__ = "0.1.0.dev0"

__all__ = [
    "CLIPEmbedder",
    "SpLiCETransformer",
    "TextEmbedder",
    "ZeroShotClassifier",
    "__version__",
    "load_vocabulary",
    "plot_sparsity_curve",
    "sparsity_sweep",
]
