"""
=============================
Concept histograms per class
=============================

Which concepts make up a class? Decompose every sample of a labelled dataset and count,
per class, how often each concept appears: the SpLiCE paper's concept histograms. They
summarise a dataset at a glance and reveal what a class *also* contains besides its
object (backgrounds, context, co-occurring things).

.. note::

   **Which model.** The paper draws these histograms for image datasets with
   ``CLIPEmbedder("ViT-B-32", "laion2b_s34b_b79k")``: embed the images
   with it and pass it as the ``encoder`` of :class:`~skplice.SpLiCETransformer`.
   To run offline, this example decomposes *captions* instead, embedded by the real
   all-MiniLM-L6-v2 sentence encoder (:class:`~skplice.TextEmbedder`), whose word
   embeddings make the concepts. The steps after embedding are the same.
"""

# %%
# A small labelled dataset
# ------------------------
# Captions of four classes, built from templates. Each class has its usual context:
# boats are on water, dogs in parks and gardens, pizzas on tables, planes in the sky
# or at airports.
import numpy as np

from skplice import (
    SpLiCETransformer,
    TextEmbedder,
    class_concept_summary,
    load_vocabulary,
    plot_class_concepts,
)

from _offline import local_minilm, use_offline_stand_ins

rng = np.random.default_rng(0)
CLASSES = {
    "boat": (
        [
            "a sailboat",
            "a fishing boat",
            "a canoe",
            "a yacht",
            "a rowing boat",
        ],
        [
            "on a calm lake",
            "in the harbour",
            "at sea under a cloudy sky",
            "on a river",
        ],
    ),
    "dog": (
        [
            "a puppy",
            "a golden retriever",
            "a small terrier",
            "a sheepdog",
            "a beagle",
        ],
        [
            "playing in the park",
            "lying on the grass",
            "running in the garden",
            "on a leash",
        ],
    ),
    "pizza": (
        [
            "a pepperoni pizza",
            "a slice of pizza",
            "a margherita",
            "a cheese pizza",
        ],
        [
            "on a wooden table",
            "in a cardboard box",
            "on a plate",
            "fresh from the oven",
        ],
    ),
    "airplane": (
        [
            "a jet airliner",
            "a small propeller plane",
            "a passenger plane",
            "a cargo jet",
        ],
        [
            "in a blue sky",
            "on the runway",
            "taking off at the airport",
            "above the clouds",
        ],
    ),
}
captions, y = [], []
for label, (subjects, contexts) in CLASSES.items():
    for _ in range(40):
        captions.append(f"{rng.choice(subjects)} {rng.choice(contexts)}")
        y.append(label)
y = np.array(y)
print(captions[:3])

# %%
# Embed and decompose
# -------------------
# The sentence encoder embeds the captions and, as the ``encoder`` of the transformer,
# the 10,000 most frequent LAION words (stop words removed). ``fit`` learns the mean
# embedding used for centring.
OFFLINE = use_offline_stand_ins()
text = TextEmbedder(local_minilm() if OFFLINE else "all-MiniLM-L6-v2")
X = text.transform(captions)

concepts = load_vocabulary("laion", 10_000, clean=True)
splice = SpLiCETransformer(l1=0.25, vocabulary=concepts, encoder=text)
W = splice.fit_transform(X)
print(f"{W.nnz / W.shape[0]:.1f} concepts per caption")

# %%
# The histograms
# --------------
# :func:`~skplice.plot_class_concepts` draws, for each class, the concepts present in
# the largest fraction of its samples. Besides words for the objects themselves, the
# contexts show up: *sky*, *sea* and *river* for boats, *park* and *grasses* for dogs,
# *airport* for airplanes, *oven* for pizzas. So do the encoder's associations: Italian
# words (*milan*, *della*) come with the pizzas.
fig = plot_class_concepts(W, y, top=8, ncols=2)

# %%
# The same numbers as a table
# ---------------------------
# :func:`~skplice.class_concept_summary` returns them in long form, with the mean
# weight of each concept in the class.
summary = class_concept_summary(W, y, top=5, sort_by="prevalence")
summary[summary["class"].isin(["boat", "dog"])]
