"""
Embed and decompose a folder of images on a Dask cluster
========================================================

:class:`~skplice.CLIPEmbedder` and :class:`~skplice.SpLiCETransformer` are plain
scikit-learn estimators: fitted, they pickle in a few kilobytes without any model
weights, and each worker process loads its model once, on first use. That is all Dask
needs to spread the work over processes or machines with ``map_partitions``.

This example embeds a folder of photos and decomposes the embeddings into concepts on a
:class:`distributed.LocalCluster` of worker processes, writes the concept weights to
Parquet as a long table (sample, concept, weight), checks them against a run in this
process, and compares throughputs. To run offline in seconds it uses a tiny CLIP
architecture with random weights, registered with open_clip from a config file, so the
concepts it finds are arbitrary words; for real use, build ``CLIPEmbedder()`` (ViT-B-32
with LAION-2B weights) and leave out the registration.

.. note::

   Worker processes start by importing the script that created them (Python's
   ``spawn``), under the name ``"__mp_main__"``. Everything that must run only once,
   such as starting the cluster, therefore sits under
   ``if __name__ == "__main__":``, and the rest is cheap to repeat.
"""

# %%
# A tiny CLIP architecture and a folder of images
# -----------------------------------------------
# open_clip keeps registered configs in the process that registered them: the
# workers register it too (below). The 96 JPEGs are cut from scikit-image's photos,
# once.
import itertools
import json
import logging
import pickle
import tempfile
import time
from pathlib import Path

import dask.dataframe as dd
import matplotlib.pyplot as plt
import numpy as np
import open_clip
import pandas as pd
import torch
from distributed import Client, LocalCluster
from PIL import Image
from skimage import data

from skplice import CLIPEmbedder, SpLiCETransformer, weights_frame

workdir = Path(tempfile.gettempdir()) / "skplice-example-distributed"
workdir.mkdir(exist_ok=True)
config = {
    "embed_dim": 32,
    "vision_cfg": {
        "image_size": 32,
        "layers": 2,
        "width": 64,
        "patch_size": 8,
        "head_width": 32,
    },
    "text_cfg": {
        "context_length": 16,
        "vocab_size": 49408,
        "width": 32,
        "heads": 2,
        "layers": 2,
    },
}
config_path = workdir / "example-tiny-clip.json"
config_path.write_text(json.dumps(config))
open_clip.add_model_config(config_path)

folder = workdir / "images"
if len(list(folder.glob("*.jpg"))) != 96:
    folder.mkdir(exist_ok=True)
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    rng = np.random.default_rng(0)
    for i in range(96):
        photo = photos[i % len(photos)]
        side = int(rng.integers(150, min(photo.shape[:2])))
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = photo[top : top + side, left : left + side]
        Image.fromarray(crop).save(folder / f"photo{i:03d}.jpg", quality=90)
paths = pd.DataFrame({"path": sorted(str(p) for p in folder.glob("*.jpg"))})

# %%
# Fit in this process, on a sample
# --------------------------------
# The transformer learns its dictionary (a small vocabulary encoded by the same CLIP
# text tower) and the mean image embedding. Fitted, it holds NumPy arrays only; the
# embedder holds its parameters only, never the model.
embedder = CLIPEmbedder(
    "example-tiny-clip",
    pretrained=None,
    device="cpu",
    batch_size=16,
)
words = (
    "dog cat person woman man astronaut rocket space coffee cup mug table "
    "face flag suit helmet launch sky cloud smoke fire tower building "
    "grass tree water food drink kitten fur eye whiskers portrait"
).split()
dictionary = embedder.encode_text(words)
splice = SpLiCETransformer(l1=0.05, dictionary=dictionary, concept_names=words)
splice.fit(embedder.transform(paths["path"][:32].tolist()))
if __name__ == "__main__":
    print(f"pickled embedder: {len(pickle.dumps(embedder))} bytes")
    print(f"pickled transformer: {len(pickle.dumps(splice))} bytes")


# %%
# The work, as functions of a partition
# -------------------------------------
# Each partition of image paths becomes a frame of embeddings (same index), then the
# non-zero concept weights become rows of a long table (:func:`~skplice.weights_frame`).
def embed_partition(frame, embedder):
    X = embedder.transform(frame["path"].tolist())
    columns = embedder.get_feature_names_out()
    return pd.DataFrame(X, index=frame.index, columns=columns)


def decompose_partition(embeddings, splice):
    W = splice.transform(embeddings.to_numpy())
    return weights_frame(W, index=embeddings.index)


long_meta = pd.DataFrame(
    {
        "sample": pd.Series(dtype="int64"),
        "concept": pd.Series(dtype="str"),
        "weight": pd.Series(dtype="float32"),
    }
)
embedding_meta = pd.DataFrame(
    columns=embedder.get_feature_names_out(),
    dtype=np.float32,
)
frame = dd.from_pandas(paths, npartitions=8)


def run(out):
    """Embed, decompose and write Parquet on the current Dask client."""
    embeddings = frame.map_partitions(
        embed_partition,
        embedder,
        meta=embedding_meta,
    )
    weights = embeddings.map_partitions(
        decompose_partition, splice, meta=long_meta
    )
    start = time.perf_counter()
    weights.to_parquet(out, write_index=False)
    return time.perf_counter() - start


# %%
# Run on a cluster of worker processes
# ------------------------------------
# Two processes with one thread each (a LocalCluster gives each worker one torch
# thread). Each worker registers the tiny architecture, then loads the model once,
# in a warm-up call, before the clock starts. Then the same again on one worker.
if __name__ == "__main__":
    out = Path(tempfile.mkdtemp(prefix="weights-", dir=workdir))
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    client.run(open_clip.add_model_config, str(config_path))
    client.run(embed_partition, paths.iloc[:1], embedder)
    seconds = {"2 workers": run(out / "2-workers")}
    cluster.scale(1)
    while len(client.scheduler_info()["workers"]) > 1:
        time.sleep(0.1)
    seconds["1 worker"] = run(out / "1-worker")
    client.close()
    cluster.close()

# %%
# The same weights as in this process
# -----------------------------------
# Read the Parquet table back and compare it with the same partitions processed
# here, one after the other, with one torch thread like a worker (small models
# gain nothing from more, and on a busy machine lose much): the bits are the same.
if __name__ == "__main__":
    table = pd.read_parquet(out / "2-workers")
    starts = [*frame.divisions[:-1], len(paths)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    parts = []
    for i, (a, b) in enumerate(itertools.pairwise(starts)):
        part = embed_partition(paths.iloc[a:b], embedder)
        part = decompose_partition(part, splice)
        part.to_parquet(out / f"local-{i}.parquet", index=False)
        parts.append(part)
    seconds["this process, 1 thread"] = time.perf_counter() - start
    torch.set_num_threads(threads)
    local = pd.concat(parts)
    key = ["sample", "concept"]
    merged = local.merge(table, on=key, suffixes=("_local", "_dask"))
    assert len(merged) == len(local) == len(table)
    assert (merged["weight_local"] == merged["weight_dask"]).all()
    print(f"{len(table)} non-zero weights, identical to the local run")
    order = ["sample", "weight"]
    print(table.sort_values(order, ascending=[True, False]).head())

# %%
# Throughput
# ----------
# With a model this small the work per image is tiny, and scheduling and Parquet
# writes weigh as much as the model: see the documentation's page on distributed
# computing for ViT-B-32. Each worker is one process with one core; add workers, or
# machines with a ``distributed`` scheduler, to scale out.
if __name__ == "__main__":
    names = ["this process, 1 thread", "1 worker", "2 workers"]
    rates = [len(paths) / seconds[name] for name in names]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh(names, rates, color=["0.6", "tab:blue", "tab:orange"])
    for y, rate in enumerate(rates):
        ax.text(rate, y, f" {rate:.0f}", va="center")
    ax.set_xlabel("images per second (embed, decompose, write Parquet)")
    ax.set_title("Tiny CLIP, 96 photos, LocalCluster")
    fig.tight_layout()
    plt.show()
