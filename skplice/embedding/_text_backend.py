"""sentence-transformers models for TextEmbedder: resolve a name or folder, load it, name it."""

import os
from contextlib import nullcontext
from dataclasses import dataclass

from skplice.embedding import _hub, _model_cache
from skplice.utils._deps import import_optional
from skplice.utils._fingerprint import dir_digest
from skplice.utils._text import shorten


@dataclass(frozen=True)
class TextSpec:
    """``model`` is a Hub name (``local=False``) or the real path of a local folder."""

    model: str
    local: bool


def resolve_spec(model):
    """Validate ``model`` (a Hub name or a local folder) without loading it.

    Examples
    --------
    >>> from skplice.embedding._text_backend import resolve_spec
    >>> resolve_spec("all-MiniLM-L6-v2")
    TextSpec(model='all-MiniLM-L6-v2', local=False)
    """
    model = os.fspath(model)
    if os.path.isdir(model):
        return TextSpec(os.path.realpath(model), True)
    # Hub ids are "name" or "org/name"; anything else can only be a (missing) folder.
    looks_like_path = model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1
    if not model or looks_like_path:
        raise ValueError(f"Model folder {shorten(repr(model))} does not exist.")
    return TextSpec(model, False)


def get_model(spec, device):
    """The loaded SentenceTransformer for ``spec`` on ``device``, cached process-wide."""
    key = ("sentence-transformers", spec.model, spec.local, str(device))
    return _model_cache.get_or_load(key, lambda: _load(spec, device))


def _load(spec, device):
    st = import_optional("sentence_transformers")
    try:
        with nullcontext() if spec.local else _hub.offline_if_unreachable():
            model = st.SentenceTransformer(spec.model, device=str(device))
    except Exception as exc:
        if spec.local:
            raise ValueError(
                f"Could not load a sentence-transformers model from folder {spec.model!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        unreachable = _hub.unreachable_reason()  # the probe's answer, remembered
        cause = unreachable or "download from the Hugging Face Hub failed or the name is unknown"
        raise OSError(
            f"Could not load the sentence-transformers model {spec.model!r} ({cause}): "
            f"{type(exc).__name__}: "
            f"{exc}\nTo work offline: on a machine with internet access run "
            f"SentenceTransformer({spec.model!r}).save('/path/to/folder'), copy the folder, "
            "and pass TextEmbedder(model='/path/to/folder')."
        ) from exc
    model.eval()
    return model


def embedding_dim(model):
    """Width of a loaded model's sentence embeddings."""
    getter = getattr(model, "get_embedding_dimension", None) or (
        model.get_sentence_embedding_dimension
    )
    return int(getter())


def identity(spec, normalize):
    """Stable description of the encoder; a local folder is named by its content hash."""
    parts = ["skplice-encoder/1", "backend=sentence-transformers"]
    if spec.local:
        parts.append(f"folder-sha256={dir_digest(spec.model)}")
    else:
        parts.append(f"name={spec.model}")
    parts.append(f"normalize={bool(normalize)}")
    return "|".join(parts)
