"""
====================================
Monitor distribution shift over time
====================================

A model in production sees data that drift: seasons change, new objects appear, a
camera is moved. Decomposing the incoming embeddings into concepts turns the drift
into words. :func:`~skplice.concept_shift_over_time` compares the prevalence of every
concept in each time window with a reference window and tests the differences.

.. note::

   **Which model.** For a stream of images, embed them and the vocabulary with
   ``CLIPEmbedder("ViT-B-32", "laion2b_s34b_b79k")``, the SpLiCE paper's backbone.
   To run offline, this example decomposes *captions* embedded by the real
   all-MiniLM-L6-v2 sentence encoder; the steps after the embedding are the same.
"""

# %%
# Twelve weeks of a street camera
# -------------------------------
# Sixty timestamped captions a week, from autumn into winter: snow appears in the
# sixth week and becomes common, and electric scooters show up in the last weeks.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from skplice import (
    SpLiCETransformer,
    TextEmbedder,
    concept_shift,
    concept_shift_over_time,
    load_vocabulary,
)

from _offline import local_minilm, use_offline_stand_ins

rng = np.random.default_rng(0)
SUBJECTS = [
    "a car",
    "a bus",
    "a cyclist",
    "a woman with an umbrella",
    "a delivery van",
]
SCENES = [
    "on a busy street",
    "at a crossing",
    "next to a shop",
    "under the streetlights",
]
SNOWY = ["on a snowy street", "in the falling snow", "next to a pile of snow"]
SCOOTER = "a man riding an electric scooter"

weeks = pd.date_range("2024-10-07", periods=12, freq="W-MON")
captions, dates = [], []
for week, start in enumerate(weeks):
    p_snow = 0.0 if week < 5 else min(0.1 * (week - 4), 0.6)
    p_scooter = 0.0 if week < 9 else 0.25
    for _ in range(60):
        subject = SCOOTER if rng.random() < p_scooter else rng.choice(SUBJECTS)
        scene = rng.choice(SNOWY if rng.random() < p_snow else SCENES)
        captions.append(f"{subject} {scene}")
        dates.append(start + pd.Timedelta(days=int(rng.integers(7))))
dates = pd.DatetimeIndex(dates)

# %%
# Decompose
# ---------
# The transformer's centring mean is fitted on the reference period only (the first
# four weeks), as a model deployed then would have been.
OFFLINE = use_offline_stand_ins()
text = TextEmbedder(local_minilm() if OFFLINE else "all-MiniLM-L6-v2")
X = text.transform(captions)
concepts = load_vocabulary("laion", 10_000, clean=True)
splice = SpLiCETransformer(l1=0.25, vocabulary=concepts, encoder=text)
reference_period = dates < weeks[4]
splice.fit(X[reference_period])
W = splice.transform(X)

# %%
# Compare each week with the first
# --------------------------------
# ``freq="W"`` groups the timestamps into weeks. The long table has one row per week
# and concept, with the prevalence, its difference from the reference week and an
# adjusted p-value.
table = concept_shift_over_time(W, dates, freq="W", alternative="greater")
last_week = table[table.window == table.window.max()]
last_week.nsmallest(8, "p_adjusted")[
    ["concept", "prevalence", "prevalence_diff", "p_adjusted"]
]

# %%
# Plot the concepts that shifted most
# -----------------------------------
# The concepts that grew most over the reference in any week, with their prevalence
# week by week: the snow words rise from the sixth week, *electric* (the scooters)
# from the tenth. The table above also shows that the words standing for a new object
# may be loose ones (here a few that the sentence encoder places near the scooter
# captions): read them as a signal to look at the samples that carry them.
shifted = (
    table[table.p_adjusted < 0.01]
    .groupby("concept")
    .prevalence_diff.max()
    .nlargest(6)
    .index
)
prevalence = table.pivot(
    index="window", columns="concept", values="prevalence"
)[shifted]
ax = prevalence.plot(marker="o", figsize=(8, 4.5))
ax.set_xlabel("week")
ax.set_ylabel("prevalence (fraction of captions)")
ax.set_title("Concepts whose prevalence grew after the reference week")
plt.show()

# %%
# One reference set against one new batch
# ---------------------------------------
# :func:`~skplice.concept_shift` compares two sets directly, e.g. the data a model was
# trained on and this week's data.
names = splice.get_feature_names_out()
last = dates >= weeks[-1]
shift = concept_shift(
    W[reference_period], W[last], concept_names=names, alternative="greater"
)
shift.head(6)[
    ["concept", "prevalence_new", "prevalence_reference", "p_adjusted"]
]
