"""Shared fixtures for the skplice test suite."""

import os
from pathlib import Path

import pytest

# Nothing in the test suite may reach a model hub: real users have internet, CI does not.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


VOCAB_FILES = ("laion.txt", "laion_bigrams.txt", "mscoco.txt")


def _find_vocab_source_dir():
    env = os.environ.get("SKPLICE_TEST_VOCAB_DIR")
    # An explicit folder is the only candidate: falling back would hide a typo.
    candidates = (
        [Path(env)]
        if env
        else [
            Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "vocab",
            Path("/work/shared/data/vocab"),
        ]
    )
    for folder in candidates:
        if all((folder / name).is_file() for name in VOCAB_FILES):
            return folder.resolve()
    return None


@pytest.fixture(scope="session")
def vocab_source_dir():
    """Folder holding the real vocabulary files (laion, laion_bigrams, mscoco)."""
    folder = _find_vocab_source_dir()
    if folder is None:
        pytest.skip(
            "the real vocabulary files were not found (SKPLICE_TEST_VOCAB_DIR, "
            "<repo>/../shared/data/vocab, /work/shared/data/vocab): set "
            f"SKPLICE_TEST_VOCAB_DIR to a folder holding {', '.join(VOCAB_FILES)}"
        )
    return folder


@pytest.fixture
def skplice_home(tmp_path, monkeypatch):
    """An empty temporary skplice cache folder, set as SKPLICE_HOME."""
    home = tmp_path / "skplice_home"
    home.mkdir()
    monkeypatch.setenv("SKPLICE_HOME", str(home))
    return home


@pytest.fixture
def vocab_home(skplice_home, vocab_source_dir):
    """SKPLICE_HOME with the real vocabularies already cached, so no download happens."""
    folder = skplice_home / "vocabularies"
    folder.mkdir()
    for name in VOCAB_FILES:
        (folder / name).write_bytes((vocab_source_dir / name).read_bytes())
    return skplice_home
