"""
=========================================
Edit a probe by removing a concept
=========================================

A linear probe trained on SpLiCE concept weights reads as words, so a shortcut it
learned can be found by name and removed: drop the concept with
:class:`~skplice.ConceptEditor` before the classifier, and train again. This is the
SpLiCE paper's model editing.

Here a probe learns to tell dogs from cats in a training set where dogs are nearly
always on the beach and cats indoors. It learns the background. Removing the beach
and indoor concepts makes it use the animals' behaviour instead, which still holds
when the backgrounds are swapped.

.. note::

   **Which model.** On images (e.g. the Waterbirds dataset, whose backgrounds are a
   well-known shortcut), embed them and the vocabulary with
   ``CLIPEmbedder("ViT-B-32", "laion2b_s34b_b79k")``, the paper's backbone. To run
   offline, this example decomposes *captions* embedded by the real all-MiniLM-L6-v2
   sentence encoder; the steps after the embedding are the same.
"""

# %%
# Captions with a shortcut
# ------------------------
# Each caption names a pet vaguely ("a pet", "a furry animal"), says what it does (the
# real cue: barking or purring) and where it is. In the training set, 95% of dogs are
# on the beach and 95% of cats indoors; in the "swapped" test set it is the opposite.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skplice import (
    ConceptEditor,
    SpLiCETransformer,
    TextEmbedder,
    load_vocabulary,
    probe_report,
)

from _offline import local_minilm, use_offline_stand_ins

rng = np.random.default_rng(0)
PETS = [
    "a pet",
    "a furry animal",
    "a young pet",
    "our family pet",
    "the animal",
]
BEHAVIOUR = {
    "dog": [
        "barking loudly",
        "wagging its tail",
        "fetching a stick",
        "chewing a bone",
    ],
    "cat": [
        "purring softly",
        "playing with a ball of yarn",
        "licking its paws",
        "meowing",
    ],
}
PLACES = {
    "dog": [
        "on the sandy beach",
        "by the ocean waves",
        "running along the shore",
    ],
    "cat": [
        "on the living room sofa",
        "by the fireplace",
        "on the bedroom carpet",
    ],
}


def make_captions(n, p_usual_place):
    """``n`` captions per class; each is in its class's usual place with this probability."""
    captions, labels = [], []
    for label, other in [("dog", "cat"), ("cat", "dog")]:
        for _ in range(n):
            place = (
                PLACES[label]
                if rng.random() < p_usual_place
                else PLACES[other]
            )
            captions.append(
                f"{rng.choice(PETS)} {rng.choice(BEHAVIOUR[label])} {rng.choice(place)}"
            )
            labels.append(label)
    return captions, np.array(labels)


train_text, y_train = make_captions(150, p_usual_place=0.95)
usual_text, y_usual = make_captions(100, p_usual_place=0.95)
swapped_text, y_swapped = make_captions(100, p_usual_place=0.05)
print(train_text[:2], swapped_text[:2], sep="\n")

# %%
# Embed once, then train a probe on concepts
# ------------------------------------------
# Embedding is the expensive step and has nothing to learn: it runs once, up front.
OFFLINE = use_offline_stand_ins()
text = TextEmbedder(local_minilm() if OFFLINE else "all-MiniLM-L6-v2")
X_train, X_usual, X_swapped = (
    text.transform(t) for t in (train_text, usual_text, swapped_text)
)

concepts = load_vocabulary("laion", 10_000, clean=True)
splice = SpLiCETransformer(l1=0.25, vocabulary=concepts, encoder=text)
probe = make_pipeline(splice, LogisticRegression(C=0.5, max_iter=1000))
probe.fit(X_train, y_train)
print(f"accuracy, usual backgrounds:   {probe.score(X_usual, y_usual):.2f}")
print(
    f"accuracy, swapped backgrounds: {probe.score(X_swapped, y_swapped):.2f}"
)

# %%
# Read the probe
# --------------
# :func:`~skplice.probe_report` lists the concepts with the largest coefficients.
# For a binary probe they are reported for ``classes_[1]`` ("dog"): positive
# coefficients are evidence for a dog, negative ones for a cat. Places (*shore*,
# *beach*, *carpet*, *fireplace*) rank among the behaviours.
report = probe_report(probe, top=8)
report.pivot(index="rank", columns="direction", values="concept")

# %%
# Remove the places
# -----------------
# :class:`~skplice.ConceptEditor` zeroes the named concepts before the classifier
# sees them. ``groups`` names a set of concepts; a misspelt name raises an error that
# suggests the closest concepts, so an edit cannot silently miss.
places = {
    "beach scene": "beach beaches sand sandy ocean waves shore coastal".split(),
    "home scene": "sofa living fireplace bedroom carpet".split(),
}
edited = make_pipeline(
    splice,
    ConceptEditor(remove=["beach scene", "home scene"], groups=places),
    LogisticRegression(C=0.5, max_iter=1000),
)
edited.fit(X_train, y_train)
probe_report(edited, top=8).pivot(
    index="rank", columns="direction", values="concept"
)

# %%
# Compare the two probes
# ----------------------
# The original probe is nearly perfect on the usual backgrounds and far below chance
# on swapped ones: it predicts the place, not the animal. Without the places it stays
# as accurate on the usual backgrounds and recovers on the swapped ones, because the
# behaviours it now relies on do not depend on the background.


def accuracies(model):
    """Accuracy of a probe on both test sets."""
    return {
        "usual backgrounds": model.score(X_usual, y_usual),
        "swapped backgrounds": model.score(X_swapped, y_swapped),
    }


scores = pd.DataFrame(
    {"original probe": accuracies(probe), "places removed": accuracies(edited)}
)
ax = scores.T.plot.bar(rot=0, ylim=(0, 1.2), ylabel="accuracy", figsize=(6, 4))
ax.axhline(0.5, color="grey", linestyle=":", label="chance")
ax.legend(loc="upper center", ncols=3, fontsize="small")
ax.set_title("Dog vs cat probe on concept weights")
plt.show()
scores.round(2)

# %%
# Removing a concept removes its *weight*, not every trace of the background:
# related concepts that were not listed (other beach words) can carry part of it.
# Read the edited probe's report and extend the groups until no place remains.
