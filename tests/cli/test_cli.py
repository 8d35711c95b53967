"""The ``skplice`` command, end to end (subprocesses) and in process (``main([...])``).

Subprocess tests run ``python -m skplice`` as a user would, with a temporary
SKPLICE_HOME holding the real vocabularies and the Hugging Face Hub offline; the many
error cases call :func:`skplice.cli.main` in process, which is faster.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from skplice import CLIPEmbedder, SpLiCETransformer, __version__
from skplice.cli import build_parser, main
from skplice.cli._inputs import load_matrix

ROOT = Path(__file__).resolve().parents[2]
README_IMAGE = "examples/images/astronaut.jpg"
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat", "hubble_deep_field")


# ------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """Real photos (scikit-image's sample data) saved as JPEG files, and a broken one."""
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        Image.fromarray(getattr(data, name)()).save(folder / f"{name}.jpg", quality=90)
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG file")
    return folder


def photos(folder, n=None):
    paths = [str(folder / f"{name}.jpg") for name in PHOTOS]
    return paths if n is None else [paths[i % len(paths)] for i in range(n)]


@pytest.fixture
def tiny(tiny_clip_config_path, vocab_home):
    """Model options of the tiny random open_clip architecture (no download).

    SKPLICE_HOME is a temporary folder holding the real vocabularies.
    """
    return ["--model-config", str(tiny_clip_config_path), "--device", "cpu"]


@pytest.fixture
def cli_env(vocab_home, tmp_path):
    """Environment of a subprocess: this checkout, offline hub, temporary caches."""
    env = dict(os.environ)
    env.update(
        SKPLICE_HOME=str(vocab_home),
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf-home"),  # empty: nothing is found in a user's cache
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return env


def run_cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "skplice", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def call(capsys, *args):
    """``main(args)`` in process: (exit status, stdout, stderr)."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def embeddings(tmp_path):
    """Random 32-d embeddings (float32) and a 50-concept dictionary with names, saved."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 32)).astype(np.float32)
    dictionary = rng.normal(size=(50, 32))
    names = [f"word{i}" for i in range(50)]
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "concepts.npy", dictionary)
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    return X, dictionary, names


def assert_same_sparse(A, B):
    A, B = sp.csr_matrix(A), sp.csr_matrix(B)
    assert A.shape == B.shape and A.dtype == B.dtype
    np.testing.assert_array_equal(A.indptr, B.indptr)
    np.testing.assert_array_equal(A.indices, B.indices)
    np.testing.assert_array_equal(A.data, B.data)  # bit for bit


# ------------------------------------------------------------------- the command itself


@pytest.mark.slow
def test_help_explains_the_commands_and_exit_codes(cli_env):
    result = run_cli("--help", env=cli_env)
    assert result.returncode == 0, result.stderr
    for text in ("explain", "embed", "decompose", "exit status", "--pretrained", "offline"):
        assert text.lower() in result.stdout.lower()
    explain = run_cli("explain", "--help", env=cli_env)
    assert explain.returncode == 0
    for option in ("--l1", "--top-k", "--vocabulary", "--json", "--plot", "--image-mean"):
        assert option in explain.stdout
    assert "centring" in explain.stdout


@pytest.mark.slow
def test_version(cli_env):
    result = run_cli("--version", env=cli_env)
    assert result.returncode == 0
    assert result.stdout.strip() == f"skplice {__version__}"


def test_help_imports_no_heavy_library(cli_env):
    """--help answers in about a second: torch, scikit-learn and pandas load lazily."""
    probe = (
        "import sys\n"
        "from skplice.cli import main\n"
        "for args in (['--help'], ['explain', '--help'], ['decompose', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('torch', 'sklearn', 'pandas', 'open_clip', 'matplotlib')\n"
        "print('imported:', sorted(name for name in heavy if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=cli_env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("imported: []"), result.stdout[-300:]


def test_console_script_is_declared():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["skplice"] == "skplice.cli:main"


def test_no_command_prints_help_and_fails(capsys):
    status, _, err = call(capsys)
    assert status == 2 and "explain" in err


def test_help_in_process_returns_zero(capsys):
    status, out, _ = call(capsys, "decompose", "--help")
    assert status == 0 and "concept_names" in out and "memory-mapped" in out


# ------------------------------------------------------------------------- decompose


@pytest.mark.slow
def test_decompose_equals_the_transformer_bit_for_bit(embeddings, tmp_path, cli_env):
    X, dictionary, names = embeddings
    out = tmp_path / "weights.npz"
    result = run_cli(
        "decompose",
        "--input",
        tmp_path / "X.npy",
        "--output",
        out,
        "--dictionary",
        tmp_path / "concepts.npy",
        "--names",
        tmp_path / "names.txt",
        "--l1",
        "0.1",
        "--device",
        "cpu",
        env=cli_env,
    )
    assert result.returncode == 0, result.stderr
    expected = SpLiCETransformer(
        l1=0.1, dictionary=dictionary, concept_names=names, device="cpu"
    ).fit_transform(X)
    W = sp.load_npz(out)
    assert W.dtype == np.float32 and W.nnz > 0
    assert_same_sparse(W, expected)
    with np.load(out, allow_pickle=False) as archive:
        assert archive["concept_names"].tolist() == names


@pytest.mark.slow
def test_decompose_with_a_vocabulary_encoded_by_the_model(tmp_path, cli_env, tiny, tiny_clip):
    X = np.random.default_rng(1).normal(size=(12, 32))
    np.save(tmp_path / "X.npy", X)
    out = tmp_path / "weights.npz"
    args = ["--input", tmp_path / "X.npy", "--output", out, "--vocabulary-size", "300"]
    result = run_cli("decompose", *args, *tiny, "--pretrained", "none", env=cli_env)
    assert result.returncode == 0, result.stderr
    encoder = CLIPEmbedder(tiny_clip, pretrained=None, device="cpu")
    splice = SpLiCETransformer(vocabulary="laion", vocabulary_size=300, encoder=encoder)
    expected = splice.set_params(device="cpu").fit_transform(X)
    assert_same_sparse(sp.load_npz(out), expected)
    with np.load(out) as archive:
        assert list(archive["concept_names"]) == list(splice.get_feature_names_out())


def test_decompose_in_process_matches_and_reports(embeddings, tmp_path, capsys):
    X, dictionary, _ = embeddings
    out = tmp_path / "w.npz"
    args = ["--input", tmp_path / "X.npy", "--output", out, "--dictionary", "concepts.npy"]
    args[-1] = tmp_path / "concepts.npy"
    status, stdout, err = call(capsys, "decompose", *args, "--device", "cpu")
    assert status == 0 and stdout == ""
    assert "wrote" in err and "30 embeddings over 50 concepts" in err
    expected = SpLiCETransformer(dictionary=dictionary, device="cpu")
    assert_same_sparse(sp.load_npz(out), expected.fit_transform(X))
    with np.load(out) as archive:
        assert archive["concept_names"][:2].tolist() == ["concept_0", "concept_1"]


def test_decompose_centring_options(embeddings, tmp_path, capsys):
    X, dictionary, _ = embeddings
    base = ["decompose", "--input", tmp_path / "X.npy", "--dictionary", tmp_path / "concepts.npy"]
    status, _, err = call(capsys, *base, "--output", tmp_path / "a.npz", "--image-mean", "none")
    assert status == 0 and err.rstrip().endswith("; not centred")
    uncentred = SpLiCETransformer(dictionary=dictionary, center=False).fit_transform(X)
    assert_same_sparse(sp.load_npz(tmp_path / "a.npz"), uncentred)

    mean = np.random.default_rng(5).normal(size=32) * 0.1
    np.save(tmp_path / "mean.npy", mean)
    status, _, err = call(
        capsys, *base, "--output", tmp_path / "b.npz", "--image-mean", tmp_path / "mean.npy"
    )
    assert status == 0, err
    assert f"; centred by the mean from {tmp_path / 'mean.npy'}" in err
    given = SpLiCETransformer(dictionary=dictionary, image_mean=mean).fit(X)
    assert_same_sparse(sp.load_npz(tmp_path / "b.npz"), given.transform(X))

    # With no model (a precomputed dictionary), auto centres 30 inputs by their mean.
    status, _, err = call(capsys, *base, "--output", tmp_path / "c.npz")
    assert status == 0 and "; centred by the mean of the 30 inputs" in err
    assert_same_sparse(
        sp.load_npz(tmp_path / "c.npz"), given.set_params(image_mean=None).fit_transform(X)
    )


def test_decompose_progress_bar_and_quiet(embeddings, tmp_path, capsys):
    base = ["decompose", "--input", tmp_path / "X.npy", "--dictionary", tmp_path / "concepts.npy"]
    status, _, err = call(
        capsys, *base, "-o", tmp_path / "w.npz", "--batch-size", "8", "--verbose"
    )
    assert status == 0 and re.search(r"SpLiCE: 100%.*30/30 .*sample", err)  # counts samples
    status, _, err = call(capsys, *base, "-o", tmp_path / "w.npz", "--quiet")
    assert status == 0 and err == ""


def test_decompose_reads_the_input_memory_mapped(embeddings, tmp_path):
    X = load_matrix(tmp_path / "X.npy", "--input", what="embeddings", mmap=True)
    assert isinstance(X, np.memmap) and not X.flags.writeable


def test_a_failed_write_leaves_no_file(embeddings, tmp_path, capsys, monkeypatch):
    out = tmp_path / "w.npz"
    out.write_bytes(b"previous contents")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    status, _, err = call(
        capsys,
        "decompose",
        "--input",
        tmp_path / "X.npy",
        "--dictionary",
        tmp_path / "concepts.npy",
        "--output",
        out,
    )
    assert status == 1 and "No space left on device" in err
    assert out.read_bytes() == b"previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "X.npy",
        "concepts.npy",
        "names.txt",
        "w.npz",
    ]


# --------------------------------------------------------------------------- explain


@pytest.mark.slow
def test_explain_with_random_weights_and_a_checkpoint(
    photo_dir, tmp_path, cli_env, tiny, tiny_clip
):
    images = photos(photo_dir, 3)
    common = [*images, *tiny, "--vocabulary-size", "500", "--l1", "0.05", "--top-k", "4"]
    text = run_cli("explain", *common, "--pretrained", "none", env=cli_env)
    assert text.returncode == 0, text.stderr
    centring, *blocks = text.stdout.strip().split("\n\n")
    assert centring == "not centred"  # random weights have no published mean
    assert [block.splitlines()[0].split("  (")[0] for block in blocks] == images
    header = blocks[0].splitlines()[0]
    assert re.fullmatch(r".*  \(\d+ concepts(, top 4 shown)?; cosine -?\d\.\d\d\)", header)
    assert "too few to estimate" in text.stderr  # 3 images: no centring, and a note says so

    # The same random weights, saved as a checkpoint file and loaded back by path.
    torch = pytest.importorskip("torch")
    model = CLIPEmbedder(tiny_clip, pretrained=None, device="cpu")._bundle().model
    checkpoint = tmp_path / "tiny-weights.pt"
    torch.save(model.state_dict(), checkpoint)
    plot = tmp_path / "concepts.png"
    result = run_cli(
        "explain", *common, "--pretrained", checkpoint, "--json", "--plot", plot, env=cli_env
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["image"] for r in records] == images
    for record, block in zip(records, blocks, strict=True):
        assert set(record) == {"image", "n_concepts", "cosine", "image_mean", "concepts"}
        assert record["image_mean"] == "none"
        assert 0 < len(record["concepts"]) <= 4
        lines = block.splitlines()[1:]
        assert [f"{c['weight']:.3f}  {c['concept']}" for c in record["concepts"]] == [
            line.strip() for line in lines
        ]
    assert_plot_shows_images_and_bars(plot, n_images=3)


def assert_plot_shows_images_and_bars(path, n_images):
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert pixels.shape[0] > 300 * n_images * 0.9  # one row per image
    assert pixels.std() > 30, "the figure is blank"
    bar = np.all(np.abs(pixels - [31, 119, 180]) < 8, axis=-1)  # matplotlib's tab:blue
    assert bar.sum() > 500 * n_images, "no bars were drawn"


def test_explain_json_in_process(photo_dir, tiny, capsys):
    images = photos(photo_dir, 2)
    status, out, err = call(
        capsys, "explain", *images, *tiny, "--pretrained", "none", "--vocabulary-size", "300",
        "--json", "--top-k", "0", "--l1", "0.05", "--image-mean", "none",
    )  # fmt: skip
    assert status == 0, err
    assert err == ""  # an explicit --image-mean none: no note
    records = json.loads(out)
    for record in records:
        assert len(record["concepts"]) == record["n_concepts"]  # --top-k 0 lists all
        weights = [c["weight"] for c in record["concepts"]]
        assert weights == sorted(weights, reverse=True) and min(weights, default=1) > 0
        assert -1 <= record["cosine"] <= 1


def test_many_images_are_centred_by_their_own_mean(photo_dir, tiny, tiny_clip, tmp_path, capsys):
    images = photos(photo_dir, 10)
    args = [*tiny, "--pretrained", "none", "--vocabulary-size", "300", "--l1", "0.05", "--json"]
    status, out, err = call(capsys, "explain", *images, *args)
    assert status == 0 and "too few" not in err
    together = json.loads(out)
    assert {r["image_mean"] for r in together} == {"mean of the 10 inputs"}

    # The same mean from a file: the embeddings of the same 10 images, from `embed`.
    status, _, err = call(capsys, "embed", *images, *tiny, "--pretrained", "none",
                          "--output", tmp_path / "emb.npy")  # fmt: skip
    assert status == 0, err
    X = np.load(tmp_path / "emb.npy")
    expected = CLIPEmbedder(tiny_clip, pretrained=None, device="cpu").transform(images)
    np.testing.assert_array_equal(X, expected)
    status, out, _ = call(
        capsys, "explain", images[0], *args, "--image-mean", tmp_path / "emb.npy"
    )
    assert status == 0
    (alone,) = json.loads(out)
    assert alone["image_mean"] == f"mean from {tmp_path / 'emb.npy'}"
    assert [c["concept"] for c in alone["concepts"]] == [
        c["concept"] for c in together[0]["concepts"]
    ]
    np.testing.assert_allclose(
        [c["weight"] for c in alone["concepts"]],
        [c["weight"] for c in together[0]["concepts"]],
        rtol=1e-4,
    )


def test_skipped_images_are_reported_and_kept_in_place(photo_dir, tiny, capsys):
    images = [photos(photo_dir)[0], str(photo_dir / "broken.jpg"), str(photo_dir / "gone.jpg")]
    status, out, err = call(
        capsys, "explain", *images, *tiny, "--pretrained", "none", "--vocabulary-size", "300",
        "--json", "--on-error", "skip", "--image-mean", "none",
    )  # fmt: skip
    assert status == 0, err
    records = json.loads(out)
    assert [r["image"] for r in records] == images
    assert "concepts" in records[0] and "error" not in records[0]
    assert "cannot identify image file" in records[1]["error"]
    assert "file not found" in records[2]["error"]
    assert err.count("skplice: warning: skipped") == 2

    status, _, err = call(
        capsys, "explain", *images[1:], *tiny, "--pretrained", "none", "--on-error", "skip"
    )
    assert status == 2 and "none of the 2 images could be read" in err


def test_a_named_pipe_is_never_opened(photo_dir, tiny, fifo, no_hang, capsys):
    image = photos(photo_dir)[0]
    base = [*tiny, "--pretrained", "none", "--vocabulary-size", "200", "--image-mean", "none"]
    status, _, err = no_hang(call, capsys, "explain", image, str(fifo), *base)
    assert status == 2 and f"{fifo} is a named pipe (FIFO), not an image file" in err
    status, out, err = no_hang(
        call, capsys, "explain", image, str(fifo), *base, "--on-error", "skip", "--json"
    )
    assert status == 0, err
    records = json.loads(out)
    assert "named pipe" in records[1]["error"] and records[0]["concepts"]
    status, _, err = no_hang(
        call, capsys, "embed", str(fifo), image, *tiny, "--pretrained", "none",
        "--on-error", "skip", "--output", fifo.parent / "e.npy",
    )  # fmt: skip
    assert status == 0 and "skipped" in err and np.load(fifo.parent / "e.npy").shape == (1, 32)
    status, _, err = no_hang(
        call, capsys, "decompose", "--input", fifo, "--output", fifo.parent / "w.npz"
    )
    assert status == 2 and "--input: " in err and "is a named pipe (FIFO), not a .npy" in err


def test_images_may_follow_options():
    parser = build_parser()
    args = parser.parse_args(["explain", "a.jpg", "--on-error", "skip", "b.jpg", "-q", "c.jpg"])
    assert args.images == ["a.jpg", "b.jpg", "c.jpg"] and args.on_error == "skip"
    args = parser.parse_args(["embed", "a.jpg", "-o", "e.npy", "b.jpg"])
    assert args.images == ["a.jpg", "b.jpg"] and args.output == "e.npy"


def test_an_explanation_without_concepts_explains_nothing(photo_dir, tiny, capsys):
    images = photos(photo_dir, 12)
    base = ["--json", *tiny, "--pretrained", "none", "--vocabulary-size", "300"]
    status, out, err = call(capsys, "explain", *images, *base, "--image-mean", "inputs",
                            "--l1", "1000")  # fmt: skip
    assert status == 0, err
    records = json.loads(out)
    assert all(r["n_concepts"] == 0 and r["cosine"] == 0 for r in records)  # was 0.99
    status, out, err = call(capsys, "explain", *images, *base, "--image-mean", "inputs")
    records = json.loads(out)
    assert all(0 < r["cosine"] <= 1 + 1e-9 for r in records if r["n_concepts"])


def test_explained_cosines_are_those_of_the_centred_parts_at_any_scale():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 8)) + 3
    splice = SpLiCETransformer(dictionary=rng.normal(size=(15, 8)), l1=0.05).fit(X)
    W = splice.transform(X)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    z = unit - splice.image_mean_
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    recon = W @ splice.components_
    recon /= np.linalg.norm(recon, axis=1, keepdims=True)
    expected = np.sum(z * recon, axis=1)
    np.testing.assert_allclose(splice.score_samples(X, centred=True), expected, rtol=1e-10)
    np.testing.assert_allclose(splice.score_samples(X * 1e200, centred=True), expected, rtol=1e-10)
    # Without centring, both cosines are the one with the reconstruction.
    plain = SpLiCETransformer(dictionary=splice.dictionary, l1=0.05, center=False).fit(X)
    np.testing.assert_allclose(
        plain.score_samples(X, centred=True), plain.score_samples(X), rtol=1e-12
    )


def test_clean_drops_stop_words_and_symbols(embeddings, tiny, tmp_path, capsys, vocab_source_dir):
    from skplice import load_vocabulary

    X = np.load(tmp_path / "X.npy")
    files = ["--input", tmp_path / "X.npy", "--output", tmp_path / "w.npz"]
    model = [*tiny, "--pretrained", "none", "--vocabulary-size", "400", "--image-mean", "none"]
    args = ["decompose", *files, *model]
    status, _, err = call(capsys, *args, "--clean")
    assert status == 0, err
    names = list(np.load(tmp_path / "w.npz")["concept_names"])
    assert names == load_vocabulary("laion", 400, clean=True) and len(names) == 400
    assert not {"the", "have", "de", "<", "-"} & set(names)
    status, _, _ = call(capsys, *args)
    raw = list(np.load(tmp_path / "w.npz")["concept_names"])
    assert {"the", "have", "-"} <= set(raw)  # without --clean: the paper's raw list
    assert X.shape == (30, 32)
    dictionary = ["--dictionary", tmp_path / "concepts.npy"]
    status, _, err = call(capsys, "decompose", *files, *dictionary, "--clean")
    assert status == 2 and "drop --clean" in err


def test_model_names_as_documented_and_unknown_ones(monkeypatch, tmp_path, skplice_home, capsys):
    from skplice.cli._errors import UsageError
    from skplice.cli._inputs import resolve_pretrained

    assert resolve_pretrained("ViT-B/32", None) == "laion2b_s34b_b79k"
    with pytest.raises(UsageError, match=r"--model ViT-B/33: unknown open_clip architecture"):
        resolve_pretrained("ViT-B/33", None)
    with pytest.raises(UsageError, match=r"did you mean ViT-B-16"):
        resolve_pretrained("ViT-B-61", None)
    with pytest.raises(UsageError, match="--model RN50 needs --pretrained"):
        resolve_pretrained("RN50", None)
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    status, _, err = call(capsys, "explain", ROOT / README_IMAGE, "--model", "ViT-B/32")
    assert status == 1 and "could not download the CLIP model weights (ViT-B/32, laion2b" in err


def test_names_that_almost_match(capsys, tmp_path, photo_dir):
    status, _, err = call(capsys, "explain", photos(photo_dir)[0], "--vocabulary", "laoin")
    assert status == 2 and "(did you mean laion?)" in err
    pattern = str(tmp_path / "photos" / "*.jpg")
    status, _, err = call(capsys, "explain", pattern, "--on-error", "skip")
    assert status == 2 and "looks like a file-name pattern" in err and "--on-error" not in err
    (tmp_path / "a.jpg").write_bytes(b"")
    status, _, err = call(capsys, "explain", str(tmp_path / "*.jpg"))
    assert status == 2 and "it matches 1 files, but it was quoted" in err


@pytest.mark.slow
def test_quiet_silences_library_warnings(tmp_path, cli_env, tiny_clip_config_path, photo_dir):
    args = ["explain", photos(photo_dir)[0], "--model-config", tiny_clip_config_path,
            "--pretrained", "none", "--vocabulary-size", "100", "--device", "cpu"]  # fmt: skip
    loud = run_cli(*args, env=cli_env)
    assert loud.returncode == 0 and "No pretrained weights loaded" in loud.stderr
    quiet = run_cli(*args, "-q", env=cli_env)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


# ---------------------------------------------------------------- offline first run


@pytest.mark.slow
def test_readme_command_offline_says_what_to_download_and_how(tmp_path, cli_env, vocab_home):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)[0].strip()
    assert first.endswith(f"&& skplice explain {README_IMAGE}")
    assert (ROOT / README_IMAGE).is_file()
    cli_env["SKPLICE_HOME"] = str(tmp_path / "empty-home")  # no vocabulary cached either
    result = run_cli("explain", README_IMAGE, env=cli_env)
    assert result.returncode == 1
    assert result.stdout == ""
    err = result.stderr
    assert err.startswith("skplice explain: error: could not download the CLIP model weights")
    assert "--pretrained /path/to/open_clip_pytorch_model.bin" in err
    assert "--vocabulary words.txt" in err
    mean_file = tmp_path / "empty-home" / "means" / "open_clip_ViT-B-32_image.pt"
    assert "--image-mean open_clip_ViT-B-32_image.pt" in err and f"place it at {mean_file}" in err
    assert "Traceback" not in err


def test_offline_download_failure_in_process(monkeypatch, tmp_path, skplice_home, capsys):
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    status, out, err = call(capsys, "explain", ROOT / README_IMAGE, "--device", "cpu")
    assert status == 1 and out == ""
    assert "could not download the CLIP model weights (ViT-B-32, laion2b_s34b_b79k)" in err
    assert "huggingface.co/laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in err
    assert "--vocabulary words.txt" in err  # the empty SKPLICE_HOME has no vocabulary
    assert "published mean image embedding of ViT-B-32 laion2b_s34b_b79k" in err  # nor mean
    assert "AI4LIFE-GROUP/SpLiCE/9a498102ce7c6701f4afe361ffaa86c39b47fa5f/data/means/" in err


# ------------------------------------------------------------------------ errors


@pytest.fixture
def bad_files(tmp_path):
    np.save(tmp_path / "one_d.npy", np.zeros(32))
    np.save(tmp_path / "three_d.npy", np.zeros((2, 3, 4)))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "wide.npy", np.ones((4, 16)))
    np.savez(tmp_path / "archive.npz", X=np.ones((2, 2)))
    (tmp_path / "text.npy").write_text("1 2 3\n")
    (tmp_path / "two_names.txt").write_text("dog\ncat\n")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "partial.json").write_text('{"embed_dim": 8}')
    return tmp_path


DECOMPOSE_ERRORS = [
    (["--input", "{tmp}/missing.npy"], "--input: file not found"),
    (["--input", "{tmp}/one_d.npy"], r"expected a 2-D array .* shape \(32,\).*x\[None, :\]"),
    (["--input", "{tmp}/three_d.npy"], r"shape \(2, 3, 4\)"),
    (["--input", "{tmp}/text.npy"], "is not a .npy file"),
    (["--input", "{tmp}/archive.npz"], r"is a .npz archive \(arrays: X\)"),
    (["--input", "{tmp}/objects.npy"], "not a readable .npy file"),
    (["--input", "{tmp}"], "is a folder"),
    (["--dictionary", "{tmp}/wide.npy"], "16 features per concept but .* 32"),
    (["--names", "{tmp}/two_names.txt"], "has 2 names but the dictionary has 50 rows"),
    (["--vocabulary", "nope", "--no-dict"], "not a named vocabulary .*laion.* no such file"),
    (["--names", "{tmp}/two_names.txt", "--no-dict"], "--names goes with --dictionary"),
    (["--model", "ViT-B-16"], "--dictionary replaces the encoded vocabulary; drop --model"),
    (["--output", "{tmp}/no/such/folder/w.npz"], "the folder .* does not exist"),
    (["--output", "{tmp}/X.npy"], "--output must not be the --input file"),
    (["--image-mean", "{tmp}/nothing.npy"], "--image-mean .*nothing.npy: no such file"),
    (["--image-mean", "{tmp}/wide.npy"], "has 16 features but the embeddings have 32"),
    (["--image-mean", "published"], "--image-mean published .* which --dictionary replaces"),
    (["--l1", "-1"], "argument --l1: must be a finite number >= 0"),
]


@pytest.mark.parametrize(("changes", "message"), DECOMPOSE_ERRORS)
def test_decompose_usage_errors(changes, message, embeddings, bad_files, capsys):
    tmp = bad_files
    args = {
        "--input": str(tmp / "X.npy"),
        "--output": str(tmp / "w.npz"),
        "--dictionary": str(tmp / "concepts.npy"),
    }
    changes = [c.format(tmp=tmp) for c in changes]
    if "--no-dict" in changes:
        changes.remove("--no-dict")
        del args["--dictionary"]
    args.update(dict(zip(changes[::2], changes[1::2], strict=True)))
    status, out, err = call(capsys, "decompose", *[x for kv in args.items() for x in kv])
    assert status == 2, err
    assert out == "" and "Traceback" not in err
    assert re.search(message, err), err
    assert not (tmp / "w.npz").exists()


EXPLAIN_ERRORS = [
    (["{photos}/gone.jpg"], "image file not found: .*gone.jpg .*--on-error skip"),
    (["{photos}/broken.jpg"], r"Could not load image 0 .*broken\.jpg.*cannot identify"),
    (["{photos}"], "is a folder; pass image files"),
    (["{img}", "--vocabulary", "klingon"], "--vocabulary klingon: not a named vocabulary"),
    (["{img}", "--model", "ViT-B-999", "--pretrained", "none", "--no-tiny"], "Unknown open_clip"),
    (["{img}", "--model", "RN50", "--no-tiny"], r"--model RN50 needs --pretrained: one of its"),
    (["{img}", "--pretrained", "{tmp}/none.pt"], r"Checkpoint file .*none\.pt.* does not exist"),
    (["{img}", "--model-config", "{tmp}/bad.json", "--no-tiny"], "is not valid JSON"),
    (["{img}", "--model-config", "{tmp}/partial.json", "--no-tiny"], "lacks vision_cfg"),
    (["{img}", "--plot", "{tmp}/out.xyz"], r"unknown image format '\.xyz'"),
    (["{img}", "--image-mean", "inputs"], "--image-mean inputs needs at least 2 inputs"),
    (
        ["{img}", "--image-mean", "published"],
        r"published no mean image embedding for skplice-test-tiny-clip \(random weights\); "
        "they did for ViT-B-32 laion2b_s34b_b79k",
    ),
    (["{img}", "--top-k", "many"], "argument --top-k: expected a whole number"),
    (["{img}", "--on-error", "ignore"], "argument --on-error: invalid choice"),
]


@pytest.mark.parametrize(("args", "message"), EXPLAIN_ERRORS)
def test_explain_usage_errors(args, message, photo_dir, bad_files, tiny, capsys):
    args = [a.format(photos=photo_dir, tmp=bad_files, img=photos(photo_dir)[0]) for a in args]
    options = [*tiny, "--vocabulary-size", "200"]
    if "--no-tiny" in args:
        args.remove("--no-tiny")
        options = ["--device", "cpu"]
    elif "--pretrained" not in args:
        options += ["--pretrained", "none"]
    status, out, err = call(capsys, "explain", *args, *options)
    assert status == 2, err
    assert out == "" and "Traceback" not in err
    assert re.search(message, err), err


def test_missing_optional_dependency_is_a_runtime_failure(photo_dir, tiny, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, _, err = call(
        capsys, "explain", photos(photo_dir)[0], *tiny, "--pretrained", "none",
        "--plot", "out.png",
    )  # fmt: skip
    assert status == 1
    assert 'pip install "skplice[plot]"' in err and "Traceback" not in err


def test_too_many_images_to_plot(photo_dir, tiny, tmp_path, capsys):
    images = photos(photo_dir, 21)
    args = [*tiny, "--pretrained", "none", "--plot", tmp_path / "p.png"]
    status, _, err = call(capsys, "explain", *images, *args)
    assert status == 2 and "at most 20" in err


def test_long_paths_are_shortened_in_the_middle(tmp_path, photo_dir, tiny, capsys):
    long = "/tmp/" + "deep/" * 1000
    status, _, err = call(capsys, "decompose", "--input", long + "X.npy", "--output", "w.npz")
    assert status == 2 and len(err) < 400 and "X.npy" in err and "..." in err, err[:300]
    status, _, err = call(
        capsys, "explain", photos(photo_dir)[0], long + "b.jpg", *tiny, "--pretrained", "none",
        "--on-error", "skip", "--vocabulary-size", "200",
    )  # fmt: skip
    assert status == 0 and max(map(len, err.splitlines())) < 800, err[:300]


def test_debug_reraises_usage_errors(tmp_path):
    from skplice.cli._errors import UsageError

    with pytest.raises(UsageError, match="file not found"):
        main(["decompose", "-i", str(tmp_path / "x.npy"), "-o", "w.npz", "--debug"])


def test_library_log_records_are_shown_once():
    import logging

    from skplice.cli._outputs import not_handled_elsewhere as _not_handled_elsewhere

    record = logging.LogRecord("root", logging.WARNING, __file__, 1, "message", None, None)
    assert _not_handled_elsewhere(record)
    logger = logging.getLogger("skplice-test-library")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        record.name = "skplice-test-library.submodule"
        assert not _not_handled_elsewhere(record)  # the library shows it itself
    finally:
        logger.removeHandler(handler)


def test_image_mean_files(tmp_path):
    torch = pytest.importorskip("torch")
    from skplice.cli._errors import UsageError
    from skplice.cli._inputs import read_image_mean_file as load_image_mean

    rng = np.random.default_rng(2)
    mean = rng.normal(size=8) * 0.1
    torch.save(torch.tensor(mean), tmp_path / "mean.pt")  # as the SpLiCE authors ship them
    np.testing.assert_array_equal(load_image_mean(tmp_path / "mean.pt", 8), mean)
    np.save(tmp_path / "row.npy", mean[None, :])  # (1, d): a mean, used as is
    np.testing.assert_array_equal(load_image_mean(tmp_path / "row.npy", 8), mean)
    X = rng.normal(size=(5, 8))
    np.save(tmp_path / "X.npy", X)  # (n, d): embeddings, whose unit rows are averaged
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    np.testing.assert_allclose(load_image_mean(tmp_path / "X.npy", 8), unit.mean(axis=0))
    torch.save({"mean": torch.tensor(mean)}, tmp_path / "dict.pt")
    with pytest.raises(UsageError, match="holds a dict; expected a tensor"):
        load_image_mean(tmp_path / "dict.pt", 8)
    with pytest.raises(UsageError, match="has 8 features but the embeddings have 16"):
        load_image_mean(tmp_path / "mean.pt", 16)


def test_unknown_device_is_a_usage_error(photo_dir, tiny_clip_config_path, vocab_home, capsys):
    status, _, err = call(
        capsys, "explain", photos(photo_dir)[0], "--model-config", tiny_clip_config_path,
        "--pretrained", "none", "--device", "tpu9",
    )  # fmt: skip
    assert status == 2 and "--device: device='tpu9' is not a device torch understands" in err


def test_the_docs_show_the_model_config_their_examples_use(tiny_clip_config_path):
    """docs/cli.rst runs its examples with --model-config tiny-clip.json: it shows that file,
    which is the test suite's tiny architecture."""
    page = (ROOT / "docs" / "cli.rst").read_text(encoding="utf-8")
    blocks = re.findall(r"\.\. code-block:: json\n\n((?:    .*\n|\n)+)", page)
    assert len(blocks) == 1 and "--model-config tiny-clip.json" in page
    assert json.loads(blocks[0]) == json.loads(tiny_clip_config_path.read_text())


# ------------------------------------------------------------ public API only


def _private_uses(path):
    """(line, what) for each use of a private skplice name in the module at ``path``.

    A private name is a dotted name with a component that starts with one underscore
    (dunders aside). Failures: importing ``skplice.<private>...`` (other than the
    command's own ``skplice.cli`` modules), importing a private name from skplice, a
    relative import that leaves ``skplice.cli``, ``importlib.import_module`` of a
    private skplice module, and reading a private attribute of any object but ``self``
    (``embedder._spec()``, ``splice._clip_model``).
    """
    import ast

    def private(name):
        return any(p.startswith("_") and not p.startswith("__") for p in name.split("."))

    def forbidden_module(module):
        own = module == "skplice.cli" or module.startswith("skplice.cli.")
        return module.split(".")[0] == "skplice" and private(module) and not own

    problems = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            problems += [(node.lineno, a.name) for a in node.names if forbidden_module(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level > 1:
                problems.append((node.lineno, f"{'.' * node.level}{node.module or ''}"))
                continue
            module = f"skplice.cli.{node.module}" if node.level else (node.module or "")
            if forbidden_module(module):
                problems.append((node.lineno, module))
            elif module.split(".")[0] == "skplice" and not module.startswith("skplice.cli"):
                problems += [
                    (node.lineno, f"{module}.{a.name}") for a in node.names if private(a.name)
                ]
        elif isinstance(node, ast.Attribute) and private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                problems.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module"):
            names = [a.value for a in node.args if isinstance(a, ast.Constant)]
            problems += [(node.lineno, n) for n in names if forbidden_module(str(n))]
    return problems


def test_the_command_uses_public_api_only():
    """skplice/cli/ is a client of the library: it imports no private skplice name and
    reads no private attribute, so the library's internals can change under it."""
    folder = ROOT / "skplice" / "cli"
    found = {
        f"{path.name}:{line}": what
        for path in sorted(folder.glob("*.py"))
        for line, what in _private_uses(path)
    }
    assert found == {}, found


def test_the_public_api_check_finds_private_uses(tmp_path):
    module = tmp_path / "example.py"
    module.write_text(
        "import skplice.utils._rows\n"
        "from skplice.embedding._hub import unreachable_reason\n"
        "from skplice.utils import _private\n"
        "from skplice.cli._inputs import UsageError\n"  # the command's own modules: fine
        "from ._errors import CommandError\n"
        "from skplice import SpLiCETransformer, __version__\n"
        "import importlib\n"
        "importlib.import_module('skplice.concepts._image_means')\n"
        "embedder._spec()\n"
        "self._intermixing = True\n"
    )
    found = sorted(what for _, what in _private_uses(module))
    assert found == [
        "embedder._spec",
        "skplice.concepts._image_means",
        "skplice.embedding._hub",
        "skplice.utils._private",
        "skplice.utils._rows",
    ]


def test_help_states_the_estimators_defaults():
    """Options left out take the estimators' defaults; the help says which they are."""
    from skplice.cli import _options

    embedder, splice = CLIPEmbedder().get_params(), SpLiCETransformer().get_params()
    assert (_options.DEFAULT_MODEL, _options.DEFAULT_PRETRAINED) == (
        embedder["model"],
        embedder["pretrained"],
    )
    assert _options.DEFAULT_IMAGE_BATCH_SIZE == embedder["batch_size"]
    assert _options.DEFAULT_L1 == splice["l1"]
    assert _options.DEFAULT_VOCABULARY == splice["vocabulary"]
    assert _options.DEFAULT_VOCABULARY_SIZE == splice["vocabulary_size"]
    assert _options.DEFAULT_SOLVER_BATCH_SIZE == splice["batch_size"]
    args = build_parser().parse_args(["decompose", "-i", "X.npy", "-o", "w.npz"])
    assert args.l1 is args.vocabulary is args.vocabulary_size is args.batch_size is None
