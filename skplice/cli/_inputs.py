"""What the ``skplice`` command reads: checked arguments, arrays, models and vocabularies.

Every check raises :class:`UsageError` (exit status 2) naming the option, the problem and
the fix, before any model is loaded, so that a typo costs seconds, not a model download.
"""

import difflib
import glob
import json
import os
from pathlib import Path

import numpy as np

from skplice.cli._errors import UsageError
from skplice.concepts import list_vocabularies, load_vocabulary
from skplice.utils import get_data_home, import_optional, non_regular_kind

#: With ``--image-mean auto``, the fewest inputs whose own mean is used for centring.
MIN_INPUTS_FOR_MEAN = 10
MEAN_MODES = ("auto", "published", "inputs", "none")


# ------------------------------------------------------------------------------ files


def check_image_paths(paths, *, on_error):
    """The image arguments as strings; missing files are refused unless skipped later."""
    for path in paths:
        if os.path.isdir(path):
            raise UsageError(
                f"{path} is a folder; pass image files, e.g. {os.path.join(path, '*.jpg')}."
            )
        if not os.path.exists(path) and glob.has_magic(path):
            raise UsageError(_unexpanded_pattern(path))
        if on_error == "raise" and not os.path.exists(path):
            raise UsageError(
                f"image file not found: {path} (use --on-error skip to explain the other "
                "images anyway)."
            )
        if on_error == "raise" and (kind := non_regular_kind(path)):
            raise UsageError(
                f"{path} is {kind}, not an image file (use --on-error skip to explain the "
                "other images anyway)."
            )
    return [str(path) for path in paths]


def _unexpanded_pattern(path):
    matches = len(glob.glob(path))
    if matches:
        why = (
            f"it matches {matches} files, but it was quoted, so the shell passed it as is: "
            "leave it unquoted"
        )
    else:
        why = (
            "the shell passes a pattern as is when no file matches it: check the folder and "
            "the extension (*.jpg matches neither .JPG nor .jpeg)"
        )
    return f"no file is named {path}; it looks like a file-name pattern, and {why}."


def check_output_path(path, option):
    """Refuse an output path whose folder does not exist, or which is a folder."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name.")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {path}: the folder {path.parent} does not exist.")
    return path


def load_array(path, option, *, mmap=False):
    """A numeric array from a ``.npy`` file (memory-mapped if asked), with clear errors."""
    path = Path(path)
    if not os.path.exists(path):  # unlike Path.exists, False for a name too long too
        raise UsageError(f"{option}: file not found: {path}")
    if kind := non_regular_kind(path):
        raise UsageError(f"{option}: {path} is {kind}, not a .npy file.")
    try:
        with open(path, "rb") as file:
            magic = file.read(6)
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path}: {exc.strerror or exc}.") from exc
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK\x03\x04"):  # .npy, or .npz (zip)
        raise UsageError(
            f"{option}: {path} is not a .npy file (it lacks numpy's header). Save arrays "
            "with numpy.save(path, array)."
        )
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UsageError(
            f"{option}: {path} is not a readable .npy file ({type(exc).__name__}: {exc}). "
            "Save arrays with numpy.save(path, array)."
        ) from exc
    if isinstance(array, np.lib.npyio.NpzFile):
        names = ", ".join(array.files)
        array.close()
        raise UsageError(
            f"{option}: {path} is a .npz archive (arrays: {names}); save the one array "
            "you mean with numpy.save as a .npy file."
        )
    if array.dtype.kind not in "iuf":
        raise UsageError(f"{option}: {path} holds {array.dtype} values; expected numbers.")
    return array


def load_matrix(path, option, *, what, mmap=False):
    """A 2-D numeric array with at least one row and one column."""
    array = load_array(path, option, mmap=mmap)
    if array.ndim != 2 or 0 in array.shape:
        hint = " (a single row x is saved as x[None, :])" if array.ndim == 1 else ""
        raise UsageError(
            f"{option}: expected a 2-D array of {what}; {path} has shape {array.shape}{hint}."
        )
    return array


def load_names(path, n_rows):
    """Concept names from a text file (one per line), exactly one per dictionary row."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--names: file not found: {path}")
    try:
        names = load_vocabulary(path)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--names: {exc}") from exc
    if len(names) != n_rows:
        raise UsageError(
            f"--names: {path} has {len(names)} names but the dictionary has {n_rows} rows; "
            "give one name per row, in row order (blank lines are ignored)."
        )
    return names


# ------------------------------------------------------------------------- centring


def check_mean_source(value):
    """``auto``, ``published``, ``inputs``, ``none``, or the Path of an existing mean file."""
    if value in MEAN_MODES:
        return value
    path = Path(value)
    if not path.is_file():
        raise UsageError(
            f"--image-mean {value}: no such file. Give auto, published, inputs, none, or a "
            ".npy (or torch .pt) file holding a mean embedding or embeddings to average."
        )
    return path


def published_mean_model(source, embedder):
    """Resolve ``auto`` and ``published`` to the model whose published mean to use, if any.

    Returns ``(source, embedder)``: ``("published", embedder)`` when the embedder's
    model has a published mean and ``source`` is ``auto`` or ``published``; else
    ``source`` unchanged and None. An explicit ``published`` without one is a usage error.
    """
    if source not in ("auto", "published"):
        return source, None
    if embedder is not None and _published_mean_location(embedder) is not None:
        return "published", embedder
    if source == "auto":
        return source, None
    if embedder is None:
        raise UsageError(
            "--image-mean published takes the mean of the model given by --model and "
            "--pretrained, which --dictionary replaces; pass the mean as a FILE instead."
        )
    raise UsageError(
        f"--image-mean published: the SpLiCE authors published no mean image embedding "
        f"for {embedder.model_label()}; they did for {_published_models()}. Use "
        "--image-mean inputs, none or FILE."
    )


def _published_mean_location(embedder):
    """``(url, cache path)`` of the published mean of the embedder's model, or None."""
    from skplice.concepts import locate_image_mean

    try:
        return locate_image_mean(embedder.model, embedder.pretrained)
    except ValueError:  # no mean was published for it
        return None


def _published_models():
    from skplice.concepts import list_image_means

    return ", ".join(f"{model} {pretrained}" for model, pretrained in list_image_means())


def centring_mode(source, n_inputs):
    """Resolve ``auto`` (when no published mean applies) and check ``inputs``.

    Returns ``"published"``, ``"inputs"``, ``"none"`` or the mean file's Path, and a
    note to print (or None) when ``auto`` falls back to no centring.
    """
    if source == "auto":
        if n_inputs >= MIN_INPUTS_FOR_MEAN:
            return "inputs", None
        subject = "1 input is" if n_inputs == 1 else f"{n_inputs} inputs are"
        pronoun = "it is" if n_inputs == 1 else "they are"
        note = (
            f"{subject} too few to estimate CLIP's mean image embedding (--image-mean "
            f"auto needs {MIN_INPUTS_FOR_MEAN}) and no published mean applies here, so "
            f"{pronoun} decomposed without centring, which gives less faithful concepts. "
            "For SpLiCE's method, use a model with a published mean (the default one "
            "has: see --help), pass --image-mean FILE with the embeddings of many varied "
            f"images (from 'skplice embed'), or give {MIN_INPUTS_FOR_MEAN} or more inputs "
            "at once; --image-mean none silences this note."
        )
        return "none", note
    if source == "inputs" and n_inputs < 2:
        raise UsageError(
            "--image-mean inputs needs at least 2 inputs: a single embedding minus its own "
            "mean is zero. Pass --image-mean published, FILE or none."
        )
    return source, None


def mean_label(mode, *, n_inputs, model=None):
    """How the inputs were centred, as the output says it: "published mean of ...", ...

    ``model`` is the label of the model whose published mean was used.
    """
    if mode == "published":
        return f"published mean of {model}"
    if mode == "inputs":
        return f"mean of the {n_inputs} inputs"
    if mode == "none":
        return "none"
    return f"mean from {mode}"


def read_image_mean_file(path, n_features):
    """The mean embedding in a file: a vector used as is, or the mean of unit rows.

    ``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)`` (the SpLiCE
    authors ship their means as tensors); other files with ``numpy.load``. A shape of
    ``(d,)`` or ``(1, d)`` is the mean itself; ``(n, d)`` with ``n >= 2`` holds
    embeddings whose L2-normalised rows are averaged, as ``SpLiCETransformer.fit`` does.
    """
    if path.suffix.lower() in (".pt", ".pth"):
        array = _load_tensor(path)
    else:
        array = load_array(path, "--image-mean")
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 2 and array.shape[0] >= 2:
        if not np.all(np.any(array != 0, axis=1)):
            raise UsageError(f"--image-mean: {path} has all-zero rows; remove them.")
        array = _mean_of_unit_rows(array)
    if array.ndim != 1:
        raise UsageError(
            f"--image-mean: {path} has shape {array.shape}; expected a mean embedding (d,) "
            "or embeddings (n, d)."
        )
    if array.shape[0] != n_features:
        raise UsageError(
            f"--image-mean: {path} has {array.shape[0]} features but the embeddings have "
            f"{n_features}: compute the mean with the same CLIP model."
        )
    if not np.all(np.isfinite(array)):
        raise UsageError(f"--image-mean: {path} holds NaN or infinite values.")
    return array


def _mean_of_unit_rows(embeddings):
    """The mean that ``SpLiCETransformer`` learns from these embeddings in ``fit``."""
    from skplice import SpLiCETransformer  # torch, scikit-learn: not for --help

    if not np.all(np.isfinite(embeddings)):
        return embeddings.mean(axis=0)  # refused below, as a mean with NaN would be
    # The identity dictionary needs no model: only the mean is wanted.
    return SpLiCETransformer(dictionary="identity").fit(embeddings).image_mean_


def _load_tensor(path):
    import torch

    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for unreadable files
        raise UsageError(
            f"--image-mean: {path} is not a readable torch file ({type(exc).__name__}: {exc})."
        ) from exc
    if not isinstance(value, torch.Tensor):
        raise UsageError(
            f"--image-mean: {path} holds a {type(value).__name__}; expected a tensor."
        )
    return value.detach().double().numpy()


# --------------------------------------------------------------- models, vocabularies


def estimator_defaults(name):
    """The default parameters of a skplice estimator, the command's own defaults.

    Options left out take these, so the command and the library cannot drift apart.
    """
    import skplice  # the estimators import torch and scikit-learn: not for --help

    return getattr(skplice, name)().get_params()


def check_vocabulary(vocabulary):
    """A named vocabulary, or the path of an existing text file."""
    if vocabulary in list_vocabularies():
        return vocabulary
    if not os.path.isfile(vocabulary):
        close = difflib.get_close_matches(vocabulary, list_vocabularies(), n=1)
        raise UsageError(
            f"--vocabulary {vocabulary}: not a named vocabulary "
            f"({', '.join(list_vocabularies())}) and no such file"
            + (f" (did you mean {close[0]}?)" if close else "")
            + "; a vocabulary file has one concept per line."
        )
    return vocabulary


def image_mean_hint(embedder):
    """How to give the published mean of the embedder's model with a checkpoint file.

    None when no published mean applies (``embedder`` is None). A checkpoint file does
    not say whose weights it holds, so the published mean that ``auto`` would have used
    must then be passed as a file.
    """
    if embedder is None:
        return None
    url, target = _published_mean_location(embedder)
    if target.is_file():
        return (
            "With a checkpoint file, also pass the published mean image embedding, which "
            f"a checkpoint cannot name: --image-mean {target}"
        )
    return (
        f"With a checkpoint file, also pass the published mean image embedding of "
        f"{embedder.model_label()}, which a checkpoint cannot name: download {target.name} "
        f"from {url} and add --image-mean {target.name} "
        f"(or place it at {target}, where it is found without the option when the "
        "model is named by its tag)."
    )


def vocabulary_hint(vocabulary):
    """How to work offline, when a named vocabulary is not in the cache yet (else None)."""
    if vocabulary not in list_vocabularies():
        return None
    target = get_data_home(create=False) / "vocabularies" / f"{vocabulary}.txt"
    if target.is_file():
        return None
    return (
        f"The '{vocabulary}' vocabulary is downloaded on first use too; offline, pass "
        f"--vocabulary words.txt (one concept per line) or place {vocabulary}.txt at {target}."
    )


def register_model_config(path):
    """Register an open_clip architecture from a JSON file; return its model name."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--model-config: file not found: {path}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"--model-config: {path} is not valid JSON ({exc}).") from exc
    required = ("embed_dim", "vision_cfg", "text_cfg")
    missing = [key for key in required if not isinstance(config, dict) or key not in config]
    if missing:
        raise UsageError(
            f"--model-config: {path} lacks {', '.join(missing)}; an open_clip architecture "
            "config has embed_dim, vision_cfg and text_cfg (see open_clip's "
            "model_configs/*.json)."
        )
    open_clip = import_optional("open_clip")
    name = path.stem
    if name in open_clip.list_models() and open_clip.get_model_config(name) != config:
        raise UsageError(
            f"--model-config: {path} would replace open_clip's own '{name}' architecture; "
            "rename the file (its name, without .json, becomes the model name)."
        )
    open_clip.add_model_config(path)
    return name


def resolve_pretrained(model, pretrained):
    """The ``pretrained`` value for CLIPEmbedder: a tag, a checkpoint path, or None."""
    if pretrained is not None:
        return None if pretrained.lower() == "none" else pretrained
    if model.startswith(("hf-hub:", "local-dir:")):
        return None
    name = model.replace("/", "-")  # open_clip's spelling rule: ViT-B/32 is ViT-B-32
    defaults = estimator_defaults("CLIPEmbedder")
    if name == defaults["model"]:
        return defaults["pretrained"]
    open_clip = import_optional("open_clip")
    known = open_clip.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        raise UsageError(
            f"--model {model}: unknown open_clip architecture"
            + (f" (did you mean {', '.join(close)}?)" if close else "")
            + "; open_clip.list_models() names them all. Or give hf-hub:ORG/REPO, "
            "local-dir:FOLDER, or a --model-config file."
        )
    tags = open_clip.list_pretrained_tags_by_model(name)
    shown = f"one of its tags ({', '.join(tags)}), " if tags else ""
    raise UsageError(
        f"--model {model} needs --pretrained: {shown}the path of a checkpoint file, or "
        "none for random weights."
    )
