"""Streaming: partial_fit over batches, and transform_batches over memmaps and iterables."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import Normalizer

import skplice
from skplice import CLIPEmbedder, SpLiCETransformer, transform_batches

ROOT = Path(skplice.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A float32 .npy file of 700 embeddings, a dictionary, and a fitted transformer."""
    rng = np.random.default_rng(0)
    dictionary = rng.normal(size=(60, 24)) + rng.normal(size=24)
    X = (rng.normal(size=(700, 24)) + 2 * rng.normal(size=24)).astype(np.float32)
    path = tmp_path_factory.mktemp("streaming") / "embeddings.npy"
    np.save(path, X)
    splice = SpLiCETransformer(dictionary=dictionary, l1=0.5).fit(X)
    return path, X, dictionary, splice


def stack(parts):
    return sp.vstack(list(parts), format="csr").toarray()


# -- partial_fit ------------------------------------------------------------------------


def test_partial_fit_over_memmap_batches_equals_fit(data):
    path, X, dictionary, fitted = data
    memmap = np.load(path, mmap_mode="r")
    rng = np.random.default_rng(1)
    cuts = np.sort(rng.choice(np.arange(1, len(X)), size=120, replace=False))
    streamed = SpLiCETransformer(dictionary=dictionary, l1=0.5)
    for batch in np.split(memmap, cuts):  # 121 batches, some of one row
        streamed.partial_fit(batch)
    assert streamed.n_samples_seen_ == fitted.n_samples_seen_ == 700
    assert streamed.image_mean_.dtype == np.float64
    np.testing.assert_allclose(streamed.image_mean_, fitted.image_mean_, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(streamed.components_, fitted.components_)
    np.testing.assert_allclose(
        stack(transform_batches(streamed, path, batch_size=128)),
        fitted.transform(X).toarray(),
        rtol=0,
        atol=1e-6,
    )


# -- transform_batches ------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [64, 699, 700, 5000])
def test_npy_path_equals_in_memory_transform(data, batch_size):
    path, X, _, splice = data
    parts = list(transform_batches(splice, path, batch_size=batch_size))
    assert len(parts) == -(-700 // batch_size)
    assert all(sp.issparse(W) and W.dtype == np.float32 for W in parts)
    np.testing.assert_allclose(stack(parts), splice.transform(X).toarray(), rtol=0, atol=1e-12)


class RecordingArray:
    """An array-like that records the row slices read from it."""

    def __init__(self, array):
        self.array, self.reads = array, []

    @property
    def shape(self):
        return self.array.shape

    def __getitem__(self, key):
        self.reads.append((key.start, key.stop))
        return self.array[key]


def test_memmap_is_read_chunk_by_chunk(data):
    path, X, _, splice = data
    source = RecordingArray(np.load(path, mmap_mode="r"))
    parts = transform_batches(splice, source, batch_size=300)
    assert source.reads == []  # nothing is read before the first result is asked for
    first = next(parts)
    assert source.reads == [(0, 300)] and first.shape == (300, 60)
    rest = list(parts)
    assert source.reads == [(0, 300), (300, 600), (600, 700)]
    np.testing.assert_allclose(stack([first, *rest]), splice.transform(X).toarray(), atol=1e-12)


def test_memmap_batches_are_private_in_memory_copies(data):
    path, _, _, _ = data
    seen = []

    class Spy(Normalizer):
        def transform(self, X):
            seen.append((type(X), X.flags.writeable))
            return super().transform(X)

    list(transform_batches(Spy().fit(np.ones((1, 24))), path, batch_size=400))
    assert seen == [(np.ndarray, True), (np.ndarray, True)]


def test_iterables_of_batches_are_consumed_lazily(data):
    _, X, _, splice = data
    events = []

    def batches():
        for start in range(0, 700, 250):
            events.append(f"read {start}")
            yield X[start : start + 250]

    for W in transform_batches(splice, batches()):
        events.append(f"got {W.shape[0]}")
    assert events == ["read 0", "got 250", "read 250", "got 250", "read 500", "got 200"]
    as_list = list(transform_batches(splice, [X[:1], X[1:2], X[2:]]))
    np.testing.assert_allclose(stack(as_list), splice.transform(X).toarray(), atol=1e-12)


def test_pandas_inputs_are_sliced_by_position_and_keep_their_index(data):
    _, X, _, splice = data
    dense = clone(splice).set_params(sparse_output=False).fit(X).set_output(transform="pandas")
    frame = pd.DataFrame(X, index=np.arange(700) * 10, columns=[f"d{i}" for i in range(24)])
    dense.fit(frame)
    parts = list(transform_batches(dense, frame, batch_size=256))
    assert [len(p) for p in parts] == [256, 256, 188]
    result = pd.concat(parts)
    assert list(result.index) == list(frame.index)
    np.testing.assert_allclose(result.to_numpy(), dense.transform(frame).to_numpy(), atol=1e-12)


@pytest.mark.filterwarnings("ignore:No pretrained weights loaded")
def test_image_paths_are_sliced_into_batches(tiny_clip, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    paths = []
    for i in range(7):
        paths.append(str(tmp_path / f"image{i}.png"))
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(paths[-1])
    embedder = CLIPEmbedder(tiny_clip, pretrained=None, device="cpu", batch_size=3)
    parts = list(transform_batches(embedder, np.asarray(paths), batch_size=3))
    assert [p.shape for p in parts] == [(3, 32), (3, 32), (1, 32)]
    np.testing.assert_array_equal(np.vstack(parts), embedder.transform(paths))


def test_progress_bar_counts_rows(data, capsys):
    path, _, _, splice = data
    list(transform_batches(splice, path, batch_size=300, verbose=True))
    err = capsys.readouterr().err
    assert "SpLiCETransformer batches" in err and "700/700" in err
    list(transform_batches(splice, iter([np.load(path)[:5]]), verbose=True))
    assert "5row" in capsys.readouterr().err.replace(" ", "")


def test_errors_are_raised_before_any_data_is_read(data, tmp_path):
    _, X, dictionary, splice = data
    source = RecordingArray(X)
    with pytest.raises(NotFittedError):
        transform_batches(SpLiCETransformer(dictionary=dictionary), source)
    with pytest.raises(TypeError, match="transform method"):
        transform_batches(object(), source)
    with pytest.raises(ValueError, match="batch_size applies to arrays"):
        transform_batches(splice, iter([X]), batch_size=10)
    for bad, error in [(0, ValueError), (2.5, TypeError), (True, TypeError)]:
        with pytest.raises(error, match=r"batch_size must be an int >= 1 or None; got "):
            transform_batches(splice, source, batch_size=bad)
    assert source.reads == []
    with pytest.raises(TypeError, match="iterable of batches; got int"):
        transform_batches(splice, 3)
    with pytest.raises(ValueError, match="0-d array"):
        transform_batches(splice, np.float32(1.0))
    np.savez(tmp_path / "two.npz", a=X, b=X)
    with pytest.raises(ValueError, match=r"\.npz archive"):
        transform_batches(splice, tmp_path / "two.npz")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="Python objects"):
        transform_batches(splice, tmp_path / "objects.npy")
    with pytest.raises(FileNotFoundError):
        transform_batches(splice, tmp_path / "missing.npy")


def test_a_bad_batch_fails_when_reached(data):
    _, X, _, splice = data
    bad = X[:5].copy()
    bad[2, 3] = np.nan
    parts = transform_batches(splice, [X[:10], bad, X[10:20]])
    assert next(parts).shape == (10, 60)
    with pytest.raises(ValueError, match="NaN"):
        next(parts)


_MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys, tracemalloc
    import numpy as np
    from skplice import SpLiCETransformer, transform_batches

    def anonymous_rss():  # resident memory not backed by a file: excludes mapped pages
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024

    path, mode = sys.argv[1], sys.argv[2]
    head = np.load(path, mmap_mode="r")[:1000]
    dictionary = np.random.default_rng(0).normal(size=(16, head.shape[1]))
    splice = SpLiCETransformer(dictionary=dictionary, l1=0.8, batch_size=4096).fit(head)
    splice.transform(head)  # torch's one-time allocations happen before the baseline
    tracemalloc.start()
    base = peak = anonymous_rss()
    X = path if mode == "stream" else np.load(path)  # the control reads it all
    rows = nnz = 0
    for W in transform_batches(splice, X, batch_size=4096):
        rows, nnz = rows + W.shape[0], nnz + W.nnz
        peak = max(peak, anonymous_rss())
    print(json.dumps({"rss": peak - base, "traced": tracemalloc.get_traced_memory()[1],
                      "rows": rows, "nnz": nnz}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_large_memmap_streams_in_bounded_memory(tmp_path):
    rows, width = 250_000, 64
    path = tmp_path / "large.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, width))
    rng = np.random.default_rng(3)
    for start in range(0, rows, 50_000):
        out[start : start + 50_000] = rng.normal(size=(50_000, width))
    out.flush()
    del out
    size = rows * width * 4  # 64 MB

    def probe(mode):
        result = subprocess.run(
            [sys.executable, "-c", _MEMORY_PROBE, str(path), mode],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(result.stdout.strip().splitlines()[-1])

    streamed = probe("stream")
    assert streamed["rows"] == rows and streamed["nnz"] > 0
    assert streamed["traced"] < size / 10, streamed
    assert streamed["rss"] < size / 4, streamed
    # The control holds the whole array: the same instruments see it.
    control = probe("full")
    assert control["nnz"] == streamed["nnz"]
    assert control["traced"] > 0.9 * size and control["rss"] > 0.9 * size, control


def test_a_named_pipe_is_refused_without_opening_it(data, fifo, no_hang):
    splice = data[-1]
    with pytest.raises(ValueError, match=r"named pipe \(FIFO\), not a \.npy file"):
        no_hang(transform_batches, splice, fifo)


def file_rss():
    """Resident memory of this process backed by mapped files, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssFile in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("source", ["path", "memmap", "memmap_slice"])
def test_pages_read_through_a_memmap_are_released(tmp_path, source):
    rows, width = 65_536, 256  # 64 MiB of float32
    path = tmp_path / "embeddings.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, width))
    for start in range(0, rows, 8192):
        out[start : start + 8192] = start
    out.flush()
    del out
    size = rows * width * 4
    X = path if source == "path" else np.load(path, mmap_mode="r")
    if source == "memmap_slice":
        X = X[1000:]
    scaler = Normalizer().fit(np.ones((2, width), dtype=np.float32))
    base = peak = file_rss()
    n_rows = 0
    for part in transform_batches(scaler, X, batch_size=2048):  # 2 MiB per batch
        n_rows += part.shape[0]
        peak = max(peak, file_rss())
    assert n_rows == (rows if source != "memmap_slice" else rows - 1000)
    assert peak - base < size / 8, (peak - base) / 2**20
    if source != "path":
        np.testing.assert_array_equal(X[-1], np.full(width, 57344, np.float32))  # still readable
