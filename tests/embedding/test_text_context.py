"""Short-context text encoding equals open_clip's own full-context ``encode_text``.

Each tiny random-weight architecture below is encoded by ``CLIPEmbedder.encode_text``
and by ``model.encode_text(tokenizer(texts))``; the sequence lengths that reach the text
transformer are recorded by a forward pre-hook, so a test knows which path ran.
"""

import json

import numpy as np
import pytest
from sklearn.base import clone

from skplice import CLIPEmbedder
from skplice.embedding import _clip_backend, _text_context

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

pytestmark = pytest.mark.filterwarnings("ignore:No pretrained weights loaded")

CONTEXT = 16
VISION = {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16}
TEXT = {"context_length": CONTEXT, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}
#: name -> (extra top-level config, extra text_cfg, whether the short context is exact)
ARCHITECTURES = {
    "argmax": ({}, {}, True),  # OpenAI-style CLIP: the tests' tiny_clip architecture
    "custom-text-argmax": ({"custom_text": True}, {}, True),  # EVA, ViTamin, PE-Core style
    "eos": ({}, {"pool_type": "eos", "eos_id": 49407}, True),  # MetaCLIP 2 style
    "first": ({}, {"pool_type": "first"}, True),
    "custom-text-first": ({"custom_text": True}, {"pool_type": "first"}, True),
    # fallbacks: bidirectional (SigLIP, MobileCLIP-S1; no "siglip" in the names: open_clip
    # would pick its SigLIP tokenizer, a download), or pooled at the last padded position
    "bidirectional-last": (
        {"custom_text": True},
        {"no_causal_mask": True, "pool_type": "last"},
        False,
    ),
    "bidirectional-argmax": ({"custom_text": True}, {"no_causal_mask": True}, False),
    "causal-last": ({}, {"pool_type": "last"}, False),
    "clip-bidirectional": ({}, {"no_causal_mask": True, "pool_type": "argmax"}, False),
}
TEXTS = [
    "",
    "dog",
    "a photo of a cat",
    "hot dog",
    "an astronaut riding a horse on the moon",
    "one two three four five six seven eight nine ten eleven twelve",  # 12 words: 14 tokens
    "one two three four five six seven eight nine ten eleven twelve thirteen",  # 15: the limit
    "a very long caption that goes on and on well past the sixteen tokens of the context",
    "dog",
    "Cat!",
]


@pytest.fixture(scope="module")
def architectures(tmp_path_factory):
    """Register one tiny architecture per entry of ARCHITECTURES; name -> open_clip name."""
    folder = tmp_path_factory.mktemp("text_context_configs")
    names = {}
    for key, (top, text, _) in ARCHITECTURES.items():
        name = f"skplice-test-text-{key}"
        config = {"embed_dim": 24, "vision_cfg": VISION, "text_cfg": {**TEXT, **text}, **top}
        (folder / f"{name}.json").write_text(json.dumps(config))
        open_clip.add_model_config(folder / f"{name}.json")
        names[key] = name
    return names


def _embedder(name, **params):
    return CLIPEmbedder(name, pretrained=None, device="cpu", **{"normalize": False, **params})


def _reference(embedder, texts):
    """open_clip's own encode_text at full context, as float32 numpy."""
    tokens = _clip_backend.get_tokenizer(embedder._spec())(texts)
    with torch.inference_mode():
        return embedder._bundle().model.encode_text(tokens).float().numpy()


def _text_transformer(model):
    return model.text.transformer if hasattr(model, "text") else model.transformer


def _encode_recording_lengths(embedder, texts):
    """``encode_text(texts)`` and the sequence length of every forward pass of the tower."""
    lengths = []
    transformer = _text_transformer(embedder._bundle().model)
    handle = transformer.register_forward_pre_hook(
        lambda _, args: lengths.append(args[0].shape[1])
    )
    try:
        return embedder.encode_text(texts), lengths
    finally:
        handle.remove()


@pytest.mark.parametrize("key", list(ARCHITECTURES))
def test_same_embeddings_as_open_clip_encode_text(architectures, key):
    embedder = _embedder(architectures[key], batch_size=3)
    expected = _reference(embedder, TEXTS)
    T, lengths = _encode_recording_lengths(embedder, TEXTS)
    assert T.dtype == np.float32 and T.shape == expected.shape
    np.testing.assert_allclose(T, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    tokens = _clip_backend.get_tokenizer(embedder._spec())(TEXTS)
    if ARCHITECTURES[key][2]:
        # the short path ran: one group per pooled length, none padded to the context
        assert sorted(set(lengths)) == sorted(set(_pooled_lengths(key, tokens)))
        assert min(lengths) < CONTEXT
    else:
        assert lengths and set(lengths) == {CONTEXT}


def _pooled_lengths(key, tokens):
    """Pooled position + 1 of each row, written out per pooling rule (the test's oracle)."""
    pool = ARCHITECTURES[key][1].get("pool_type", "argmax")
    if pool == "first":
        return [1] * len(tokens)
    if pool == "eos":
        return [int((row == 49407).nonzero()[0, 0]) + 1 for row in tokens]
    return [int(row.argmax()) + 1 for row in tokens]


@pytest.mark.parametrize("key", ["argmax", "custom-text-argmax", "bidirectional-last"])
def test_order_and_batch_size_do_not_change_results(architectures, key):
    embedder = _embedder(architectures[key], batch_size=4)
    T = embedder.encode_text(TEXTS)
    tolerance = {"rtol": 1e-6, "atol": 1e-6 * np.abs(T).max()}  # float32 rounding
    order = np.random.default_rng(0).permutation(len(TEXTS))
    shuffled = embedder.encode_text([TEXTS[i] for i in order])
    np.testing.assert_allclose(shuffled, T[order], **tolerance)
    for batch_size in (1, 64):
        other = clone(embedder).set_params(batch_size=batch_size).encode_text(TEXTS)
        np.testing.assert_allclose(other, T, **tolerance)
    # a text's embedding does not depend on the texts encoded with it
    alone = np.vstack([embedder.encode_text([text]) for text in TEXTS])
    np.testing.assert_allclose(alone, T, **tolerance)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("key", ["argmax", "custom-text-argmax", "eos"])
def test_low_precision_matches_open_clip_at_that_precision(architectures, key, precision):
    embedder = _embedder(architectures[key], precision=precision, batch_size=4)
    tokens = _clip_backend.get_tokenizer(embedder._spec())(TEXTS)
    model = embedder._bundle().model
    with torch.inference_mode():
        expected = model.encode_text(tokens).float().numpy()
    T, lengths = _encode_recording_lengths(embedder, TEXTS)
    assert T.dtype == np.float32 and min(lengths) < CONTEXT
    # rounding of the low precision itself (8 or 11 significant bits), not a different result
    eps = {"fp16": 2.0**-10, "bf16": 2.0**-7}[precision]
    np.testing.assert_allclose(T, expected, atol=8 * eps * np.abs(expected).max())
    full = _embedder(architectures[key], batch_size=4).encode_text(TEXTS)
    cosines = np.sum(T * full, 1) / np.linalg.norm(T, axis=1) / np.linalg.norm(full, axis=1)
    assert cosines.min() > 0.99


def test_normalized_output_and_empty_input(architectures):
    embedder = _embedder(architectures["argmax"], normalize=True)
    T = embedder.encode_text(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(T, axis=1), 1.0, rtol=1e-6)
    expected = _reference(embedder, TEXTS)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(T, expected, atol=1e-6)
    assert embedder.encode_text([]).shape == (0, 24)


def test_progress_bar_counts_texts(architectures, capsys):
    _embedder(architectures["argmax"], batch_size=3, verbose=True).encode_text(TEXTS)
    err = capsys.readouterr().err
    assert "CLIPEmbedder text" in err and f"{len(TEXTS)}/{len(TEXTS)}" in err


def test_detection_checks_the_mask_itself(architectures):
    """A model whose mask is not causal is refused even when its class and config fit."""
    model = open_clip.create_model(architectures["argmax"], pretrained=None)
    assert _text_context.causal_text_tower(model) is not None
    model.attn_mask = torch.zeros_like(model.attn_mask)  # attend to every position
    assert _text_context.causal_text_tower(model) is None
    model.attn_mask = None
    assert _text_context.causal_text_tower(model) is None


def test_pooled_prefixes_keep_only_tokens_up_to_the_pooled_position(architectures):
    embedder = _embedder(architectures["argmax"])
    tokenizer = _clip_backend.get_tokenizer(embedder._spec())
    tower = _text_context.causal_text_tower(embedder._bundle().model)
    flat, offsets, lengths = _text_context._pooled_prefixes(tower, tokenizer, TEXTS)
    tokens = tokenizer(TEXTS)
    assert lengths.tolist() == _pooled_lengths("argmax", tokens)
    assert flat.numel() == lengths.sum() < tokens.numel() / 2
    for i, row in enumerate(tokens):
        assert torch.equal(flat[offsets[i] : offsets[i] + lengths[i]], row[: lengths[i]])


@pytest.mark.slow
def test_vit_b_32_text_tower_matches_open_clip():
    """The real ViT-B-32 architecture (random weights) on LAION-like words and a long caption."""
    embedder = _embedder("ViT-B-32", batch_size=8)
    texts = ["dog", "new york", "t-shirt", "", "a photo of " + "a very long caption " * 20]
    expected = _reference(embedder, texts)
    T, lengths = _encode_recording_lengths(embedder, texts)
    assert max(lengths) == 77 and min(lengths) <= 4
    np.testing.assert_allclose(T, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def test_short_texts_are_batched_by_tokens(architectures):
    """A pass holds the tokens of batch_size texts at full context (here 2 x 16 tokens)."""
    embedder = _embedder(architectures["argmax"], batch_size=2)
    words = ["dog", "cat", "car", "tree", "sky", "sea", "road", "house", "boat", "snow"]
    words += ["grass", "food", "an astronaut riding a horse"]
    shapes = []
    transformer = _text_transformer(embedder._bundle().model)
    handle = transformer.register_forward_pre_hook(lambda _, args: shapes.append(args[0].shape))
    try:
        T = embedder.encode_text(words)
    finally:
        handle.remove()
    # 12 three-token words, 32 // 3 = 10 per pass; the caption alone at its 7 tokens
    assert [tuple(shape[:2]) for shape in shapes] == [(10, 3), (2, 3), (1, 7)]
    np.testing.assert_allclose(T, _reference(embedder, words), atol=1e-5)


def test_out_of_memory_halves_batches_in_full_context_units(architectures):
    from skplice.exceptions import BatchSizeReducedWarning
    from skplice.utils._oom import OutOfMemoryError, ShrinkingBatches

    embedder = _embedder(architectures["argmax"])
    tower = _text_context.causal_text_tower(embedder._bundle().model)
    tokens = _clip_backend.get_tokenizer(embedder._spec())(["dog"] * 25)[:, :3]
    flat, starts = tokens.reshape(-1), np.arange(25) * 3

    def finish(features):  # pretend more than 10 texts at once do not fit
        if features.shape[0] > 10:
            raise OutOfMemoryError("CUDA out of memory")
        return features.numpy()

    forward = ShrinkingBatches(4, what="test", device="cuda")  # 4 x 16 tokens: 21 texts
    with pytest.warns(BatchSizeReducedWarning, match="with 4 items per batch; retrying with 2"):
        parts = list(_text_context._encode_group(tower, flat, starts, 3, forward, "cpu", finish))
    sizes = [part.stop - part.start for part, _ in parts]
    assert sum(sizes) == 25 and max(sizes) == 10 and forward.size == 2
