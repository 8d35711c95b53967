"""Encode texts with an open_clip text tower at the shortest context that gives the same result.

open_clip pads every text to the model's context length (77 tokens for OpenAI-style CLIP),
but a concept such as "dog" is three tokens: start, word, end. When the text tower is
causal (each position attends only to itself and earlier positions) and its embedding is
the hidden state at one position (the end token for ``pool_type="argmax"`` or ``"eos"``,
the first token for ``"first"``), nothing after that position can change the result. So
each text is encoded at its *pooled length*, the pooled position plus one, with the
positional embedding and the causal mask sliced to that length: the same numbers as the
full context, up to float rounding, for a fraction of the work (see
``benchmarks/text_encoding.py``).

Texts are grouped by pooled length and each group runs in batches of exactly that
length, so a text's result does not depend on which other texts it is encoded with. The
encoding runs through the model's own modules (token embedding, transformer, final norm,
open_clip's ``text_global_pool``, projection); :func:`causal_text_tower` accepts only the
towers for which that is exact and returns None for any other (bidirectional towers such
as SigLIP's, Hugging Face or CoCa towers, pooling at the last padded position, custom
classes), which are then encoded at full context by ``model.encode_text``.
"""

from dataclasses import dataclass

import numpy as np
import torch

from skplice.utils._oom import ShrinkingBatches

#: Pooling rules whose result is the hidden state of one position that does not depend on
#: padding. ("last" pools the final padded position: exact, but nothing to save.)
_POSITIONAL_POOLING = ("first", "argmax", "eos")
#: Texts tokenized at a time: the full-context token tensor of one chunk is all that is
#: ever held at once; only each text's tokens up to its pooled position are kept.
_TOKENIZE_CHUNK = 4096


@dataclass(frozen=True)
class CausalTextTower:
    """The modules of a causal, position-pooled open_clip text tower (views, no copies)."""

    token_embedding: torch.nn.Module
    positional_embedding: torch.Tensor
    transformer: torch.nn.Module
    attn_mask: torch.Tensor
    ln_final: torch.nn.Module
    text_projection: object
    pool_type: str
    eos_id: int | None

    def pooled_lengths(self, tokens):
        """Pooled position + 1 of each row of full-context ``tokens``, by open_clip's rule."""
        from open_clip.transformer import text_global_pool

        n, length = tokens.shape
        positions = torch.arange(length, device=tokens.device).expand(n, length).unsqueeze(-1)
        pooled = text_global_pool(positions, tokens, self.pool_type, eos_token_id=self.eos_id)
        return pooled[:, 0] + 1

    def encode(self, tokens):
        """Text features of ``tokens`` (batch, length): the model's ``encode_text`` at that length.

        Exact when every row's pooled position is below ``length``: the causal mask keeps
        the later positions out of it.
        """
        from open_clip.transformer import text_global_pool

        length = tokens.shape[1]
        cast_dtype = self.transformer.get_cast_dtype()
        x = self.token_embedding(tokens).to(cast_dtype)
        x = x + self.positional_embedding[:length].to(cast_dtype)
        x = self.transformer(x, attn_mask=self.attn_mask[:length, :length])
        x = self.ln_final(x)
        x = text_global_pool(x, tokens, self.pool_type, eos_token_id=self.eos_id)
        if self.text_projection is None:
            return x
        if isinstance(self.text_projection, torch.nn.Linear):
            return self.text_projection(x)
        return x @ self.text_projection


def causal_text_tower(model):
    """The text tower of ``model`` if short-context encoding is exact for it, else None.

    Accepted: open_clip's own ``CLIP`` class, and ``CustomTextCLIP`` with open_clip's
    ``TextTransformer`` (EVA, ViTamin, PE-Core, ...), when the attention mask is causal,
    the pooling takes one position ("first", "argmax" or "eos"), there is no class token
    (CoCa) and no padding mask. Subclasses are refused: they may encode differently.
    """
    from open_clip.model import CLIP, CustomTextCLIP
    from open_clip.transformer import TextTransformer, Transformer

    if type(model) is CLIP:
        tower = CausalTextTower(
            model.token_embedding,
            model.positional_embedding,
            model.transformer,
            model.attn_mask,
            model.ln_final,
            model.text_projection,
            model.text_pool_type,
            getattr(model, "text_eos_id", None),
        )
    elif type(model) is CustomTextCLIP and type(model.text) is TextTransformer:
        text = model.text
        if text.cls_emb is not None or text.use_pad_mask or text.output_tokens:
            return None
        tower = CausalTextTower(
            text.token_embedding,
            text.positional_embedding,
            text.transformer,
            text.attn_mask,
            text.ln_final,
            text.text_projection,
            text.pool_type,
            getattr(text, "eos_id", None),
        )
    else:
        return None
    if (
        type(tower.transformer) is not Transformer
        or tower.pool_type not in _POSITIONAL_POOLING
        or not _is_causal(tower.attn_mask)
    ):
        return None
    return tower


def _is_causal(mask):
    """Whether ``mask`` is the additive causal mask: 0 on and below the diagonal, -inf above."""
    if not isinstance(mask, torch.Tensor) or mask.ndim != 2 or mask.shape[0] != mask.shape[1]:
        return False
    if mask.device.type == "meta":
        return False  # no values to check
    above = torch.ones(mask.shape, dtype=torch.bool, device=mask.device).triu(1)
    return bool(torch.all(mask[above] == float("-inf")) and torch.all(mask[~above] == 0))


def encode_texts(model, tokenizer, texts, *, batch_size, device, finish, on_rows, what):
    """Encode ``texts`` with ``model``'s text tower, ``batch_size`` full-length texts per pass.

    Each batch's features go through ``finish`` (to float32 numpy rows) and then to
    ``on_rows(rows, features)`` with the positions of those texts in ``texts``. Causal,
    position-pooled towers (:func:`causal_text_tower`) run at each text's pooled length,
    with as many texts per pass as hold the tokens of ``batch_size`` texts at full
    context; any other runs ``model.encode_text`` at full context, ``batch_size`` texts
    per pass, in input order. Out of device memory, batches are halved (see
    :mod:`skplice.utils._oom`).

    Returns
    -------
    bool
        Whether the short context was used.
    """
    forward = ShrinkingBatches(batch_size, what=what, device=device)
    tower = causal_text_tower(model)
    if tower is None:

        def encode_full(start, stop):
            return finish(model.encode_text(tokenizer(texts[start:stop]).to(device)))

        for start, stop, features in forward.run(encode_full, len(texts)):
            on_rows(np.arange(start, stop), features)
        return False

    flat, offsets, lengths = _pooled_prefixes(tower, tokenizer, texts)
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        for part, features in _encode_group(
            tower, flat, offsets[rows], int(length), forward, device, finish
        ):
            on_rows(rows[part], features)
    return True


def _encode_group(tower, flat, starts, length, forward, device, finish):
    """Yield ``(slice of the group, features)`` for texts of one pooled ``length``.

    ``starts`` are the offsets in ``flat`` of the texts' tokens. A batch holds as many
    tokens as ``forward.size`` texts at full context: the same memory (less for
    attention) in far fewer, larger matrix products. ``forward`` counts in those
    full-context units, so a batch halved out of memory gives the right advice.
    """
    per_unit = max(1, tower.positional_embedding.shape[0] // length)

    def texts(start, stop):
        return slice(start * per_unit, min(stop * per_unit, len(starts)))

    def encode(start, stop):
        # each text's tokens, gathered into (texts, length)
        gather = torch.from_numpy(starts[texts(start, stop), None] + np.arange(length))
        return finish(tower.encode(flat[gather].to(device)))

    for start, stop, features in forward.run(encode, -(-len(starts) // per_unit)):
        yield texts(start, stop), features


def _pooled_prefixes(tower, tokenizer, texts):
    """Every text's tokens up to its pooled position, concatenated, with offsets and lengths."""
    pieces, lengths = [], np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), _TOKENIZE_CHUNK):
        stop = min(start + _TOKENIZE_CHUNK, len(texts))
        tokens = tokenizer(texts[start:stop])
        chunk_lengths = tower.pooled_lengths(tokens)
        keep = torch.arange(tokens.shape[1]) < chunk_lengths[:, None]
        pieces.append(tokens[keep])  # row-major: the rows' prefixes, one after another
        lengths[start:stop] = chunk_lengths.numpy()
    flat = torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(texts) else lengths
    return flat, offsets, lengths
