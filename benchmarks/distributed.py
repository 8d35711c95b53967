"""Throughput of images -> CLIP embeddings -> SpLiCE weights -> Parquet on a Dask cluster.

The same folder of images is embedded and decomposed in this process (the reference, torch
using every core, then one thread) and on ``distributed.LocalCluster`` s of 1, 2, ...
worker processes with one thread each (``dask.dataframe.map_partitions``, results written
as Parquet, a long table sample/concept/weight). Each worker loads the model once, in a
warm-up pass before the clock starts; the fitted SpLiCETransformer and the embedder ship
to the workers inside the tasks. Every distributed result is checked against the local
one. ``CPU (s)`` is the processor time of the processes doing the work (this one, or the
workers): on a machine shared with other jobs, wall times vary with their load, CPU time
much less. The model has random weights (nothing is downloaded): its throughput is that of the
real architecture. Run from the repository root::

    python -m benchmarks.distributed                          # ViT-B-32, 192 images, 2000 concepts
    python -m benchmarks.distributed --workers 1 2 4 --images 512
    python -m benchmarks.distributed --tiny --images 2000     # the tests' tiny CLIP
"""

import argparse
import itertools
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks._data import CACHE_DIR, VOCAB_DIR, content_hash, laion_words
from benchmarks._report import RESULTS_DIR, save, to_text
from skplice import CLIPEmbedder, SpLiCETransformer, weights_frame

TINY_NAME = "skplice-benchmark-tiny-clip"
TINY_CONFIG = {  # the tests' tiny architecture (tests/conftest.py)
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=192, help="number of images")
    parser.add_argument("--image-size", type=int, default=256, help="side of the JPEGs")
    parser.add_argument("--model", default="ViT-B-32", help="open_clip architecture")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny CLIP instead")
    parser.add_argument("--n-concepts", type=int, default=2000, help="LAION words")
    parser.add_argument("--l1", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=32, help="CLIPEmbedder batch")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--partitions-per-worker", type=int, default=4)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


# -- the work, as plain functions of a partition (they run on the workers) -------------------


def embed_partition(frame, embedder):
    """CLIP embeddings of a partition of image paths, keeping its index."""
    X = embedder.transform(frame["path"].tolist())
    return pd.DataFrame(X, index=frame.index, columns=embedder.get_feature_names_out())


def decompose_partition(embeddings, splice):
    """The non-zero weights of a partition as (sample, concept, weight) rows."""
    return weights_frame(splice.transform(embeddings.to_numpy()), index=embeddings.index)


LONG_META = pd.DataFrame(
    {
        "sample": pd.Series(dtype="int64"),
        "concept": pd.Series(dtype="str"),
        "weight": pd.Series(dtype="float32"),
    }
)


# -- inputs ---------------------------------------------------------------------------------


def make_images(n, size, cache_dir):
    """``n`` JPEGs cut from scikit-image's photos (random crops, flips), cached by content."""
    from PIL import Image
    from skimage import data

    folder = Path(cache_dir) / f"images-{content_hash('distributed', n, size)}"
    paths = [folder / f"image{i:05d}.jpg" for i in range(n)]
    if all(p.exists() for p in paths):
        return [str(p) for p in paths]
    folder.mkdir(parents=True, exist_ok=True)
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.camera()]
    rng = np.random.default_rng(0)
    for path in paths:
        photo = photos[rng.integers(len(photos))]
        h, w = photo.shape[:2]
        side = int(rng.integers(min(h, w) // 2, min(h, w)))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = photo[top : top + side, left : left + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        Image.fromarray(np.ascontiguousarray(crop)).resize((size, size)).save(path, quality=90)
    return [str(p) for p in paths]


def vocabulary(n_concepts):
    """The most frequent LAION words when the vocabulary file is here, else made-up words."""
    if (VOCAB_DIR / "laion.txt").exists():
        return laion_words(n_concepts), "LAION"
    return [f"concept{i}" for i in range(n_concepts)], "generated names"


def register_tiny(folder):
    """Write the tiny architecture's config and register it with open_clip here."""
    import open_clip

    path = Path(folder) / f"{TINY_NAME}.json"
    path.write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(path)
    return str(path)


# -- runs -----------------------------------------------------------------------------------


def run_local(frame, embedder, splice, n_partitions, out, threads):
    """Embed, decompose and write partition by partition in this process.

    Returns the wall time and the CPU time of this process, in seconds.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        decompose_partition(embed_partition(frame.iloc[:1], embedder), splice)  # warm up
        cpu, start = time.process_time(), time.perf_counter()
        out.mkdir(parents=True)
        bounds = np.linspace(0, len(frame), n_partitions + 1).astype(int)
        for i, (a, b) in enumerate(itertools.pairwise(bounds)):
            table = decompose_partition(embed_partition(frame.iloc[a:b], embedder), splice)
            table.to_parquet(out / f"part.{i}.parquet", index=False)
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        torch.set_num_threads(previous)


def run_cluster(frame, embedder, splice, n_workers, args, out, tiny_config):
    """The same work on a LocalCluster of ``n_workers`` single-threaded processes.

    Returns the wall time, the CPU time of the workers, and their torch thread counts.
    """
    import dask.dataframe as dd
    import open_clip
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        if tiny_config is not None:
            client.run(open_clip.add_model_config, tiny_config)
        client.run(embed_partition, frame.iloc[:1], embedder)  # each worker loads the model
        paths = dd.from_pandas(frame, npartitions=n_workers * args.partitions_per_worker)
        meta = pd.DataFrame(columns=embedder.get_feature_names_out(), dtype=np.float32)
        cpu, start = client.run(time.process_time), time.perf_counter()
        embeddings = paths.map_partitions(embed_partition, embedder, meta=meta)
        weights = embeddings.map_partitions(decompose_partition, splice, meta=LONG_META)
        weights.to_parquet(out, write_index=False)
        elapsed = time.perf_counter() - start
        cpu = sum(client.run(time.process_time).values()) - sum(cpu.values())
        threads = sorted(set(client.run(torch.get_num_threads).values()))
    return elapsed, cpu, threads


def read_weights(folder, n_images, names):
    """The dense weight matrix from a folder of Parquet parts (sample, concept, weight)."""
    table = pd.read_parquet(folder)
    W = np.zeros((n_images, len(names)), dtype=np.float32)
    column = {name: j for j, name in enumerate(names)}
    W[table["sample"].to_numpy(), table["concept"].map(column).to_numpy()] = table["weight"]
    return W


def main(argv=None):
    args = parse_args(argv)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    load = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="skplice-distributed-"))
    os.environ.setdefault("SKPLICE_HOME", str(args.cache_dir / "skplice_home"))
    try:
        tiny_config = register_tiny(work) if args.tiny else None
        model = TINY_NAME if args.tiny else args.model
        embedder = CLIPEmbedder(model, pretrained=None, device="cpu", batch_size=args.batch_size)
        paths = make_images(args.images, args.image_size, args.cache_dir)
        frame = pd.DataFrame({"path": paths})
        words, source = vocabulary(args.n_concepts)
        print(f"fitting: {model} (random weights), {len(words)} {source} concepts ...")
        splice = SpLiCETransformer(l1=args.l1, vocabulary=words, encoder=embedder)
        splice.fit(embedder.transform(paths[:64]))

        runs = []
        # All of torch's threads, then one; once when torch has only one.
        for threads in dict.fromkeys((torch.get_num_threads(), 1)):
            out = work / f"local-{threads}"
            wall, cpu = run_local(frame, embedder, splice, 4, out, threads)
            runs.append(("this process", 1, threads, wall, cpu, out))
        for n_workers in args.workers:
            out = work / f"cluster-{n_workers}"
            wall, cpu, threads = run_cluster(
                frame, embedder, splice, n_workers, args, out, tiny_config
            )
            runs.append(("LocalCluster", n_workers, threads[0], wall, cpu, out))

        reference = read_weights(runs[0][5], len(paths), splice.concept_names_)
        one_worker = next((r[3] for r in runs if r[:2] == ("LocalCluster", 1)), np.nan)
        rows = []
        for run, processes, threads, wall, cpu, out in runs:
            W = read_weights(out, len(paths), splice.concept_names_)
            rows.append(
                {
                    "run": run,
                    "processes": processes,
                    "torch threads each": threads,
                    "images": len(paths),
                    "wall (s)": wall,
                    "images/s": len(paths) / wall,
                    "speed-up vs 1 worker": one_worker / wall,
                    "CPU (s)": cpu,
                    "images/CPU-s": len(paths) / cpu,
                    "concepts/image": (W > 0).sum() / len(paths),
                    "max |W - local|": float(np.abs(W - reference).max()),
                }
            )
        table = pd.DataFrame(rows)
        title = (
            f"{model} (random weights), {len(words)} {source} concepts, l1={args.l1}, "
            f"{args.images} JPEGs of {args.image_size}px, batch {args.batch_size}, "
            f"{os.cpu_count()} CPUs (1-min load average {load:.1f} before, "
            f"{os.getloadavg()[0]:.1f} after)"
        )
        print(title)
        print(to_text(table))
        name = f"distributed-{'tiny' if args.tiny else args.model}-n{args.images}"
        save(table, name, title, args.results_dir)
        return table
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
