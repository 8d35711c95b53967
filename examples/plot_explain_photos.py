"""
=====================================
Explain photos with a few concepts
=====================================

SpLiCE rewrites a CLIP image embedding as a sparse, non-negative combination of
words. This example embeds a few photos with CLIP, decomposes them over the 10,000
most frequent LAION words, and shows each photo beside its heaviest concepts.

.. note::

   **Which model.** On a machine with internet access this example uses the SpLiCE
   paper's backbone, ``CLIPEmbedder("ViT-B-32", "laion2b_s34b_b79k")`` (about 600 MB
   downloaded on first use), for the photos and the words alike, as in the paper's
   figures. The documentation is built offline with a tiny CLIP with **random
   weights** (``SKPLICE_EXAMPLES_OFFLINE=1``): the code and the plots are the same,
   but the words shown below are arbitrary.
"""

# %%
# Photos and a CLIP model
# -----------------------
# The photos ship with scikit-image and scikit-learn. :class:`~skplice.CLIPEmbedder`
# accepts numpy arrays, PIL images, file paths or bytes.
import matplotlib.pyplot as plt
import numpy as np
import skimage.data
from sklearn.datasets import load_sample_images

from skplice import (
    CLIPEmbedder,
    SpLiCETransformer,
    format_top_concepts,
    load_vocabulary,
    plot_image_concepts,
)

from _offline import tiny_random_clip, use_offline_stand_ins

OFFLINE = use_offline_stand_ins()
if OFFLINE:
    clip = tiny_random_clip()  # random weights: runs anywhere, means nothing
else:
    clip = CLIPEmbedder(
        "ViT-B-32", "laion2b_s34b_b79k"
    )  # the paper's backbone

photos = {
    name: getattr(skimage.data, name)()
    for name in [
        "astronaut",
        "chelsea",
        "coffee",
        "rocket",
        "hubble_deep_field",
        "colorwheel",
    ]
}
photos["china"], photos["flower"] = load_sample_images().images
X = clip.transform(list(photos.values()))
X.shape

# %%
# Decompose the embeddings
# ------------------------
# The concepts are the 10,000 most frequent words of LAION captions, without stop
# words (``clean=True``), encoded by the same CLIP's text tower; the encoded
# dictionary is cached on disk, so only the first run pays for it.
#
# Before the decomposition, each embedding is centred by a mean image embedding,
# ``image_mean_``, to close the gap between CLIP's image and text embeddings.
# ``image_mean="published"`` takes the SpLiCE authors' mean for ViT-B-32 (computed on
# MSCOCO images), as the paper does for any photo. The random CLIP of the offline
# build has no published mean, so there ``fit`` learns the mean of the eight photos
# (``image_mean=None``, the right choice for a large and varied set of images).
concepts = load_vocabulary("laion", 10_000, clean=True)
splice = SpLiCETransformer(
    l1=0.25,
    vocabulary=concepts,
    encoder=clip,
    image_mean=None if OFFLINE else "published",
)
W = splice.fit_transform(X)
print(f"{W.nnz / W.shape[0]:.1f} concepts per photo, out of {W.shape[1]}")

# %%
# Each row of ``W`` is sparse and its columns are words:
for name, line in zip(photos, format_top_concepts(W, n=4), strict=True):
    print(f"{name:>18}: {line}")

# %%
# Plot four photos beside their top concepts
# ------------------------------------------
# :func:`~skplice.plot_image_concepts` draws one photo and its concept weights on a
# pair of axes. Selecting rows of ``W`` builds a new sparse matrix, which does not
# carry the concept names: pass them explicitly. (In the offline build of this page,
# the words are those of a random CLIP: see the note at the top.)
names = splice.get_feature_names_out()
shown = ["astronaut", "chelsea", "coffee", "rocket"]
fig, axes = plt.subplots(
    len(shown), 2, figsize=(8, 2.6 * len(shown)), layout="constrained"
)
for row, name in zip(axes, shown, strict=True):
    i = list(photos).index(name)
    plot_image_concepts(photos[name], W[[i]], names, n=6, axes=row)
    row[1].set_title(name)
plt.show()

# %%
# How faithful is the sparse code?
# --------------------------------
# :meth:`~skplice.SpLiCETransformer.score` is the mean cosine similarity between the
# embeddings and their reconstructions from the concepts alone. A lower ``l1`` keeps
# more concepts and reconstructs better; see
# :ref:`sphx_glr_auto_examples_plot_regularization_path.py` for the trade-off.
print(f"mean cosine(embedding, reconstruction) = {splice.score(X):.3f}")

# %%
# Why centre? CLIP image embeddings sit in a narrow cone: any two photos, however
# different, have a high cosine similarity, as the first four show below. The
# decomposition works on the differences from ``image_mean_`` instead.
print(np.round(X @ X.T, 2)[:4, :4])
