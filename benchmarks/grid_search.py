"""Grid search over the literal pipeline, with and without CLIPEmbedder(memory=...).

Times ``GridSearchCV(make_pipeline(CLIPEmbedder(...), SpLiCETransformer(l1=0.2),
LogisticRegression()), {"splicetransformer__l1": [0.1, 0.2, 0.3]}, cv=5)`` on a folder of
distinct photos (crops of the photos shipped with scikit-image and scikit-learn, see
``_photos.py``; the label is the source photo), four ways:

- the pipeline as written, no cache: every fold and candidate embeds its images again;
- ``CLIPEmbedder(memory=<empty folder>)``: each image is embedded once;
- the same folder again (a second run of the script): nothing is embedded;
- the docs' former workaround: embed once, then search a pipeline without the embedder.

The model is a small open_clip architecture with random weights (``pretrained=None``,
the cost of the real one), loaded before the timings, and the dictionary (the 10,000
most frequent LAION words encoded by the same model) is encoded once before them too
and read from the on-disk dictionary cache by every fit. A forward hook on the image
tower counts the images embedded. Run from the repository root::

    python -m benchmarks.grid_search                       # 200 photos, ViT-S-32
    python -m benchmarks.grid_search --model ViT-B-32 --images 100 --n-jobs 2
"""

import argparse
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from benchmarks import _data
from benchmarks._measure import threads
from benchmarks._photos import write_photos
from benchmarks._report import RESULTS_DIR, save, to_text
from benchmarks.text_encoding import timed
from skplice import CLIPEmbedder, SpLiCETransformer
from skplice.embedding import embedding_cache_info

GRID = {"splicetransformer__l1": [0.1, 0.2, 0.3]}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-S-32", help="open_clip architecture")
    parser.add_argument("--images", type=int, default=200, help="photos in the folder")
    parser.add_argument("--cv", type=int, default=5, help="cross-validation folds")
    parser.add_argument("--vocabulary-size", type=int, default=10000)
    parser.add_argument("--n-jobs", type=int, default=None, help="GridSearchCV's n_jobs")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's choice)"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


class ImagesEmbedded:
    """Counts the images that go through the image tower of ``model`` (this process)."""

    def __init__(self, model):
        self.count = 0
        self.handle = model.visual.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.count += args[0].shape[0]

    def close(self):
        self.handle.remove()


def main(argv=None):
    """Run the benchmark; return the table."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, threads(args.threads), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No pretrained weights loaded")
        tmp = Path(tmp)
        (tmp / "home" / "vocabularies").mkdir(parents=True)
        shutil.copy(_data.VOCAB_DIR / "laion.txt", tmp / "home" / "vocabularies" / "laion.txt")
        (tmp / "photos").mkdir()
        # about 10 photos per class or more, so that every fold has every class
        n_classes = max(2, args.images // (2 * args.cv))
        paths, labels = write_photos(tmp / "photos", args.images, n_sources=n_classes)
        with _environment(SKPLICE_HOME=str(tmp / "home")):
            table = run(args, tmp, paths, labels)
    heading = (
        f"## Grid search over the literal pipeline: {args.images} photos, {args.model} "
        f"(random weights), {args.vocabulary_size:,} LAION concepts, "
        f"{len(GRID['splicetransformer__l1'])} l1 values x {args.cv} folds, "
        f"n_jobs={args.n_jobs}, CPU, {torch.get_num_threads()} threads"
    )
    print(f"\n{heading}\n\n{to_text(table)}\n")
    save(table, f"grid-search-{args.model}-n{args.images}", heading, args.results_dir)
    return table


def run(args, tmp, paths, labels):
    def embedder(memory=None):
        return CLIPEmbedder(args.model, None, device="cpu", memory=memory)

    def splice():
        return SpLiCETransformer(
            l1=0.2,
            vocabulary_size=args.vocabulary_size,
            encoder=embedder(),
            device="cpu",
        )

    model = embedder()._bundle().model  # loaded once, shared by every embedder below
    dictionary_wall = timed(splice().fit, np.ones((2, embedder()._embedding_dim())))[1]

    def search(pipeline, X):
        return GridSearchCV(pipeline, GRID, cv=args.cv, n_jobs=args.n_jobs).fit(X, labels)

    def literal(memory):
        return search(make_pipeline(embedder(memory), splice(), _probe()), paths)

    def embed_first():
        X = embedder().transform(paths)
        return search(make_pipeline(splice(), _probe()), X)

    runs = [
        ("pipeline as written, no cache", lambda: literal(None)),
        ("memory=<empty folder>: each image embedded once", lambda: literal(tmp / "cache")),
        ("memory=<same folder>, second run", lambda: literal(tmp / "cache")),
        ("embed first, then search the rest (former workaround)", embed_first),
    ]
    rows, reference = [], None
    for label, fit in runs:
        counter, before = ImagesEmbedded(model), embedding_cache_info()
        try:
            result, wall, cpu = timed(fit)
        finally:
            counter.close()
        scores = result.cv_results_["mean_test_score"]
        reference = scores if reference is None else reference
        hits = embedding_cache_info().hits - before.hits
        in_process = args.n_jobs in (None, 1)  # workers count in their own processes
        rows.append(
            {
                "run": label,
                "wall (s)": wall,
                "CPU (s)": cpu,
                "images embedded": counter.count if in_process else np.nan,
                "cache hits": hits if in_process else np.nan,
                "best l1": result.best_params_["splicetransformer__l1"],
                "max |score diff|": np.abs(scores - reference).max(),
            }
        )
    table = pd.DataFrame(rows)
    table["speed-up"] = table["wall (s)"].iloc[0] / table["wall (s)"]
    print(f"(the dictionary was encoded once, before the runs, in {dictionary_wall:.1f} s)")
    return table


@contextmanager
def _environment(**variables):
    """Set environment variables (inherited by worker processes) for the block."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _probe():
    return LogisticRegression(max_iter=1000)


if __name__ == "__main__":
    main()
