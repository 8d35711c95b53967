"""Concepts: vocabularies, published image means and concept dictionaries.

A vocabulary is a list of words (downloaded by name, verified by sha256, cached
atomically); a dictionary is their unit-norm, centred text embeddings, cached on disk.
"""

from skplice.concepts._dictionary import build_dictionary, encode_concepts
from skplice.concepts._image_means import list_image_means, load_image_mean, locate_image_mean
from skplice.concepts._vocabulary import list_vocabularies, load_vocabulary

__all__ = [
    "build_dictionary",
    "encode_concepts",
    "list_image_means",
    "list_vocabularies",
    "load_image_mean",
    "load_vocabulary",
    "locate_image_mean",
]
