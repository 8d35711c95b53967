"""Smoke tests of the embedding benchmarks (text encoding, grid search) at tiny sizes."""

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:No pretrained weights")]


@pytest.fixture
def bench(monkeypatch, tmp_path, vocab_source_dir):
    """Import a benchmarks module, reading the shared vocabularies; results go to tmp_path."""
    monkeypatch.syspath_prepend(str(ROOT))
    data = importlib.import_module("benchmarks._data")
    monkeypatch.setattr(data, "VOCAB_DIR", vocab_source_dir)

    def load(name):
        return importlib.import_module(f"benchmarks.{name}")

    return load, ["--results-dir", str(tmp_path / "results")]


def test_text_encoding_short_context_agrees_and_is_faster(bench, tiny_clip, tmp_path):
    load, results = bench
    args = ["--model", tiny_clip, "--n-words", "60", "--full-subset", "30", "--skip-cli"]
    table = load("text_encoding").main([*args, *results]).set_index("encoding")
    full, short = table.index
    assert "full context" in full and "short context" in short
    assert table.loc[short, "words"] == 60
    assert "max |diff|" in table.loc[short, "note"]
    assert (table["wall (s)"] > 0).all() and (table["CPU (s)"] > 0).all()
    assert {p.suffix for p in (tmp_path / "results").iterdir()} == {".csv", ".md"}


def test_grid_search_counts_each_image_once_with_the_cache(bench, tiny_clip):
    load, results = bench
    args = ["--model", tiny_clip, "--images", "12", "--cv", "2", "--vocabulary-size", "40"]
    table = load("grid_search").main([*args, *results]).set_index("run")
    embedded = table["images embedded"].tolist()
    # 2 folds x 3 candidates x 12 images + the refit; then once; then never; then once
    assert embedded == [7 * 12, 12, 0, 12]
    assert table["cache hits"].tolist() == [0, 6 * 12, 7 * 12, 0]
    assert (table["max |score diff|"] < 1e-12).all()
