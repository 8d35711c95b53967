"""Published mean image embeddings: the SpLiCE authors' means, downloaded and verified.

SpLiCE centres an image embedding by the mean embedding of an image dataset before
decomposing it. The authors published that mean for four CLIP models; with it, a single
image is explained exactly as their code does.
"""

import io
import os
from typing import NamedTuple

from skplice.exceptions import ImageMeanDownloadError
from skplice.utils._download import download_verified, read_verified
from skplice.utils._home import cache_folder, get_data_home, warn_cache_disabled

# Pinned to a commit so the bytes behind the address cannot change under the sha256 sums.
BASE_URL = (
    "https://raw.githubusercontent.com/AI4LIFE-GROUP/SpLiCE/"
    "9a498102ce7c6701f4afe361ffaa86c39b47fa5f/data/means/"
)
URL_ENV_VAR = "SKPLICE_MEANS_URL"


class _Published(NamedTuple):
    model: str  # open_clip's names
    pretrained: str
    file: str
    dim: int
    sha256: str
    size: int  # bytes


_PUBLISHED = (
    _Published(
        "ViT-B-32",
        "laion2b_s34b_b79k",
        "open_clip_ViT-B-32_image.pt",
        512,
        "6b91c6d0e9006e27dfb6f13e6d25a90c5ff24eb14e4ee60cf064a7ddf9f646b7",
        2937,
    ),
    _Published(
        "ViT-B-32",
        "openai",
        "clip_ViT-B-32_image.pt",
        512,
        "dbd73aec9162cc26d3850c042b2a035720c1f6d38fc0b64a73518995f884202b",
        2837,
    ),
    _Published(
        "ViT-B-16",
        "openai",
        "clip_ViT-B-16_image.pt",
        512,
        "2907555438ef16b4677cb72ad81b3c3fe8c9246028714e943dba6c3b91d67eee",
        2837,
    ),
    _Published(
        "RN50",
        "openai",
        "clip_RN50_image.pt",
        1024,
        "e1ee3345ef6faf6f8ebc30f649189bf4e583fe71229b2955e227cf59124d42fa",
        4885,
    ),
)


def list_image_means():
    """The CLIP models whose mean image embedding the SpLiCE authors published.

    Returns
    -------
    list of tuple (str, str)
        ``(model, pretrained)`` pairs in open_clip's names, each accepted by
        :func:`load_image_mean` and by :class:`~skplice.CLIPEmbedder`.

    Examples
    --------
    >>> from skplice import list_image_means
    >>> list_image_means()  # doctest: +NORMALIZE_WHITESPACE
    [('ViT-B-32', 'laion2b_s34b_b79k'), ('ViT-B-32', 'openai'), ('ViT-B-16', 'openai'),
     ('RN50', 'openai')]
    """
    return [(spec.model, spec.pretrained) for spec in _PUBLISHED]


def load_image_mean(model="ViT-B-32", pretrained="laion2b_s34b_b79k", *, data_home=None):
    """The published mean image embedding of a CLIP model (downloaded once, verified).

    The SpLiCE authors explain an image by centring its L2-normalised embedding by
    this mean (``z = normalize(normalize(x) - mean)``), which is what
    ``SpLiCETransformer(image_mean="published")`` does.

    Parameters
    ----------
    model : str, default="ViT-B-32"
        An open_clip architecture name; OpenAI's spelling (``"ViT-B/32"``) works too.
    pretrained : str, default="laion2b_s34b_b79k"
        The open_clip pretrained tag of the weights, in any case (``"LAION2B-s34B-b79K"``
        is ``"laion2b_s34b_b79k"``). :func:`list_image_means` lists the pairs that have
        a published mean.
    data_home : str or path-like, default=None
        Cache folder. When None, the ``SKPLICE_HOME`` environment variable, else
        ``~/.cache/skplice``.

    Returns
    -------
    ndarray of shape (n_features,), dtype float64
        The mean of the L2-normalised image embeddings of a dataset, as published (it
        is not normalised again: its norm is 0.56 to 0.70).

    Raises
    ------
    ValueError
        No mean was published for this model and these weights; the message lists
        the models that have one.
    ImageMeanDownloadError
        The file is neither cached nor downloadable (a subclass of OSError; the
        message names the address and where to place the file by hand).

    Notes
    -----
    The files come from the authors' repository (AI4LIFE-GROUP/SpLiCE at commit
    ``9a498102``, Apache-2.0): ``BASE_URL`` followed by the file name, which
    ``SKPLICE_MEANS_URL`` replaces with a mirror. Each is downloaded on first use,
    checked against its sha256, and cached as ``<data_home>/means/<file>``; a file
    placed there by hand is used if its sha256 matches, and removed with a warning
    (then downloaded again) if not. The file is a torch tensor, read with
    ``torch.load(weights_only=True)`` only after its sha256 matched, so it is never
    unpickled.

    The ViT-B-32 LAION-2B mean was computed by the authors on MSCOCO images; how the
    three OpenAI-CLIP means were computed is not documented.

    Examples
    --------
    >>> from skplice import load_image_mean
    >>> mean = load_image_mean("ViT-B-32", "laion2b_s34b_b79k")  # doctest: +SKIP
    >>> mean.shape, round(float((mean**2).sum() ** 0.5), 2)  # doctest: +SKIP
    ((512,), 0.56)
    >>> load_image_mean("ViT-L-14", "openai")
    Traceback (most recent call last):
    ...
    ValueError: No published mean image embedding for model 'ViT-L-14' with pretrained='openai'...
    """
    spec = _find(model, pretrained)
    if spec is None:
        raise _not_published(model, pretrained)
    # An unwritable cache is still read, and a download then goes on without it.
    folder = cache_folder("means", data_home)
    target = folder.path / spec.file
    what = f"the published mean image embedding of {spec.model} {spec.pretrained}"
    data = read_verified(target, spec.sha256, what)
    if data is None:
        if folder.unwritable:
            warn_cache_disabled(folder.path, folder.unwritable, stacklevel=2)
        data = _download(spec, target)
    # Read the verified bytes themselves, never a second read of a file that another
    # process may have replaced in between.
    return _to_numpy(data, spec)


def locate_image_mean(model="ViT-B-32", pretrained="laion2b_s34b_b79k", *, data_home=None):
    """Where :func:`load_image_mean` downloads a published mean from, and caches it.

    Nothing is downloaded, read or created: use it to fetch the file elsewhere, or to
    tell a user where to place it by hand on a machine without internet access.

    Parameters
    ----------
    model : str, default="ViT-B-32"
        An open_clip architecture name, spelt as for :func:`load_image_mean`.
    pretrained : str, default="laion2b_s34b_b79k"
        The open_clip pretrained tag of the weights, spelt as for
        :func:`load_image_mean`.
    data_home : str or path-like, default=None
        Cache folder. When None, the ``SKPLICE_HOME`` environment variable, else
        ``~/.cache/skplice``.

    Returns
    -------
    url : str
        The address of the file (``SKPLICE_MEANS_URL`` replaces the base address).
    path : pathlib.Path
        Where the file is cached, and where a file placed by hand is found.

    Raises
    ------
    ValueError
        No mean was published for this model and these weights; the message lists
        the models that have one.

    Examples
    --------
    >>> from skplice.concepts import locate_image_mean
    >>> url, path = locate_image_mean("ViT-B/32", "openai", data_home="/data/skplice")
    >>> url.rsplit("/", 1)[-1], path.as_posix()
    ('clip_ViT-B-32_image.pt', '/data/skplice/means/clip_ViT-B-32_image.pt')
    """
    spec = _find(model, pretrained)
    if spec is None:
        raise _not_published(model, pretrained)
    return _url(spec), _cache_path(spec, data_home, create=False)


def _not_published(model, pretrained):
    return ValueError(
        f"No published mean image embedding for model {model!r} with "
        f"pretrained={pretrained!r}. The SpLiCE authors published one for: "
        f"{describe_published()}. For other models, learn the mean from your own "
        "images (SpLiCETransformer(image_mean=None).fit(X)) or pass one as an array."
    )


def has_image_mean(model, pretrained):
    """Whether :func:`load_image_mean` knows a published mean for these names."""
    return _find(model, pretrained) is not None


def cache_path(model, pretrained, *, data_home=None):
    """Where the published mean of these names is cached (or placed by hand); None if none.

    Names the path only: nothing is created or read.
    """
    spec = _find(model, pretrained)
    return None if spec is None else _cache_path(spec, data_home, create=False)


def download_url(model, pretrained):
    """The address :func:`load_image_mean` downloads these names' mean from; None if none."""
    spec = _find(model, pretrained)
    return None if spec is None else _url(spec)


def _cache_path(spec, data_home, create=True):
    return get_data_home(data_home, create=create) / "means" / spec.file


def _url(spec):
    return (os.environ.get(URL_ENV_VAR) or BASE_URL).rstrip("/") + f"/{spec.file}"


def describe_published():
    """The models with a published mean, e.g. for error messages."""
    return ", ".join(f"{spec.model} {spec.pretrained}" for spec in _PUBLISHED)


def _find(model, pretrained):
    if not isinstance(model, str) or not isinstance(pretrained, str):
        return None
    # The spellings that open_clip (and skplice.CLIPEmbedder) accept for the same weights.
    model = model.replace("/", "-")
    pretrained = pretrained.lower().replace("-", "_")
    for spec in _PUBLISHED:
        if (spec.model, spec.pretrained) == (model, pretrained):
            return spec
    return None


def _download(spec, target):
    url = _url(spec)

    def failure(cause):
        return ImageMeanDownloadError(
            f"Could not download the published mean image embedding of {spec.model} "
            f"{spec.pretrained} from {url}: {cause}. To install it by hand, fetch that "
            f"file elsewhere and place it at {target} (expected sha256 {spec.sha256}); "
            f"or set {URL_ENV_VAR} to a mirror."
        )

    return download_verified(url, target, spec.sha256, spec.size, failure)


def _to_numpy(data, spec):
    import torch

    # The authors saved a CUDA tensor; map_location reads it on any machine.
    tensor = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    mean = tensor.detach().to(torch.float64).numpy()
    if mean.shape != (spec.dim,):  # pragma: no cover - the sha256 pins the content
        raise ValueError(f"{spec.file} holds shape {mean.shape}, expected ({spec.dim},).")
    return mean
