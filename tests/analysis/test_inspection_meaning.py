"""Inspection and editing where meaning matters: real MiniLM sentence embeddings decomposed
into the 2,000 most frequent LAION words."""

import shutil

import numpy as np
import pytest

from skplice import (
    ConceptEditor,
    SpLiCETransformer,
    TextEmbedder,
    class_concept_summary,
    concept_differences,
    edit_embeddings,
    format_top_concepts,
    load_vocabulary,
    probe_report,
    top_concepts,
)

BEACH = [
    "a sunny day at the beach with waves and sand",
    "children building sandcastles on the beach",
    "surfers riding big waves near the shore",
    "a family relaxing under an umbrella on the sandy beach",
    "palm trees along a tropical beach at sunset",
    "people swimming in the ocean on a hot summer day",
    "a lifeguard tower on an empty beach",
    "seagulls flying over the sea and the sand",
    "a couple walking barefoot along the shoreline",
    "beach towels and sunscreen on the sand",
    "a dog running on the beach",
    "kids playing volleyball on the beach",
    "footprints in the wet sand by the ocean",
    "a wooden pier stretching into the sea",
    "sunbathers lying on the beach",
    "waves crashing on a rocky coast",
]
OFFICE = [
    "people working at desks in an open-plan office",
    "a business meeting in a conference room",
    "an employee typing on a laptop at her desk",
    "a printer and a stack of papers in the office",
    "colleagues discussing a report in the office",
    "a manager giving a presentation with slides",
    "office chairs and computers in a workspace",
    "a man answering emails at his office desk",
    "coworkers drinking coffee in the office kitchen",
    "a whiteboard covered with notes in a meeting room",
    "a receptionist at the front desk of a company",
    "an accountant reviewing spreadsheets on a monitor",
    "a team video call in a modern office",
    "files and folders on a desk at work",
    "a businessman in a suit in his office",
    "a cubicle with a phone and a computer",
]
SEASIDE = {"beach", "beaches", "sand", "sandy", "waves", "wave", "sea", "ocean", "shore", "surf"}
WORKPLACE = {"office", "offices", "desk", "desks", "meeting", "business", "employees", "work"}


@pytest.fixture(scope="module")
def sentences(minilm_path, vocab_source_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("skplice_home")
    (home / "vocabularies").mkdir()
    shutil.copy(vocab_source_dir / "laion.txt", home / "vocabularies" / "laion.txt")
    names = load_vocabulary("laion", 2000, data_home=home)
    # Large batches: most of the time per batch is fixed overhead for one-word texts.
    embedder = TextEmbedder(minilm_path, device="cpu", batch_size=1024)
    concepts = embedder.encode_text(names)
    X = embedder.encode_text(BEACH + OFFICE)
    splice = SpLiCETransformer(l1=0.2, dictionary=concepts, concept_names=names).fit(X)
    y = np.repeat(["beach", "office"], [len(BEACH), len(OFFICE)])
    return {"embedder": embedder, "splice": splice, "X": X, "W": splice.transform(X), "y": y}


def test_top_concepts_name_what_a_sentence_is_about(sentences):
    W = sentences["W"]
    dog_on_beach = BEACH.index("a dog running on the beach")
    top = top_concepts(W, n=5).query(f"sample == {dog_on_beach}")["concept"].tolist()
    assert set(top) & SEASIDE and set(top) & {"dog", "dogs", "puppy", "animal", "canine"}
    open_plan = len(BEACH) + OFFICE.index("people working at desks in an open-plan office")
    office_line = format_top_concepts(W, n=3)[open_plan]
    assert any(word in office_line for word in WORKPLACE), office_line


def test_class_summaries_name_each_class(sentences):
    summary = class_concept_summary(sentences["W"], sentences["y"], top=5)
    beach = summary[summary["class"] == "beach"]["concept"].tolist()
    office = summary[summary["class"] == "office"]["concept"].tolist()
    assert len(set(beach) & SEASIDE) >= 3, beach
    assert len(set(office) & WORKPLACE) >= 2, office


def test_group_differences_find_seaside_concepts_for_the_beach_group(sentences):
    table = concept_differences(sentences["W"], sentences["y"], "beach", alternative="greater")
    top = table.head(3)
    assert set(top["concept"]) & SEASIDE, top
    assert (top["prevalence_rest"] == 0).all() and top["p_value"].iloc[0] < 0.01


def test_probe_relies_on_meaningful_concepts(sentences):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    probe = make_pipeline(ConceptEditor(), LogisticRegression(C=10)).fit(
        sentences["W"], sentences["y"]
    )
    report = probe_report(probe, top=5)
    for_office = report[report["direction"] == "positive"]["concept"].tolist()
    against = report[report["direction"] == "negative"]["concept"].tolist()
    assert set(for_office) & WORKPLACE, for_office
    assert set(against) & SEASIDE, against


def test_editing_out_the_beach_moves_embeddings_away_from_beach(sentences):
    embedder, splice, X = sentences["embedder"], sentences["splice"], sentences["X"]
    beach_text = embedder.encode_text(["the beach"])[0]
    dog_text = embedder.encode_text(["a dog"])[0]
    seaside = sorted(SEASIDE & set(splice.concept_names_))
    X_beach = X[: len(BEACH)]
    unedited = splice.inverse_transform(splice.transform(X_beach))
    edited = edit_embeddings(X_beach, splice, remove=["seaside"], groups={"seaside": seaside})
    assert np.mean(edited @ beach_text) < np.mean(unedited @ beach_text) - 0.1
    columns = np.flatnonzero(np.isin(splice.concept_names_, seaside))
    before = splice.transform(X_beach)[:, columns].sum()
    assert splice.transform(edited)[:, columns].sum() < 0.3 * before
    dog = BEACH.index("a dog running on the beach")
    # The rest of the sentence stays: the dog is still there.
    assert edited[dog] @ dog_text > unedited[dog] @ dog_text - 0.05
