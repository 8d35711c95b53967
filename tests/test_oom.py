"""Out of device memory, batches are halved and retried: fault injection on the CPU.

A wrapped model or solver raises ``torch.OutOfMemoryError`` whenever it is given more
than ``limit`` items at once, as a GPU with little free memory would. The results must be
those of a run that never ran out of memory.
"""

import copy

import numpy as np
import pytest
import torch
from sklearn.base import clone

import skplice.decomposition._splice
from skplice import CLIPEmbedder, SpLiCETransformer, TextEmbedder
from skplice.exceptions import BatchSizeReducedWarning
from skplice.utils._oom import OutOfMemoryError

pytestmark = pytest.mark.filterwarnings("ignore:No pretrained weights loaded")


class FailAbove:
    """Wrap ``fn``: raise OutOfMemoryError when its batch has more than ``limit`` items."""

    def __init__(self, fn, limit, size_of=len):
        self.fn, self.limit, self.size_of = fn, limit, size_of
        self.sizes = []  # batch sizes tried, failed or not

    def __call__(self, first, *args, **kwargs):
        size = self.size_of(first, *args, **kwargs)
        self.sizes.append(size)
        if size > self.limit:
            raise OutOfMemoryError(f"CUDA out of memory (injected: {size} > {self.limit})")
        return self.fn(first, *args, **kwargs)


def rows_of_first(first, *args, **kwargs):
    return len(first)


def batch_size_argument(*args, batch_size, **kwargs):
    return batch_size


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    return rng.normal(size=(120, 24)), rng.normal(size=(100, 24))


def test_oom_type_is_torchs():
    assert OutOfMemoryError is torch.cuda.OutOfMemoryError
    assert issubclass(OutOfMemoryError, RuntimeError)


def test_solver_oom_halves_the_batch_and_gives_the_same_weights(problem, monkeypatch):
    dictionary, X = problem
    splice = SpLiCETransformer(dictionary=dictionary, l1=0.3, batch_size=64).fit(X)
    expected = splice.transform(X).toarray()
    expected_at_16 = clone(splice).set_params(batch_size=16).fit(X).transform(X).toarray()

    solver = FailAbove(
        skplice.decomposition._splice.nonnegative_lasso, limit=20, size_of=rows_of_first
    )
    monkeypatch.setattr(skplice.decomposition._splice, "nonnegative_lasso", solver)
    with pytest.warns(BatchSizeReducedWarning) as record:
        W = splice.transform(X)
    assert [str(w.message).split(": ", 1)[1] for w in record] == [
        "out of memory on cpu with 64 items per batch; retrying with 32. Set batch_size=32 "
        "or lower to avoid the retries.",
        "out of memory on cpu with 32 items per batch; retrying with 16. Set batch_size=16 "
        "or lower to avoid the retries.",
    ]
    # 64 and 32 fail once each, then 16 rows at a time to the end: 100 = 6 * 16 + 4.
    assert solver.sizes == [64, 32, *[16] * 6, 4]
    np.testing.assert_array_equal(W.toarray(), expected_at_16)
    np.testing.assert_allclose(W.toarray(), expected, rtol=0, atol=1e-12)
    assert W.shape == (100, 120) and list(W.concept_names) == list(splice.concept_names_)


def test_regularization_path_survives_oom(problem, monkeypatch):
    dictionary, X = problem
    splice = SpLiCETransformer(dictionary=dictionary, batch_size=50).fit(X)
    expected = [W.toarray() for W in splice.regularization_path(X, [0.2, 0.5])]
    solver = FailAbove(
        skplice.decomposition._splice.nonnegative_lasso, limit=7, size_of=rows_of_first
    )
    monkeypatch.setattr(skplice.decomposition._splice, "nonnegative_lasso", solver)
    with pytest.warns(BatchSizeReducedWarning):
        path = splice.regularization_path(X, [0.2, 0.5])
    for W, reference in zip(path, expected, strict=True):
        np.testing.assert_allclose(W.toarray(), reference, rtol=0, atol=1e-12)


def test_oom_at_one_item_is_a_clear_error_and_changes_nothing(problem, monkeypatch):
    dictionary, X = problem
    splice = SpLiCETransformer(dictionary=dictionary, batch_size=4).fit(X)
    before = copy.deepcopy(vars(splice))
    solver = FailAbove(
        skplice.decomposition._splice.nonnegative_lasso, limit=0, size_of=rows_of_first
    )
    monkeypatch.setattr(skplice.decomposition._splice, "nonnegative_lasso", solver)
    with (
        pytest.warns(BatchSizeReducedWarning),
        pytest.raises(
            OutOfMemoryError, match=r"even with one item per batch.*from 4 to 1"
        ) as info,
    ):
        splice.transform(X)
    assert "device='cpu'" in str(info.value)
    assert isinstance(info.value.__cause__, OutOfMemoryError)  # the device's own message
    assert solver.sizes == [4, 2, 1]
    assert vars(splice).keys() == before.keys()
    np.testing.assert_array_equal(splice.components_, before["components_"])


def test_other_errors_are_not_retried(problem, monkeypatch):
    dictionary, X = problem
    splice = SpLiCETransformer(dictionary=dictionary, batch_size=64).fit(X)
    calls = []

    def broken(z, *args, **kwargs):
        calls.append(len(z))
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(skplice.decomposition._splice, "nonnegative_lasso", broken)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        splice.transform(X)
    assert calls == [64]


# -- embedders ---------------------------------------------------------------------------


@pytest.fixture
def images():
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, size=(40, 30 + i, 3), dtype=np.uint8) for i in range(23)]


def test_clip_image_oom_retries_with_smaller_batches(tiny_clip, images, monkeypatch):
    embedder = CLIPEmbedder(tiny_clip, pretrained=None, device="cpu", batch_size=16)
    expected = embedder.transform(images)
    expected_at_4 = clone(embedder).set_params(batch_size=4).transform(images)
    model = embedder._bundle().model
    encode = FailAbove(model.encode_image, limit=5)
    monkeypatch.setattr(model, "encode_image", encode)
    with pytest.warns(BatchSizeReducedWarning) as record:
        X = embedder.transform(images)
    assert "CLIPEmbedder" in str(record[0].message)
    assert "Set batch_size=4 " in str(record[-1].message)
    # First batch: 16 and 8 fail, then 4 at a time; the second batch (7 images) as well.
    assert encode.sizes == [16, 8, 4, 4, 4, 4, 4, 3]
    np.testing.assert_array_equal(X, expected_at_4)
    np.testing.assert_allclose(X, expected, rtol=0, atol=1e-6)


def test_clip_image_oom_with_skipped_images(tiny_clip, images, monkeypatch):
    embedder = CLIPEmbedder(
        tiny_clip, pretrained=None, device="cpu", batch_size=8, on_error="skip"
    )
    bad = [*images[:5], np.zeros((4, 4), dtype=np.complex64), *images[5:10]]
    with pytest.warns(UserWarning, match="Skipped 1 of 11"):
        expected, kept = clone(embedder).set_params(batch_size=2).embed(bad)
    model = embedder._bundle().model
    monkeypatch.setattr(model, "encode_image", FailAbove(model.encode_image, limit=2))
    with pytest.warns(UserWarning) as record:
        X, kept_oom = embedder.embed(bad)
    assert {type(w.message) for w in record} >= {BatchSizeReducedWarning}
    np.testing.assert_array_equal(kept_oom, kept)
    np.testing.assert_array_equal(X, expected)


def test_clip_text_oom_retries(tiny_clip, monkeypatch):
    embedder = CLIPEmbedder(tiny_clip, pretrained=None, device="cpu", batch_size=8)
    words = "one two three four five six seven eight nine ten eleven twelve cat dog car tree"
    texts = [f"a photo of thing {word}" for word in [*words.split(), "sky", "sea", "road"]]
    # 19 texts of 7 tokens (start, 5 words, end), batched by tokens: a pass holds
    # batch_size texts' worth of the 16-token context, 2 of these per unit of batch_size
    # (see skplice.embedding._text_context).
    expected = clone(embedder).set_params(batch_size=1).encode_text(texts)
    model = embedder._bundle().model
    forward = FailAbove(model.transformer.forward, limit=3, size_of=rows_of_first)
    monkeypatch.setattr(model.transformer, "forward", forward)
    with pytest.warns(BatchSizeReducedWarning) as record:
        X = embedder.encode_text(texts)
    # One warning per halving: 16 -> 8 -> 4 -> 2 texts' worth of tokens per pass.
    assert [type(w.message) for w in record] == [BatchSizeReducedWarning] * 3
    assert "Set batch_size=1 or lower" in str(record[-1].message)
    assert forward.sizes[:4] == [16, 8, 4, 2] and max(forward.sizes[4:]) == 2
    np.testing.assert_array_equal(X, expected)


def test_text_embedder_oom_retries_the_whole_call(minilm_path, monkeypatch):
    embedder = TextEmbedder(minilm_path, device="cpu", batch_size=32)
    texts = ["a dog on the beach", "a spreadsheet", "a red car", "a bowl of soup"] * 5
    expected = clone(embedder).set_params(batch_size=8).encode_text(texts)
    model = embedder._model()
    encode = FailAbove(model.encode, limit=8, size_of=batch_size_argument)
    monkeypatch.setattr(model, "encode", encode)
    with pytest.warns(BatchSizeReducedWarning) as record:
        X = embedder.transform(texts)
    assert len(record) == 2 and "TextEmbedder" in str(record[0].message)
    assert "Set batch_size=8 " in str(record[-1].message)
    assert encode.sizes == [32, 16, 8]
    np.testing.assert_array_equal(X, expected)
    monkeypatch.setattr(
        model, "encode", FailAbove(model.encode, limit=0, size_of=lambda *a, **k: 1)
    )
    with (
        pytest.warns(BatchSizeReducedWarning),
        pytest.raises(OutOfMemoryError, match="TextEmbedder: out of memory"),
    ):
        embedder.transform(texts)
