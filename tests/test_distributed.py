"""skplice on a real Dask cluster: two worker processes, one thread each.

One ``LocalCluster`` serves the whole module. Workers are separate processes that load
their own copy of the tiny random CLIP model, so equal bits here mean that shipping
estimators to other processes changes nothing: not the pickling, not the thread count,
not the model load.
"""

import copy
import logging
import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

import skplice
from skplice import CLIPEmbedder, SpLiCETransformer, weights_frame
from skplice.embedding import _model_cache

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")
cloudpickle = pytest.importorskip("cloudpickle")
pytest.importorskip("pyarrow")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:No pretrained weights loaded"),
    # distributed's own deprecations and port notices are not skplice's business
    pytest.mark.filterwarnings("ignore::DeprecationWarning:distributed"),
]

WORDS = (
    "dog cat beach car airplane pizza tree house river mountain snow city road boat "
    "flower bird horse sky cloud sunset forest desert bridge train chair table lamp "
    "window door book phone guitar ball shoe hat glasses clock bottle cup bicycle"
).split()


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tiny_clip_config_path):
    import open_clip

    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # A config registered with open_clip lives in the process that registered it.
        client.run(open_clip.add_model_config, str(tiny_clip_config_path))
        yield client


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i in range(24):
        pixels = rng.integers(0, 256, size=(30 + i, 40, 3), dtype=np.uint8)
        paths.append(str(folder / f"image{i:02d}.png"))
        Image.fromarray(pixels).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def embedder(tiny_clip):
    return CLIPEmbedder(tiny_clip, pretrained=None, device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def fitted(embedder, image_paths, tmp_path_factory):
    """Local embeddings of the images, and a SpLiCETransformer fitted on them."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKPLICE_HOME", str(tmp_path_factory.mktemp("skplice_home")))
        X = embedder.transform(image_paths)
        splice = SpLiCETransformer(l1=0.05, vocabulary=WORDS, encoder=embedder).fit(X)
    return X, splice


def partition_bounds(ddf, n_rows):
    """(start, stop) rows of each partition of a frame with a default RangeIndex."""
    starts = list(ddf.divisions[:-1])
    return list(zip(starts, [*starts[1:], n_rows], strict=True))


# -- what runs on the workers (plain functions of a partition) -----------------------------


def embed_partition(frame, embedder):
    X = embedder.transform(frame["path"].tolist())
    return pd.DataFrame(X, index=frame.index, columns=embedder.get_feature_names_out())


def decompose_partition(embeddings, splice):
    """(sample, concept, weight) rows of the non-zero weights of a partition."""
    return weights_frame(splice.transform(embeddings.to_numpy()), index=embeddings.index)


LONG_META = pd.DataFrame(
    {
        "sample": pd.Series(dtype="int64"),
        "concept": pd.Series(dtype="str"),
        "weight": pd.Series(dtype="float32"),
    }
)


def embed_and_report(paths, embedder):
    worker = distributed.get_worker().address
    return worker, embedder.transform(paths)


# -- tests ---------------------------------------------------------------------------------


def test_workers_run_this_checkout(client):
    files = client.run(lambda: __import__("skplice").__file__)
    assert len(files) == 2
    assert set(files.values()) == {skplice.__file__}


def test_fitted_estimators_ship_without_model_weights(embedder, fitted):
    _, splice = fitted
    assert any(key[0] == "open_clip" for key in _model_cache.cached_keys())  # loaded here
    for dumps in (pickle.dumps, cloudpickle.dumps):
        blob = dumps(embedder)
        assert len(blob) < 2_000 and b"torch" not in blob
        blob = dumps(splice)
        state = splice.components_.nbytes + splice.image_mean_.nbytes
        names = sum(len(word) for word in WORDS)
        assert len(blob) < state + names + 4_000, (len(blob), state)
        assert b"torch" not in blob
    model_bytes = sum(p.numel() * p.element_size() for p in embedder._bundle().model.parameters())
    assert len(pickle.dumps(splice)) < model_bytes / 10


def test_dataframe_pipeline_matches_local_bit_for_bit(
    client, embedder, fitted, image_paths, tmp_path
):
    X_local, splice = fitted
    frame = pd.DataFrame({"path": image_paths})
    paths = dd.from_pandas(frame, npartitions=4)
    meta = pd.DataFrame(columns=embedder.get_feature_names_out(), dtype=np.float32)
    embeddings = paths.map_partitions(embed_partition, embedder, meta=meta).persist()
    weights = embeddings.map_partitions(decompose_partition, splice, meta=LONG_META)
    weights.to_parquet(tmp_path / "weights", write_index=False)

    # Embeddings: the same bits as the same partitions embedded in this process.
    X_dist = embeddings.compute().to_numpy()
    bounds = partition_bounds(paths, len(image_paths))
    assert len(bounds) == 4
    X_parts = np.vstack([embedder.transform(image_paths[a:b]) for a, b in bounds])
    assert X_dist.dtype == np.float32
    np.testing.assert_array_equal(X_dist, X_parts)
    np.testing.assert_allclose(X_dist, X_local, rtol=0, atol=1e-6)  # batch invariance

    # Weights, read back from Parquet: the same bits as a local transform of those rows.
    table = pd.read_parquet(tmp_path / "weights").sort_values(["sample", "concept"])
    assert len(table) > 24 and table["weight"].dtype == np.float32
    W_dist = np.zeros((24, len(WORDS)), dtype=np.float32)
    columns = {name: j for j, name in enumerate(splice.concept_names_)}
    W_dist[table["sample"], table["concept"].map(columns)] = table["weight"]
    W_local = np.vstack([splice.transform(X_parts[a:b]).toarray() for a, b in bounds])
    np.testing.assert_array_equal(W_dist, W_local)
    np.testing.assert_allclose(W_dist, splice.transform(X_parts).toarray(), rtol=0, atol=1e-12)


def test_dask_array_map_blocks_and_parallel_post_fit(client, fitted):
    X, splice = fitted
    blocks = da.from_array(X, chunks=(5, -1))
    n_concepts = splice.components_.shape[0]
    meta = sp.csr_matrix((0, 0), dtype=np.float32)
    lazy = blocks.map_blocks(
        splice.transform, chunks=(blocks.chunks[0], (n_concepts,)), dtype=np.float32, meta=meta
    )
    assert lazy.shape == (24, n_concepts)
    W = lazy.compute()
    expected = sp.vstack([splice.transform(X[i : i + 5]) for i in range(0, 24, 5)])
    assert sp.issparse(W) and W.dtype == np.float32
    np.testing.assert_array_equal(W.toarray(), expected.toarray())

    wrappers = pytest.importorskip("dask_ml.wrappers")
    dense = copy.deepcopy(splice).set_params(sparse_output=False)  # fitted, dense output
    wrapped = wrappers.ParallelPostFit(dense, transform_meta=np.empty((0, 0), np.float32))
    W_dense = wrapped.transform(blocks).compute()
    np.testing.assert_array_equal(W_dense, expected.toarray())


def test_each_worker_loads_its_model_once(client, embedder, image_paths):
    chunks = [image_paths[i : i + 3] for i in range(0, 24, 3)]  # 8 tasks on 2 workers
    results = client.gather(client.map(embed_and_report, chunks, embedder=embedder, pure=False))
    tasks_per_worker = pd.Series([worker for worker, _ in results]).value_counts()
    assert tasks_per_worker.max() >= 4
    key = ("open_clip", embedder.model, "random", None, "cpu", "fp32")
    counts = client.run(_model_cache.load_counts)
    assert len(counts) == 2
    for worker in tasks_per_worker.index:
        assert counts[worker][key] == 1, counts[worker]
    np.testing.assert_array_equal(
        np.vstack([X for _, X in results]),
        np.vstack([embedder.transform(chunk) for chunk in chunks]),
    )


def test_grid_search_with_joblib_dask_backend(client):
    joblib = pytest.importorskip("joblib")
    rng = np.random.default_rng(4)
    dictionary = rng.normal(size=(40, 16))
    y = np.repeat([0, 1], 30)
    X = rng.normal(size=(60, 16)) + 0.6 * np.outer(2 * y - 1, dictionary[0])
    pipe = Pipeline(
        [("splice", SpLiCETransformer(dictionary=dictionary)), ("probe", LogisticRegression())]
    )
    grid = {"splice__l1": [0.1, 0.3, 0.8]}
    local = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    with (
        distributed.get_task_stream(client) as stream,
        joblib.parallel_config(backend="dask"),
    ):
        remote = GridSearchCV(pipe, grid, cv=3, n_jobs=-1).fit(X, y)
    # The fits ran as tasks on the cluster's workers, not in this process.
    workers = {task["worker"] for task in stream.data}
    assert workers and workers <= set(client.scheduler_info()["workers"]), stream.data
    np.testing.assert_array_equal(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert remote.best_params_ == local.best_params_
    assert local.best_score_ > 0.7
