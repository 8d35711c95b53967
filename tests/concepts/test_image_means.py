"""Published mean image embeddings: the real files, their download, cache and verification."""

import hashlib

import numpy as np
import pytest
import torch
from _file_server import FileServer, unreachable_url

from skplice import list_image_means, load_image_mean
from skplice.concepts._image_means import _PUBLISHED, URL_ENV_VAR
from skplice.exceptions import DownloadError, ImageMeanDownloadError

# From the shared data's README: file, shape and norm of each published mean.
EXPECTED = {
    ("ViT-B-32", "laion2b_s34b_b79k"): ("open_clip_ViT-B-32_image.pt", 512, 0.560),
    ("ViT-B-32", "openai"): ("clip_ViT-B-32_image.pt", 512, 0.684),
    ("ViT-B-16", "openai"): ("clip_ViT-B-16_image.pt", 512, 0.702),
    ("RN50", "openai"): ("clip_RN50_image.pt", 1024, 0.622),
}
EXPECTED_SHA = {spec.file: spec.sha256 for spec in _PUBLISHED}


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


class MeansServer(FileServer):
    """The real mean files, served under /means/."""

    def __init__(self, folder):
        super().__init__({p.name: p.read_bytes() for p in folder.glob("*.pt")}, "means")


@pytest.fixture
def means_server(means_source_dir, skplice_home, monkeypatch):
    with MeansServer(means_source_dir) as server:
        monkeypatch.setenv(URL_ENV_VAR, server.url)
        yield server


def cached_files(home):
    folder = home / "means"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------------------------------------
# The published files


def test_every_listed_model_is_a_real_open_clip_pair():
    open_clip = pytest.importorskip("open_clip")
    assert list_image_means() == list(EXPECTED)
    for model, pretrained in list_image_means():
        assert open_clip.pretrained.get_pretrained_cfg(model, pretrained), (model, pretrained)


@pytest.mark.parametrize(("model", "pretrained"), list(EXPECTED))
def test_each_mean_loads_from_the_cache_without_network(
    model, pretrained, means_home, means_source_dir, monkeypatch
):
    monkeypatch.setenv(URL_ENV_VAR, unreachable_url("means"))
    file, dim, norm = EXPECTED[model, pretrained]
    mean = load_image_mean(model, pretrained)
    assert mean.shape == (dim,) and mean.dtype == np.float64
    assert round(float(np.linalg.norm(mean)), 3) == norm  # not normalised again
    source = means_source_dir / file
    spec = next(s for s in _PUBLISHED if s.file == file)
    assert sha256(source) == spec.sha256 and source.stat().st_size == spec.size
    tensor = torch.load(source, map_location="cpu", weights_only=True)
    np.testing.assert_array_equal(mean, tensor.double().numpy())


def test_spellings_of_the_same_weights(means_home):
    expected = load_image_mean()  # the defaults: ViT-B-32 laion2b_s34b_b79k
    np.testing.assert_array_equal(load_image_mean("ViT-B/32", "LAION2B-s34B-b79K"), expected)
    assert not np.array_equal(load_image_mean("ViT-B-32", "openai"), expected)


@pytest.mark.parametrize(
    ("model", "pretrained"),
    [("ViT-L-14", "openai"), ("ViT-B-32", "laion400m_e32"), ("ViT-B-32", None), (None, "x")],
)
def test_models_without_a_published_mean(model, pretrained, skplice_home):
    with pytest.raises(ValueError, match="No published mean image embedding") as info:
        load_image_mean(model, pretrained)
    for known, tag in EXPECTED:
        assert f"{known} {tag}" in str(info.value)
    assert cached_files(skplice_home) == []  # nothing was fetched


# ---------------------------------------------------------------------------------------------
# Download, verification and cache


def test_first_use_downloads_verifies_and_caches(means_server, skplice_home, monkeypatch):
    mean = load_image_mean("RN50", "openai")
    assert means_server.requests == ["/means/clip_RN50_image.pt"]
    cached = skplice_home / "means" / "clip_RN50_image.pt"
    assert sha256(cached) == EXPECTED_SHA["clip_RN50_image.pt"]
    assert cached_files(skplice_home) == ["clip_RN50_image.pt"]  # no temporary file left
    monkeypatch.setenv(URL_ENV_VAR, unreachable_url("means"))
    np.testing.assert_array_equal(load_image_mean("RN50", "openai"), mean)
    assert len(means_server.requests) == 1


def test_explicit_data_home(means_server, tmp_path, skplice_home):
    load_image_mean(data_home=tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "means" / "open_clip_ViT-B-32_image.pt").is_file()
    assert cached_files(skplice_home) == []


def test_a_read_only_home_downloads_without_caching(means_server, skplice_home, read_only):
    read_only(skplice_home)
    with pytest.warns(UserWarning, match=r"cannot be written.*cache is disabled") as caught:
        first = load_image_mean("ViT-B-32", "openai")
        second = load_image_mean("ViT-B-32", "openai")
    assert sum("cache is disabled" in str(w.message) for w in caught) == 1
    np.testing.assert_array_equal(first, second)
    assert len(means_server.requests) == 2
    assert list(skplice_home.iterdir()) == []


@pytest.mark.parametrize("damage", ["corrupt", "truncate"])
def test_a_damaged_cached_mean_is_refused_and_downloaded_again(
    means_server, skplice_home, means_source_dir, damage
):
    good = (means_source_dir / "clip_ViT-B-16_image.pt").read_bytes()
    cached = skplice_home / "means" / "clip_ViT-B-16_image.pt"
    cached.parent.mkdir()
    middle = len(good) // 2
    flipped = good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1 :]
    cached.write_bytes(flipped if damage == "corrupt" else good[:middle])
    with pytest.warns(UserWarning, match="sha256 does not match"):
        mean = load_image_mean("ViT-B-16", "openai")
    assert means_server.requests == ["/means/clip_ViT-B-16_image.pt"]
    assert cached.read_bytes() == good
    assert mean.shape == (512,)


@pytest.mark.parametrize(
    ("mode", "cause"),
    [
        ("corrupt", "sha256"),
        ("truncate", "IncompleteRead"),
        ("truncate_no_length", "sha256"),  # a cut body looks complete without a length
    ],
)
def test_a_bad_download_is_refused_and_leaves_nothing(means_server, skplice_home, mode, cause):
    means_server.mode = mode
    with pytest.raises(ImageMeanDownloadError, match=cause) as info:
        load_image_mean()
    assert means_server.url + "open_clip_ViT-B-32_image.pt" in str(info.value)
    assert cached_files(skplice_home) == []


def test_unreachable_server_names_address_placement_and_sha256(skplice_home, monkeypatch):
    url = unreachable_url("means")
    monkeypatch.setenv(URL_ENV_VAR, url)
    with pytest.raises(DownloadError) as info:
        load_image_mean("ViT-B-32", "openai")
    error = info.value
    assert isinstance(error, ImageMeanDownloadError) and isinstance(error, OSError)
    message = str(error)
    assert f"{url}/clip_ViT-B-32_image.pt" in message
    assert str(skplice_home / "means" / "clip_ViT-B-32_image.pt") in message
    assert EXPECTED_SHA["clip_ViT-B-32_image.pt"] in message
    assert "refused" in message.lower()
    assert cached_files(skplice_home) == []


def test_the_vocabulary_error_is_a_download_error():
    from skplice.exceptions import VocabularyDownloadError

    assert issubclass(VocabularyDownloadError, DownloadError)
