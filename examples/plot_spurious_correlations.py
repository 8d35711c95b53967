"""
=================================
Detect a spurious correlation
=================================

A classifier trained on a dataset learns whatever separates its classes, including
things unrelated to the label that merely co-occur with it. SpLiCE makes such
co-occurrences visible: compare how often each concept appears in one group and in
the rest, and test the difference.

The SpLiCE paper's example is a dataset whose images of women show swimwear far more
often than its images of men: a shortcut that a classifier of the two classes could
pick up. This example builds a small dataset with that bias on purpose and recovers it
with :func:`~skplice.concept_differences`.

.. note::

   **Which model.** On images, embed them and the vocabulary with
   ``CLIPEmbedder("ViT-B-32", "laion2b_s34b_b79k")``, the paper's backbone. To run
   offline, this example decomposes *captions* embedded by the real all-MiniLM-L6-v2
   sentence encoder instead; everything after the embedding step is the same.
"""

# %%
# A dataset with a built-in bias
# ------------------------------
# Captions of people doing everyday things. One activity in three shows a woman at
# the beach or the pool in swimwear; for men, one in twenty.
import matplotlib.pyplot as plt
import numpy as np

from skplice import (
    SpLiCETransformer,
    TextEmbedder,
    concept_differences,
    load_vocabulary,
)

from _offline import local_minilm, use_offline_stand_ins

rng = np.random.default_rng(0)
PEOPLE = {
    "woman": ["a woman", "a young woman", "an elderly woman", "a lady"],
    "man": ["a man", "a young man", "an elderly man", "a gentleman"],
}
EVERYDAY = [
    "reading a book in a cafe",
    "riding a bicycle through the city",
    "cooking dinner in the kitchen",
    "typing on a laptop at the office",
    "walking a dog in the park",
    "waiting at a bus stop in the rain",
    "playing the guitar on a stage",
    "shopping for vegetables at the market",
]
SWIMWEAR = [
    "in swimwear lying on the beach",
    "in a swimsuit by the pool",
    "wearing swimwear on the sand by the sea",
]
P_SWIMWEAR = {"woman": 1 / 3, "man": 1 / 20}

captions, gender = [], []
for group, subjects in PEOPLE.items():
    for _ in range(150):
        place = SWIMWEAR if rng.random() < P_SWIMWEAR[group] else EVERYDAY
        captions.append(f"{rng.choice(subjects)} {rng.choice(place)}")
        gender.append(group)
gender = np.array(gender)

# %%
# Decompose
# ---------
OFFLINE = use_offline_stand_ins()
text = TextEmbedder(local_minilm() if OFFLINE else "all-MiniLM-L6-v2")
X = text.transform(captions)
concepts = load_vocabulary("laion", 10_000, clean=True)
splice = SpLiCETransformer(l1=0.25, vocabulary=concepts, encoder=text)
W = splice.fit_transform(X)

# %%
# Which concepts differ between the groups?
# -----------------------------------------
# :func:`~skplice.concept_differences` runs Fisher's exact test on each concept's
# presence in the target group versus the rest, adjusts the p-values for the 10,000
# concepts tested (Benjamini-Hochberg), and ranks the concepts, most significant
# first. ``alternative="greater"`` keeps the concepts over-represented among women.
table = concept_differences(W, gender, target="woman", alternative="greater")
significant = table[table.p_adjusted < 0.01]
significant[
    [
        "concept",
        "prevalence_target",
        "prevalence_rest",
        "cohens_h",
        "p_adjusted",
    ]
].head(12)

# %%
# Two kinds of concepts come out. Most describe the label itself: *woman*, *lady*,
# *grandma*, and first names that the sentence encoder associates with women. A
# classifier *should* use them. The others describe the context that this dataset
# attached to the label: *swimwear*, *sand*, *shores*. A classifier that relies on
# those is right on this dataset for the wrong reason, and wrong on photos of men at
# the beach. The plot marks the concepts that are also present among men, the first
# hint that a concept is not about the label.
top = significant.head(20).iloc[::-1]
also_in_men = top.prevalence_rest > 0
fig, ax = plt.subplots(figsize=(7, 6), layout="constrained")
positions = np.arange(len(top))
ax.barh(positions + 0.2, top.prevalence_target, height=0.4, label="women")
ax.barh(positions - 0.2, top.prevalence_rest, height=0.4, label="men")
ax.set_yticks(positions, labels=top.concept)
for label, flagged in zip(ax.get_yticklabels(), also_in_men, strict=True):
    if flagged:
        label.set_fontweight("bold")
ax.set_xlabel("prevalence (fraction of captions with the concept)")
ax.set_title(
    "Concepts over-represented among captions of women\n(bold: also found among men)"
)
ax.legend(loc="lower right")
plt.show()

# %%
# What next
# ---------
# Once found, a spurious concept can be removed before training a probe, with
# :class:`~skplice.ConceptEditor`: see
# :ref:`sphx_glr_auto_examples_plot_edit_probe.py`. To follow such concepts over time
# instead of across groups, see :ref:`sphx_glr_auto_examples_plot_distribution_shift.py`.
