"""Smoke tests of the benchmark harness in benchmarks/: tiny sizes, so that it cannot rot."""

import importlib
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--kind", "synthetic", "--n-samples", "40", "--n-concepts", "400", "--d", "32"]
TINY += ["--warm-runs", "1"]


@pytest.fixture
def bench(monkeypatch, tmp_path):
    """Import a benchmarks module; its caches and results go to tmp_path."""
    monkeypatch.syspath_prepend(str(ROOT))
    dirs = ["--cache-dir", str(tmp_path / "cache"), "--results-dir", str(tmp_path / "results")]

    def load(name):
        return importlib.import_module(f"benchmarks.{name}"), dirs

    return load


@pytest.mark.slow
def test_solvers_table_and_agreement(bench, tmp_path):
    solvers, dirs = bench("solvers")
    # float64: FISTA does not reach tol=1e-6 in float32 and would run 20,000 iterations.
    args = [*TINY, "--l1", "0.2", "--in-process", "--threads", "1", "--dtype", "float64"]
    table = solvers.main([*args, "--subset", "admm=10", "lasso=20", "fista=10", *dirs])

    expected = ["method", "samples", "wall (s)", "samples/s", "first call (s)", "cpu (s)"]
    expected += ["mean rel gap", "max rel gap", "mean l0", "same support", "iters"]
    expected += ["peak RSS (MB)", "torch peak (MB)", "largest op alloc (MB)", "peak / bound"]
    assert list(table.columns[: len(expected)]) == expected
    assert "note" in table.columns
    assert len(table) == len(solvers.METHODS)
    assert table.set_index("method")["samples"].to_dict()[solvers.LABELS["admm"]] == 10
    # Optional peers that are not installed are skipped with a note; the others ran.
    skipped = table["samples"] == 0
    assert table.loc[skipped, "note"].str.startswith("skipped: pip install").all()
    ran = table[~skipped]
    solved = ran[ran["method"] != solvers.LABELS["floor"]]
    # Every method solves the same problem: objectives agree with the best found.
    assert (solved["max rel gap"] < 1e-5).all(), solved[["method", "max rel gap"]]
    assert (solved["mean l0"] > 0).all()
    # Every method is timed alike: a first call, then the median of warm runs.
    assert (ran["wall (s)"] > 0).all() and (ran["first call (s)"] > 0).all()
    assert ran["note"].str.contains("warm runs").all()
    written = {p.name for p in (tmp_path / "results").iterdir()}
    assert {"solvers-synthetic-n40-k400-d32-l1_0.2-cpu.csv"} <= written


def test_summary_has_one_line_per_setting_with_rates_from_the_tables(bench, tmp_path):
    solvers, dirs = bench("solvers")
    summary_module, _ = bench("summary")
    args = [*TINY, "--l1", "0.2", "0.3", "--in-process", "--threads", "1", "--dtype", "float64"]
    methods = ["--methods", "floor", "active_set", "lasso", "--subset", "lasso=10"]
    tables = solvers.main([*args, *methods, *dirs])
    summary = summary_module.main(["--results-dir", str(tmp_path / "results")])
    assert list(summary["l1"]) == [0.2, 0.3]
    for _, line in summary.iterrows():
        table = tables[tables["l1"] == line["l1"]].set_index("method")
        active = table.loc[solvers.LABELS["active_set"]]
        floor = table.loc[solvers.LABELS["floor"], "wall (s)"]
        lasso = table.loc[solvers.LABELS["lasso"]]
        assert line["active_set (s)"] == active["wall (s)"]
        assert np.isclose(line["x floor"], active["wall (s)"] / floor)
        lasso_rate = lasso["wall (s)"] / lasso["samples"]
        assert np.isclose(line["vs Lasso"], lasso_rate / (active["wall (s)"] / 40))
        assert np.isnan(line["vs sparse_encode"])  # not run: no speed-up invented
    rst = summary_module.to_rst(summary)
    assert rst.startswith(".. csv-table::") and rst.count('"synthetic"') == 2
    assert '"vs Lasso"' in rst and '"vs sparse_encode"' not in rst  # a column nobody ran


@pytest.mark.slow
def test_isolated_run_measures_memory(bench):
    solvers, dirs = bench("solvers")
    table = solvers.main([*TINY, "--methods", "active_set", "--threads", "1", *dirs])
    active_set = table.iloc[0]
    assert active_set["peak RSS (MB)"] >= 0
    # skplice never allocates an n_concepts x n_concepts (400 x 400) matrix.
    assert 0 < active_set["largest op alloc (MB)"] < 400 * 400 * 4 / 2**20
    assert active_set["peak / bound"] > 0


def test_a_missing_optional_peer_is_skipped_with_how_to_install_it(bench, monkeypatch):
    solvers, dirs = bench("solvers")
    methods = importlib.import_module("benchmarks._methods")
    monkeypatch.setitem(methods.OPTIONAL, "celer", ("no_such_module_x", "pip install celer"))
    args = [*TINY, "--in-process", "--threads", "1", "--methods", "floor", "celer"]
    table = solvers.main([*args, *dirs]).set_index("method")
    assert table.loc[solvers.LABELS["celer"], "note"] == "skipped: pip install celer"
    assert table.loc[solvers.LABELS["celer"], "samples"] == 0
    assert table.loc[solvers.LABELS["floor"], "wall (s)"] > 0


def lasso_problem(tol):
    """Five unit signals, 300 unit concepts in d=24, l1=0.2, and scikit-learn's Lasso
    solution (alpha = l1 / (2 d)) at ``tol``: the oracle of the penalty conversions."""
    from sklearn.linear_model import Lasso

    rng = np.random.default_rng(0)
    C = rng.standard_normal((300, 24))
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    Z = rng.standard_normal((5, 24))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    l1 = 0.2
    lasso = Lasso(alpha=l1 / (2 * 24), positive=True, fit_intercept=False, tol=tol)
    reference = np.array([lasso.set_params(max_iter=100000).fit(C.T, z).coef_ for z in Z])
    return C, Z, l1, reference


@pytest.mark.parametrize("method", ["spams", "spams_cholesky", "spams_gram", "celer", "skglm"])
def test_peers_solve_the_same_problem_as_lasso(bench, method):
    """The penalty conversions (lambda1 = l1 / 2, alpha = l1 / (2 d)) are exact."""
    methods = importlib.import_module("benchmarks._methods")
    pytest.importorskip(methods.OPTIONAL[method][0])
    C, Z, l1, reference = lasso_problem(tol=1e-12)
    problem = {"C": C, "Z": Z}
    opts = {"tol": 1e-8, "threads": 1}
    W = methods.METHODS[method](problem, l1, opts).W.toarray()
    np.testing.assert_allclose(W, reference, atol=1e-6)
    assert (W > 0).sum() > 5


def test_sparse_encode_alpha_solves_the_same_problem():
    """sparse_encode(alpha=l1 / 2) and Lasso(alpha=l1 / (2 d)) give the same solution."""
    from sklearn.decomposition import sparse_encode

    C, Z, l1, reference = lasso_problem(tol=1e-10)
    W = sparse_encode(Z, C, algorithm="lasso_cd", alpha=l1 / 2, positive=True, max_iter=10000)
    np.testing.assert_allclose(W, reference, atol=1e-6)
    assert (W > 0).sum() > 5


def test_path_warm_starts_match_cold(bench):
    path, dirs = bench("path")
    args = ["--kind", "synthetic", "--n-samples", "30", "--n-concepts", "300", "--d", "32"]
    summary, per_l1 = path.main([*args, "--l1", "0.1", "0.2", "0.3", "--threads", "1", *dirs])
    assert list(summary["strategy"]) == list(path.STRATEGIES)
    assert (summary["max |rel diff| vs cold"] < 1e-5).all()
    assert list(per_l1["l1"]) == [0.1, 0.2, 0.3]


def test_breakdown_times_the_stages_and_ranks_the_supports(bench):
    breakdown, dirs = bench("breakdown")
    import skplice.decomposition._solvers._active_set as active_set

    gradient = active_set.gradient
    args = ["--kind", "synthetic", "--n-samples", "40", "--n-concepts", "400", "--d", "32"]
    times, ranks = breakdown.main([*args, "--l1", "0.2", "0.05", "--repeats", "1", *dirs])
    assert active_set.gradient is gradient  # the timers are removed afterwards
    assert list(times["l1"]) == [0.2, 0.05] and list(ranks["l1"]) == [0.2, 0.05]
    stages = times[["products", "gram", "solves", "working sets"]]
    assert (stages.to_numpy() >= 0).all()
    assert (stages.sum(axis=1) <= times["x floor"] * 1.01).all()
    # A cold start's first product, then one per round for every row.
    assert (times["product rows / batch"] >= 1 + times["mean rounds"] - 1e-9).all()
    assert (times["factorisations / row / round"] >= 1).all()
    shares = ranks[[f"in top {k}" for k in breakdown.TOP_K]].to_numpy()
    assert ((shares >= 0) & (shares <= 1)).all() and (np.diff(shares, axis=1) >= 0).all()


def test_supports_count_concepts_with_identical_embeddings_as_one(bench):
    # Duplicated concepts make the optimum non-unique: an even split of the weight and
    # all of it on one copy are the same solution, and must count as the same support.
    bench("solvers")
    report = importlib.import_module("benchmarks._report")
    rng = np.random.default_rng(0)
    C = rng.normal(size=(5, 8))
    C[3] = C[1]  # concepts 1 and 3 are one concept
    w = np.array([0.4, 0.3, 0.0, 0.3, 0.0])
    Z = (w @ C)[None, :]
    split = sp.csr_matrix(w[None, :])
    on_one = sp.csr_matrix(np.array([[0.4, 0.6, 0.0, 0.0, 0.0]]))
    elsewhere = sp.csr_matrix(np.array([[0.4, 0.0, 0.6, 0.0, 0.0]]))
    table = report.accuracy({"split": split, "on one": on_one, "elsewhere": elsewhere}, C, Z, 0.1)
    assert table.loc["split", "mean rel gap"] == pytest.approx(0, abs=1e-12)
    assert table.loc["on one", "mean rel gap"] == pytest.approx(0, abs=1e-12)
    assert table.loc["split", "same support"] == table.loc["on one", "same support"] == 1
    assert table.loc["elsewhere", "same support"] == 0
    assert list(table["mean l0"]) == [3, 2, 2]


def test_throughput_on_cpu(bench):
    throughput, dirs = bench("throughput")
    args = ["--device", "cpu", "--n-samples", "300", "--batch-size", "128", "--threads", "1"]
    args += ["--n-concepts", "400", "--d", "32", "--check-samples", "20"]
    table = throughput.main([*args, *dirs])
    assert table["embeddings/min"].iloc[0] > 0
    assert table["max rel gap vs cpu64"].iloc[0] < 1e-5


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_throughput_without_cuda_fails_clearly(bench, capsys):
    throughput, dirs = bench("throughput")
    with pytest.raises(SystemExit):
        throughput.main(["--n-samples", "10", *dirs])
    assert "sees no CUDA device" in capsys.readouterr().err


def test_the_problem_is_the_one_splice_transformer_solves(bench, tmp_path):
    from skplice import SpLiCETransformer
    from skplice.decomposition._preprocessing import process_embeddings

    data, _ = bench("_data")
    C, Z, D_raw, X_raw = data.load_problem("synthetic", 40, 60, 32, cache_dir=tmp_path)
    splice = SpLiCETransformer(dictionary=D_raw).fit(X_raw)
    np.testing.assert_array_equal(C, splice.components_)  # the same code, bit for bit
    # transform centres in torch by the learned mean: the same up to rounding.
    mean = torch.from_numpy(splice.image_mean_)
    centred = process_embeddings(torch.from_numpy(X_raw), mean, center=True).numpy()
    np.testing.assert_allclose(Z, centred, rtol=0, atol=1e-15)


def test_minilm_problem_is_processed_and_cached(bench, tmp_path):
    data, _ = bench("_data")
    if not (data.VOCAB_DIR / "laion.txt").exists():
        pytest.skip(
            f"no LAION vocabulary in {data.VOCAB_DIR}: set {data.SHARED_DATA_ENV} to the "
            "folder holding vocab/ (the project's ../shared/data)"
        )
    C, Z, D_raw, X_raw = data.load_problem("minilm", 8, 50, 384, cache_dir=tmp_path)
    assert C.shape == D_raw.shape == (50, 384) and Z.shape == X_raw.shape == (8, 384)
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1)
    assert len(list(tmp_path.glob("minilm-*.npy"))) == 2
    again = data.load_problem("minilm", 8, 50, 384, cache_dir=tmp_path)
    np.testing.assert_array_equal(again[3], X_raw)


@pytest.mark.slow
def test_load_benchmark_times_each_setting_against_the_quiet_single_thread(bench):
    load, dirs = bench("load")
    args = [*TINY, "--methods", "active_set", "--thread-counts", "1", "--busy", "0", "1"]
    table = load.main([*args, *dirs])
    assert list(table["busy loops"]) == [0, 1]
    assert table["x 1 thread"].iloc[0] == 1.0
    assert (table["wall (s)"] > 0).all() and (table["cpu (s)"] > 0).all()
