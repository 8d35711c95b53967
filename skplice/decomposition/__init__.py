"""Sparse, non-negative concept decompositions: the estimator, streaming and solvers.

:class:`SpLiCETransformer` learns the centring statistics and solves a non-negative
lasso per sample with the batched torch solvers of ``_solvers`` (which know nothing of
scikit-learn); :func:`transform_batches` streams inputs larger than memory through it.
"""

from skplice.decomposition._splice import SpLiCETransformer
from skplice.decomposition._streaming import transform_batches

__all__ = ["SpLiCETransformer", "transform_batches"]
