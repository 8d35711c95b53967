"""open_clip models for CLIPEmbedder: validate a (model, pretrained) spec, load it, name it.

Nothing here knows about scikit-learn; the embedders (``_embedders``) call these functions and
keeps loaded models in :mod:`skplice.embedding._model_cache`.
"""

import hashlib
import json
import os
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from skplice.embedding import _hub, _model_cache
from skplice.exceptions import ModelDownloadError
from skplice.utils._deps import import_optional
from skplice.utils._fingerprint import dir_digest, file_digest
from skplice.utils._text import shorten

#: Seed of the generator that builds ``pretrained=None`` (random) weights.
RANDOM_WEIGHTS_SEED = 0

_HF_HUB = "hf-hub:"
_LOCAL_DIR = "local-dir:"
_CHECKPOINT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".safetensors", ".npz")


@dataclass(frozen=True)
class ClipSpec:
    """A validated model description.

    ``source`` is one of "tag" (an open_clip pretrained tag, cleaned), "checkpoint"
    (``pretrained`` is an absolute file path), "random", "hf-hub" or "local-dir".
    """

    model: str
    source: str
    pretrained: str | None = None


@dataclass(frozen=True)
class ClipBundle:
    """What a loaded model needs for inference; held by the model cache."""

    model: torch.nn.Module
    preprocess: object
    input_dtype: torch.dtype
    device: torch.device
    dim: int


def _open_clip():
    return import_optional("open_clip")


def resolve_spec(model, pretrained):
    """Validate ``model`` and ``pretrained`` without loading or downloading anything.

    Examples
    --------
    >>> from skplice.embedding._clip_backend import resolve_spec
    >>> resolve_spec("ViT-B/32", "LAION2B-s34B-b79K")
    ClipSpec(model='ViT-B-32', source='tag', pretrained='laion2b_s34b_b79k')
    >>> resolve_spec("ViT-B-32", None)
    ClipSpec(model='ViT-B-32', source='random', pretrained=None)
    """
    open_clip = _open_clip()
    if model.startswith(_HF_HUB):
        if not model[len(_HF_HUB) :]:
            raise ValueError("model='hf-hub:' needs a Hugging Face Hub id after the prefix.")
        return ClipSpec(model, "hf-hub")
    if model.startswith(_LOCAL_DIR):
        folder = model[len(_LOCAL_DIR) :]
        if not os.path.isdir(folder):
            raise ValueError(f"model={shorten(repr(model))}: that folder does not exist.")
        return ClipSpec(_LOCAL_DIR + os.path.realpath(folder), "local-dir")

    name = model.replace("/", "-")
    known = open_clip.list_models()
    if name not in known:
        raise ValueError(
            f"Unknown open_clip model {shorten(repr(model))}. Valid names: {', '.join(known)}; or "
            "'hf-hub:<org>/<repo>', or 'local-dir:<folder>' (see open_clip.list_models(), "
            "open_clip.add_model_config)."
        )
    if pretrained is None:
        return ClipSpec(name, "random")
    if isinstance(pretrained, str) and open_clip.pretrained.get_pretrained_cfg(name, pretrained):
        return ClipSpec(name, "tag", pretrained.lower().replace("-", "_"))  # open_clip's rule
    path = os.fspath(pretrained)
    if os.path.isfile(path):
        return ClipSpec(name, "checkpoint", os.path.realpath(path))
    if (
        not isinstance(pretrained, str)
        or os.sep in path
        or "/" in path
        or (path.lower().endswith(_CHECKPOINT_SUFFIXES))
    ):
        raise ValueError(f"Checkpoint file pretrained={shorten(repr(path))} does not exist.")
    tags = open_clip.list_pretrained_tags_by_model(name)
    valid = ", ".join(tags) if tags else "(open_clip lists no pretrained weights for it)"
    raise ValueError(
        f"Unknown pretrained tag {shorten(repr(pretrained))} for open_clip model {name!r}. "
        f"Valid tags for {name!r}: {valid}. Or pass the path of a local checkpoint file, or "
        "None for deterministic random weights."
    )


def _device_key(device):
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


def cache_key(spec, device, precision):
    """Key of ``spec`` on ``device`` in the process-wide model cache."""
    weights = spec.pretrained
    if spec.source == "checkpoint":
        st = os.stat(spec.pretrained)
        weights = (spec.pretrained, st.st_size, st.st_mtime_ns)
    return ("open_clip", spec.model, spec.source, weights, _device_key(device), precision)


def get_bundle(spec, device, precision):
    """The loaded model for ``spec`` from the process-wide cache (loading it on first use)."""
    key = cache_key(spec, device, precision)
    return _model_cache.get_or_load(key, lambda: _load(spec, device, precision))


def get_tokenizer(spec):
    """The open_clip tokenizer of ``spec``'s architecture, cached process-wide."""
    key = ("open_clip-tokenizer", spec.model)

    def load():
        with _hub_scope(spec):  # an hf-hub model's tokenizer comes from the Hub
            return _open_clip().get_tokenizer(spec.model)

    return _model_cache.get_or_load(key, load)


def _download_failed(spec, exc):
    open_clip = _open_clip()
    cache_tip = (
        "To work offline, on a machine with internet access either fill the Hugging Face "
        "cache once (create the same CLIPEmbedder and embed one image), copy "
        "~/.cache/huggingface over and set HF_HUB_OFFLINE=1, or "
    )
    if spec.source == "tag":
        cfg = open_clip.pretrained.get_pretrained_cfg(spec.model, spec.pretrained)
        hub = cfg.get("hf_hub", "").rstrip("/")
        where = f"https://huggingface.co/{hub}" if hub else cfg.get("url", "?")
        what = f"model={spec.model!r}, pretrained={spec.pretrained!r}"
        how = (
            "download the checkpoint file (open_clip_pytorch_model.bin or "
            "open_clip_model.safetensors) and pass its path: "
            f"CLIPEmbedder(model={spec.model!r}, pretrained='/path/to/checkpoint'). A "
            "checkpoint path uses the architecture's default preprocessing; weights with "
            "their own preprocessing need model='local-dir:<folder>', a folder holding the "
            "repository's open_clip_config.json and weights."
        )
    else:
        hub = spec.model[len(_HF_HUB) :]
        where = f"https://huggingface.co/{hub}"
        what = f"model={spec.model!r}"
        how = (
            f"download the repository files (huggingface-cli download {hub} --local-dir "
            f"<folder>) and pass CLIPEmbedder(model='local-dir:<folder>')."
        )
    unreachable = _hub.unreachable_reason()  # the probe's answer, remembered
    return ModelDownloadError(
        f"Could not download the open_clip weights for {what} from {where}"
        + (f" ({unreachable})" if unreachable else "")
        + f": {type(exc).__name__}: {exc}\n{cache_tip}{how}",
        unreachable=unreachable,
    )


def _fetch_weights(spec):
    """Download (or find in the local cache) the files of a tag or hub model."""
    open_clip = _open_clip()
    try:
        if spec.source == "tag":
            cfg = open_clip.pretrained.get_pretrained_cfg(spec.model, spec.pretrained)
            open_clip.pretrained.download_pretrained(cfg)
        else:
            model_id = spec.model[len(_HF_HUB) :]
            open_clip.pretrained.download_pretrained_from_hf(
                model_id, filename="open_clip_config.json"
            )
            open_clip.pretrained.download_pretrained_from_hf(model_id)
    except Exception as exc:
        raise _download_failed(spec, exc) from exc


def _create(spec, device, precision):
    open_clip = _open_clip()
    common = {"device": device, "precision": precision}
    if spec.source == "random":
        # Identical weights in every process: a fixed seed on a forked CPU generator
        # (the caller holds the cache's load lock, so no other model build interleaves).
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(RANDOM_WEIGHTS_SEED)
            return open_clip.create_model(
                spec.model,
                pretrained=None,
                pretrained_image=False,
                pretrained_text=False,
                **common,
            )
    if spec.source in ("tag", "hf-hub"):
        _fetch_weights(spec)
    if spec.source == "tag":
        # Weights trained with QuickGELU (OpenAI's, MetaCLIP's) need it in the
        # architecture too; open_clip only warns about the mismatch.
        cfg = open_clip.pretrained.get_pretrained_cfg(spec.model, spec.pretrained)
        common["force_quick_gelu"] = bool(cfg.get("quick_gelu", False))
    pretrained = spec.pretrained if spec.source in ("tag", "checkpoint") else None
    try:
        return open_clip.create_model(
            spec.model, pretrained=pretrained, require_pretrained=True, **common
        )
    except Exception as exc:
        if spec.source == "checkpoint":
            raise ValueError(
                f"Could not load checkpoint {shorten(repr(spec.pretrained))} into open_clip "
                f"model {spec.model!r}: {type(exc).__name__}: {exc}"
            ) from exc
        if spec.source == "local-dir":
            raise ValueError(
                f"Could not load the open_clip model in folder "
                f"{shorten(repr(spec.model[len(_LOCAL_DIR) :]))} (model='local-dir:...', "
                "a folder with open_clip_config.json and its weights file): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        raise


def _hub_scope(spec):
    """Offline mode around what reaches the Hub, when it cannot be reached (see ``_hub``)."""
    return _hub.offline_if_unreachable() if spec.source in ("tag", "hf-hub") else nullcontext()


def _load(spec, device, precision):
    open_clip = _open_clip()
    from open_clip.transform import PreprocessCfg, image_transform_v2

    with _hub_scope(spec):
        model = _create(spec, device, precision)
    model.eval()
    model.requires_grad_(False)
    preprocess = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)
    input_dtype = open_clip.get_input_dtype(precision) or torch.float32
    dim = open_clip.get_model_config(spec.model)["embed_dim"]
    return ClipBundle(model, preprocess, input_dtype, device, int(dim))


def config_embed_dim(spec):
    """Embedding width from the model's configuration, or None if that needs a download."""
    if spec.source == "hf-hub":
        return None
    return int(_open_clip().get_model_config(spec.model)["embed_dim"])


def identity(spec, precision, normalize):
    """Stable description of the encoder: what a cache of its outputs must be keyed on.

    Never contains a local path: local weights are named by a SHA-256 of their content.
    """
    open_clip = _open_clip()
    parts = ["skplice-encoder/1", "backend=open_clip"]
    if spec.source == "hf-hub":
        parts.append(f"hf-hub={spec.model[len(_HF_HUB) :]}")
    else:
        config = open_clip.get_model_config(spec.model)
        config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
        if spec.source == "local-dir":
            parts.append(f"local-dir-sha256={dir_digest(spec.model[len(_LOCAL_DIR) :])}")
        else:
            parts.append(f"model={spec.model}")
        parts.append(f"config-sha256={config_hash[:16]}")
        if spec.source == "tag":
            parts.append(f"pretrained={spec.pretrained}")
        elif spec.source == "checkpoint":
            parts.append(f"checkpoint-sha256={file_digest(spec.pretrained)}")
        elif spec.source == "random":
            parts.append(
                f"weights=random-deterministic(seed={RANDOM_WEIGHTS_SEED},"
                f"torch={torch.__version__},open_clip={open_clip.__version__})"
            )
        parts.append(f"dim={int(config['embed_dim'])}")
    parts += [f"precision={precision}", f"normalize={bool(normalize)}"]
    return "|".join(parts)
