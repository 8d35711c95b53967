"""
=========================================
Regularization path and choosing ``l1``
=========================================

``l1`` sets how many concepts SpLiCE keeps. This example follows one embedding along
the regularization path (its concept weights as ``l1`` decreases), then chooses ``l1``
for a downstream task with a grid search, computing the embeddings once, up front.

.. note::

   **Which model.** With images, embed them and the vocabulary with
   ``CLIPEmbedder("ViT-B-32", "laion2b_s34b_b79k")``, the SpLiCE paper's backbone, on
   which ``l1=0.2`` keeps roughly 10 to 30 concepts per image. To run offline, this
   example decomposes *captions* embedded by the real all-MiniLM-L6-v2 sentence
   encoder; the numbers of concepts differ, the method does not.
"""

# %%
# Captions and their embeddings
# -----------------------------
# Embedding is the expensive step (a CLIP forward pass per image) and has nothing to
# learn, so it runs once here, before anything is tuned.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline

from skplice import SpLiCETransformer, TextEmbedder, load_vocabulary

from _offline import local_minilm, use_offline_stand_ins

rng = np.random.default_rng(0)
PEOPLE = ["a man", "a woman", "two children", "an old couple", "a student"]
ACTIVITIES = [
    "drinking coffee",
    "reading a newspaper",
    "talking on the phone",
    "eating a sandwich",
    "listening to music",
]
PLACES = {  # the label is the place, the least salient part of each caption
    "kitchen": [
        "next to the stove",
        "by the fridge",
        "at the kitchen counter",
    ],
    "garden": ["among the flower beds", "on the lawn", "under the apple tree"],
    "office": [
        "at a desk with a computer",
        "in the meeting room",
        "by the photocopier",
    ],
}
captions, y = [], []
for label, places in PLACES.items():
    for _ in range(40):
        captions.append(
            f"{rng.choice(PEOPLE)} {rng.choice(ACTIVITIES)} {rng.choice(places)}"
        )
        y.append(label)
y = np.array(y)

OFFLINE = use_offline_stand_ins()
text = TextEmbedder(local_minilm() if OFFLINE else "all-MiniLM-L6-v2")
X = text.transform(captions)
concepts = load_vocabulary("laion", 10_000, clean=True)
splice = SpLiCETransformer(vocabulary=concepts, encoder=text).fit(X)

# %%
# One embedding along the path
# ----------------------------
# :meth:`~skplice.SpLiCETransformer.regularization_path` solves several penalties at
# once, each warm-starting the next. At a large ``l1`` a single concept explains the
# caption; as ``l1`` decreases, more concepts enter and the weights of the first ones
# shrink as others share the work.
l1_values = np.geomspace(0.04, 1.0, 30)
path = splice.regularization_path(X[:1], l1_values)
weights = np.vstack([W.toarray() for W in path])  # (n_l1, n_concepts)
names = splice.get_feature_names_out()
ever = np.flatnonzero(weights.max(axis=0) > 0)
shown = ever[np.argsort(weights[:, ever].max(axis=0))[::-1][:10]]

fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
for j in shown:
    ax.plot(l1_values, weights[:, j], label=names[j])
ax.set_xscale("log")
ax.invert_xaxis()
ax.set_xlabel("l1 (decreasing)")
ax.set_ylabel("concept weight")
ax.set_title(f"{captions[0]!r}: its 10 heaviest concepts along the path")
ax.legend(ncols=2, fontsize="small")
plt.show()

# %%
# How many concepts, how faithful
# -------------------------------
# Over all captions: the mean number of concepts and the mean cosine similarity
# between each embedding and its reconstruction from the concepts. (Small penalties
# keep hundreds of concepts and take longer to solve; this grid starts at 0.1.)
l1_values = np.geomspace(0.1, 1.0, 20)
path = splice.regularization_path(X, l1_values)
unit_X = X / np.linalg.norm(X, axis=1, keepdims=True)
summary = pd.DataFrame(
    {
        "l1": l1_values,
        "mean_l0": [np.diff(W.indptr).mean() for W in path],
        "mean_cosine": [
            (unit_X * splice.inverse_transform(W)).sum(axis=1).mean()
            for W in path
        ],
    }
)
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
ax.plot(summary.l1, summary.mean_l0, color="tab:blue", marker=".")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("l1")
ax.set_ylabel("mean number of concepts", color="tab:blue")
twin = ax.twinx()
twin.plot(summary.l1, summary.mean_cosine, color="tab:orange", marker=".")
twin.set_ylabel("mean cosine(embedding, reconstruction)", color="tab:orange")
plt.show()

# %%
# Choose ``l1`` for a task
# ------------------------
# A linear probe on concept weights, with ``l1`` as a hyper-parameter of the
# pipeline. The pipeline starts from the embeddings computed above: a
# :class:`~skplice.CLIPEmbedder` inside the searched pipeline would embed every image
# again for every fold and every candidate (``Pipeline(memory=...)`` would not help:
# it caches ``fit_transform`` but not the ``transform`` of validation folds).
probe = make_pipeline(
    SpLiCETransformer(vocabulary=concepts, encoder=text),
    LogisticRegression(max_iter=1000),
)
search = GridSearchCV(
    probe,
    {"splicetransformer__l1": [0.2, 0.3, 0.5, 0.8, 1.2]},
    cv=StratifiedKFold(5, shuffle=True, random_state=0),
)
search.fit(X, y)
results = pd.DataFrame(search.cv_results_)[
    ["param_splicetransformer__l1", "mean_test_score", "std_test_score"]
]
results

# %%
# The label of these captions is their place, the least salient part of each. The
# largest penalties leave one or two concepts per caption, or none, rarely the
# place, and the probe falls toward chance; smaller penalties keep the place among
# the concepts.
# :attr:`~sklearn.model_selection.GridSearchCV.best_params_` holds the winner:
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.errorbar(
    results.param_splicetransformer__l1.astype(float),
    results.mean_test_score,
    yerr=results.std_test_score,
    marker="o",
    capsize=3,
)
ax.axhline(1 / 3, color="grey", linestyle=":", label="chance")
ax.set_xscale("log")
ax.set_xlabel("l1")
ax.set_ylabel("cross-validated accuracy")
ax.legend()
plt.show()
print(search.best_params_)
