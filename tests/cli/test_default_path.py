"""The default path a new user hits, end to end and offline.

No pretrained weights can be downloaded here, so a random-weight ViT-B-32 checkpoint is laid
out in a Hugging Face cache exactly where ``CLIPEmbedder()`` (ViT-B-32, laion2b_s34b_b79k)
looks for it, and the hub is put offline: every step of the default path then runs as on a
user's machine (the weights found in the hub cache, the vocabulary and the published mean
in SKPLICE_HOME, the 10,000 concepts encoded and cached, the photo explained), only with
meaningless concepts. The concept encoding is the slow part (10,000 texts through the text
tower on the CPU); both tests share one SKPLICE_HOME, so it happens once per run.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skplice import CLIPEmbedder, SpLiCETransformer, load_image_mean, load_vocabulary

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README_IMAGE = "examples/images/astronaut.jpg"
MODEL, PRETRAINED = "ViT-B-32", "laion2b_s34b_b79k"
PUBLISHED = f"published mean of {MODEL} {PRETRAINED}"
WEIGHTS_FILE = "open_clip_pytorch_model.bin"
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # any revision id; refs/main names it


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hub_cache_with_random_weights(hub_cache):
    """Lay out the default model's repository as huggingface_hub caches it.

    ``models--<org>--<name>/blobs/<sha256>`` holds the file, ``snapshots/<commit>/<file>``
    links to it and ``refs/main`` names the commit: what ``hf_hub_download`` reads offline.
    """
    open_clip = pytest.importorskip("open_clip")
    torch = pytest.importorskip("torch")
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.file_download import repo_folder_name

    repo_id = open_clip.pretrained.get_pretrained_cfg(MODEL, PRETRAINED)["hf_hub"].strip("/")
    repo = hub_cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    (repo / "blobs").mkdir(parents=True)
    staged = repo / "blobs" / "staged"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.create_model(MODEL, pretrained=None)
    torch.save(model.state_dict(), staged)
    del model
    blob = staged.rename(repo / "blobs" / _sha256(staged))
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / WEIGHTS_FILE).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    found = try_to_load_from_cache(repo_id, WEIGHTS_FILE, cache_dir=hub_cache)
    assert found == str(snapshot / WEIGHTS_FILE)
    return repo_id


@pytest.fixture(scope="module")
def default_path(tmp_path_factory, vocab_source_dir, means_source_dir):
    """``(env, hub_cache, skplice_home)``: the default model, vocabulary and mean, offline."""
    folder = tmp_path_factory.mktemp("default-path")
    hf_home = folder / "hf-home"
    _hub_cache_with_random_weights(hf_home / "hub")
    home = folder / "skplice-home"
    for subfolder, source, name in (
        ("vocabularies", vocab_source_dir, "laion.txt"),
        ("means", means_source_dir, "open_clip_ViT-B-32_image.pt"),
    ):
        (home / subfolder).mkdir(parents=True)
        shutil.copyfile(source / name, home / subfolder / name)
    env = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")
    }
    env.update(
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1",
        SKPLICE_HOME=str(home),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    yield env, hf_home / "hub", home
    from skplice.embedding import clear_model_cache

    clear_model_cache()  # a ViT-B-32 is 600 MB


@pytest.fixture
def in_process(default_path, monkeypatch):
    """This process sees the same hub cache (read when called) and SKPLICE_HOME."""
    constants = pytest.importorskip("huggingface_hub.constants")
    _, hub_cache, home = default_path
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("SKPLICE_HOME", str(home))
    return home


def test_readme_first_command_explains_the_photo_with_the_published_mean(default_path, in_process):
    env, _, _ = default_path
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)[0].strip()
    command = first.split("&&")[-1].strip()  # after the installation steps
    assert command == f"skplice explain {README_IMAGE}"
    if shutil.which("skplice", path=env["PATH"]) is None:
        pytest.skip("the skplice command is not installed (pip install -e .)")
    result = subprocess.run(
        command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "note:" not in result.stderr and "Traceback" not in result.stderr

    centring, blank, header, *lines = result.stdout.splitlines()
    assert centring == f"centred by the {PUBLISHED}" and blank == ""
    match = re.fullmatch(
        rf"{README_IMAGE}  \((\d+) concepts(, top 10 shown)?; cosine (\d\.\d\d)\)", header
    )
    assert match, header
    n_concepts, cosine = int(match.group(1)), float(match.group(3))
    assert 0 < n_concepts and len(lines) == min(n_concepts, 10)

    # The same, in Python: the paper's method, centred by the published mean (the
    # concept dictionary encoded by the command is now cached, so this is quick).
    X = CLIPEmbedder().transform([str(ROOT / README_IMAGE)])
    splice = SpLiCETransformer(image_mean="published").fit(X)
    mean = load_image_mean(MODEL, PRETRAINED)
    np.testing.assert_array_equal(splice.image_mean_, mean)
    W = splice.transform(X)
    given = SpLiCETransformer(image_mean=mean).fit(X)  # the same mean, as an array
    np.testing.assert_array_equal(given.transform(X).toarray(), W.toarray())
    assert W.nnz == n_concepts
    # What the command calls the cosine: between the centred embedding and the weighted
    # sum of its concepts (the two sides of SpLiCE's approximation).
    centred = X[0] / np.linalg.norm(X[0]) - splice.image_mean_
    explained = np.asarray(W @ splice.components_)[0]
    expected = centred @ explained / (np.linalg.norm(centred) * np.linalg.norm(explained))
    assert cosine == pytest.approx(expected, abs=0.006)
    order = np.argsort(-W.data, kind="stable")[:10]
    names = splice.get_feature_names_out()[W.indices[order]]
    assert lines == [f"  {w:.3f}  {name}" for w, name in zip(W.data[order], names, strict=True)]


def test_default_pipeline_with_the_published_mean(default_path, in_process):
    from skimage import data
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    images = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.cat()]
    y = [0, 1, 0, 0, 1]
    probe = make_pipeline(
        CLIPEmbedder(), SpLiCETransformer(l1=0.2, image_mean="published"), LogisticRegression()
    ).fit(images, y)
    splice = probe[1]
    assert splice.clip_model_ == f"{MODEL} {PRETRAINED}"
    assert splice.image_mean_source_ == "published"
    np.testing.assert_array_equal(splice.image_mean_, load_image_mean(MODEL, PRETRAINED))
    assert list(splice.get_feature_names_out()) == load_vocabulary("laion", 10_000)
    W = probe[:-1].transform(images)
    assert W.shape == (5, 10_000) and (W.getnnz(axis=1) > 0).all()
    assert probe.predict(images).shape == (5,)
