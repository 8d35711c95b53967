"""weights_frame: sparse concept weights as a long (sample, concept, weight) table."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from skplice import SpLiCETransformer, weights_frame


def random_weights(n_samples=40, n_concepts=30, density=0.1, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    W = sp.random(n_samples, n_concepts, density=density, format="csr", rng=rng, dtype=dtype)
    W.data[:] = rng.uniform(0.01, 1.0, W.nnz)  # positive, like SpLiCE weights
    W = W.multiply(np.arange(n_samples)[:, None] != 3).tocsr()  # sample 3 has no concept
    W.eliminate_zeros()
    return W, np.asarray([f"concept{i}" for i in range(n_concepts)], dtype=object)


def back_to_sparse(frame, names, index, shape):
    """The inverse of weights_frame: rows by sample label, columns by concept name."""
    rows = pd.Index(index).get_indexer(frame["sample"])
    columns = pd.Index(names).get_indexer(frame["concept"])
    assert (rows >= 0).all() and (columns >= 0).all()
    return sp.csr_matrix((frame["weight"].to_numpy(), (rows, columns)), shape=shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_gives_back_the_sparse_matrix_exactly(dtype):
    W, names = random_weights(dtype=dtype)
    index = pd.Index([f"img{i}.jpg" for i in range(W.shape[0])], name="path")
    frame = weights_frame(W, names, index=index)
    assert list(frame.columns) == ["sample", "concept", "weight"]
    assert len(frame) == W.nnz and frame["weight"].dtype == dtype
    assert "img3.jpg" not in set(frame["sample"])  # the empty sample has no row
    restored = back_to_sparse(frame, names, index, W.shape)
    assert restored.dtype == dtype
    assert (restored != W).nnz == 0
    # Ordered by sample, then by column, and indexed 0..nnz-1.
    rows, columns = (
        index.get_indexer(frame["sample"]),
        pd.Index(names).get_indexer(frame["concept"]),
    )
    np.testing.assert_array_equal(np.lexsort((columns, rows)), np.arange(len(frame)))
    pd.testing.assert_index_equal(frame.index, pd.RangeIndex(W.nnz))


def test_names_come_from_the_matrix_or_the_argument_and_must_agree():
    rng = np.random.default_rng(1)
    splice = SpLiCETransformer(
        dictionary=rng.normal(size=(12, 8)),
        concept_names=[f"word{i}" for i in range(12)],
        l1=0.05,
    ).fit(rng.normal(size=(20, 8)))
    W = splice.transform(rng.normal(size=(6, 8)))
    carried = weights_frame(W)
    assert set(carried["concept"]) <= set(splice.get_feature_names_out())
    assert len(carried) == W.nnz > 0
    pd.testing.assert_frame_equal(weights_frame(W, splice.get_feature_names_out()), carried)
    # A scipy operation drops the names: give them, or be told how.
    with pytest.raises(ValueError, match="needs concept names"):
        weights_frame(W[[0, 1]])
    renamed = weights_frame(W[[0, 1]], [f"other{i}" for i in range(12)])
    assert renamed["concept"].str.startswith("other").all()
    with pytest.raises(ValueError, match="Concept names differ"):
        weights_frame(W, [f"other{i}" for i in range(12)])


def test_samples_are_positions_the_dataframe_index_or_the_index_argument():
    W, names = random_weights(n_samples=6, n_concepts=4, density=0.5, seed=2)
    by_position = weights_frame(W, names)
    assert by_position["sample"].dtype == np.int64
    assert set(by_position["sample"]) <= set(range(6))
    dense = pd.DataFrame(W.toarray(), columns=names, index=list("abcdef"))
    from_frame = weights_frame(dense)
    assert set(from_frame["sample"]) <= set("abcdef")
    labels = pd.date_range("2024-01-01", periods=6, freq="D", tz="UTC")
    dated = weights_frame(W, names, index=labels)
    assert dated["sample"].dtype == labels.dtype
    pd.testing.assert_series_equal(
        dated["sample"], pd.Series(labels[by_position["sample"]], name="sample")
    )
    with pytest.raises(ValueError, match="index has 5 labels but W has 6 samples"):
        weights_frame(W, names, index=range(5))
    with pytest.raises(ValueError, match="the string 'path'"):
        weights_frame(W, names, index="path")


def test_dense_sparse_and_dataframe_inputs_give_the_same_table():
    W, names = random_weights(seed=3)
    expected = weights_frame(W, names)
    pd.testing.assert_frame_equal(weights_frame(W.toarray(), names), expected)
    pd.testing.assert_frame_equal(weights_frame(sp.csc_array(W), names), expected)
    frame = pd.DataFrame(W.toarray(), columns=names)
    pd.testing.assert_frame_equal(weights_frame(frame), expected)


def test_stored_zeros_and_duplicates_are_not_rows_and_the_input_is_untouched():
    # Row 0: column 2, then a stored zero in column 0; row 1: column 1 stored twice.
    data, columns = np.array([0.5, 0.0, 0.25, 0.25]), np.array([2, 0, 1, 1])
    W = sp.csr_matrix((data, columns, [0, 2, 4]), shape=(2, 3))
    assert not W.has_canonical_format
    before = (W.data.copy(), W.indices.copy())
    frame = weights_frame(W, ["a", "b", "c"])
    assert frame.to_dict("list") == {"sample": [0, 1], "concept": ["c", "b"], "weight": [0.5, 0.5]}
    np.testing.assert_array_equal(W.data, before[0])
    np.testing.assert_array_equal(W.indices, before[1])


def test_negative_weights_are_refused():
    with pytest.raises(ValueError, match="negative"):
        weights_frame(np.array([[0.1, -0.2]]), ["a", "b"])
