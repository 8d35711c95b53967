"""Embedding images and text with CLIP (open_clip) and sentence-transformers models.

The estimators hold no model: backends load weights on first use into one process-wide
cache (:func:`clear_model_cache` frees it). Image loading, the opt-in on-disk embedding
cache and the model's download and offline policy live beneath this package.
"""

from skplice.embedding._embedders import (
    CLIPEmbedder,
    TextEmbedder,
    clear_model_cache,
    embedding_cache_info,
)

__all__ = ["CLIPEmbedder", "TextEmbedder", "clear_model_cache", "embedding_cache_info"]
