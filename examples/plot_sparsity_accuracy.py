"""
=========================================
Sparsity versus zero-shot accuracy
=========================================

How many concepts does an embedding need? The SpLiCE paper answers with one curve:
classify the SpLiCE *reconstructions* of embeddings zero-shot, for a range of sparsity
penalties, and compare with the dense embeddings. A few dozen concepts get close to
the dense accuracy.

:func:`~skplice.sparsity_sweep` computes the curve in one call (all penalties solved
along one warm-started regularization path) and :func:`~skplice.plot_sparsity_curve`
draws it.

.. note::

   **Which model.** The paper's curves come from image classification datasets, with
   ``CLIPEmbedder("ViT-B-32", "laion2b_s34b_b79k")`` embedding
   the images, the 10,000 most frequent LAION words and the prompts
   ``"a photo of a {}."``. To run offline, this example classifies *captions*
   embedded by the real all-MiniLM-L6-v2 sentence encoder; the captions never name
   their class.
"""

# %%
# Captions of six classes
# -----------------------
import numpy as np

from skplice import (
    SpLiCETransformer,
    TextEmbedder,
    ZeroShotClassifier,
    load_vocabulary,
    plot_sparsity_curve,
    sparsity_sweep,
)

from _offline import local_minilm, use_offline_stand_ins

rng = np.random.default_rng(0)
CLASSES = {
    "dog": (
        [
            "a golden retriever",
            "a puppy",
            "a labrador",
            "a beagle",
            "a sheepdog",
        ],
        [
            "fetching a ball",
            "chewing a bone",
            "wagging its tail",
            "barking at the mailman",
        ],
    ),
    "cat": (
        [
            "a kitten",
            "a tabby",
            "a siamese",
            "a ginger tom",
            "a fluffy persian",
        ],
        [
            "purring on the sofa",
            "chasing a ball of yarn",
            "licking its paws",
            "napping",
        ],
    ),
    "car": (
        [
            "a red sedan",
            "a convertible",
            "an suv",
            "a hatchback",
            "a vintage coupe",
        ],
        [
            "parked on the street",
            "stuck in traffic",
            "on the highway",
            "at a gas station",
        ],
    ),
    "airplane": (
        [
            "a jet airliner",
            "a propeller aircraft",
            "a boeing 747",
            "a fighter jet",
        ],
        [
            "taking off from the runway",
            "above the clouds",
            "parked at the gate",
        ],
    ),
    "pizza": (
        [
            "a margherita",
            "a pepperoni slice",
            "a deep dish pie",
            "a wood fired pie",
        ],
        [
            "with melted mozzarella",
            "fresh from the oven",
            "with basil and tomato",
        ],
    ),
    "flower": (
        [
            "a red rose",
            "a sunflower",
            "a tulip",
            "a bunch of daisies",
            "an orchid",
        ],
        [
            "in a vase",
            "blooming in the garden",
            "with morning dew",
            "in a meadow",
        ],
    ),
}
captions, y = [], []
for label, (subjects, details) in CLASSES.items():
    for _ in range(30):
        captions.append(f"{rng.choice(subjects)} {rng.choice(details)}")
        y.append(label)
y = np.array(y)

# %%
# Embed, fit the transformer, build the zero-shot classifier
# ----------------------------------------------------------
# :class:`~skplice.ZeroShotClassifier` embeds one prompt per class with the same
# encoder and predicts the most similar class. It has nothing to learn from the
# embeddings; ``fit`` encodes the prompts.
OFFLINE = use_offline_stand_ins()
text = TextEmbedder(local_minilm() if OFFLINE else "all-MiniLM-L6-v2")
X = text.transform(captions)

concepts = load_vocabulary("laion", 10_000, clean=True)
splice = SpLiCETransformer(vocabulary=concepts, encoder=text).fit(X)
zero_shot = ZeroShotClassifier(list(CLASSES), encoder=text).fit(X)
print(
    f"zero-shot accuracy on the dense embeddings: {zero_shot.score(X, y):.2f}"
)

# %%
# The sweep
# ---------
# One row per penalty: the mean number of concepts kept (``mean_l0``), the mean cosine
# between each embedding and its reconstruction, and the accuracy of the classifier on
# the reconstructions. The last row is the dense baseline.
l1_values = [0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7]
results = sparsity_sweep(
    splice, X, y, l1_values=l1_values, classifier=zero_shot
)
results.round(3)

# %%
# The curve
# ---------
# As the penalty decreases, embeddings keep more concepts, their reconstructions get
# closer to the originals, and the accuracy approaches the dense baseline (dashed).
fig = plot_sparsity_curve(results)

# %%
# Choosing ``l1``
# ---------------
# Pick the sparsity you can afford to read: here, the sparsest penalty whose accuracy
# is within 5% of the dense one.
dense_accuracy = results.accuracy.iloc[-1]
good = results[
    (results.representation == "splice")
    & (results.accuracy >= 0.95 * dense_accuracy)
]
best = good.loc[good.l1.idxmax()]
print(
    f"l1={best.l1}: {best.mean_l0:.1f} concepts per caption, accuracy {best.accuracy:.3f} "
    f"(dense: {dense_accuracy:.3f})"
)

# %%
# To tune ``l1`` for a downstream score with a grid search instead, see
# :ref:`sphx_glr_auto_examples_plot_regularization_path.py`.
