"""The batched non-negative lasso solvers against scikit-learn's Lasso and closed forms."""

import numpy as np
import pytest
import torch
from scipy.optimize import nnls
from sklearn.linear_model import Lasso

from skplice.decomposition._solvers import STANDARD_BUDGETS, Budgets, nonnegative_lasso

SOLVERS = ["active_set", "fista"]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def unit_rows(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def random_dictionary(rng, n_concepts, d):
    return unit_rows(rng.normal(size=(n_concepts, d)))


def correlated_dictionary(rng, n_concepts, d, n_clusters=8):
    """Concepts clustered around a few directions, correlated like real text embeddings."""
    centres = rng.normal(size=(n_clusters, d))
    members = centres[rng.integers(n_clusters, size=n_concepts)]
    C = unit_rows(members + 0.5 * rng.normal(size=(n_concepts, d)))
    C = unit_rows(C - C.mean(axis=0))
    return C


def signals(rng, C, n, n_active=5, noise=0.3):
    """Sparse non-negative mixtures of concepts plus noise, normalised."""
    W = np.zeros((n, C.shape[0]))
    for row in W:
        row[rng.choice(C.shape[0], n_active, replace=False)] = rng.uniform(0.2, 1, n_active)
    return unit_rows(W @ C + noise * rng.normal(size=(n, C.shape[1])))


def objective(W, Z, C, l1):
    return np.sum((W @ C - Z) ** 2, axis=1) + l1 * W.sum(axis=1)


def lasso_oracle(Z, C, l1):
    d = C.shape[1]
    lasso = Lasso(
        alpha=l1 / (2 * d), positive=True, fit_intercept=False, tol=1e-10, max_iter=1_000_000
    )
    return np.stack([lasso.fit(C.T, z).coef_.copy() for z in Z])


def solve(Z, C, l1, **kwargs):
    codes = nonnegative_lasso(torch.from_numpy(Z), torch.from_numpy(C), l1, **kwargs)
    return codes.to_dense(C.shape[0]).numpy(), codes


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ["random", "correlated"])
@pytest.mark.parametrize("l1", [0.02, 0.1, 0.3, 1.0])
def test_matches_sklearn_lasso(solver, kind, l1):
    rng = np.random.default_rng(0)
    make = random_dictionary if kind == "random" else correlated_dictionary
    C = make(rng, 120, 24)
    Z = signals(rng, C, 12)
    W, codes = solve(Z, C, l1, solver=solver, tol=1e-9)
    oracle = lasso_oracle(Z, C, l1)
    assert codes.converged.all()
    ours, theirs = objective(W, Z, C, l1), objective(oracle, Z, C, l1)
    np.testing.assert_array_less(np.abs(ours - theirs) / theirs, 1e-6)
    # Supports match, ignoring weights the oracle itself leaves at rounding level.
    significant = oracle > 1e-8
    np.testing.assert_array_equal(W > 0, significant)
    assert (W >= 0).all()


@pytest.mark.parametrize("solver", SOLVERS)
def test_identity_dictionary_has_closed_form(solver):
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(30, 7))
    for l1 in (0.0, 0.3, 1.5):
        W, _ = solve(Z, np.eye(7), l1, solver=solver, tol=1e-12)
        np.testing.assert_allclose(W, np.maximum(Z - l1 / 2, 0), atol=1e-10)


def test_l1_zero_is_non_negative_least_squares():
    rng = np.random.default_rng(2)
    C = random_dictionary(rng, 10, 30)  # fewer concepts than features: unique solution
    Z = rng.normal(size=(6, 30))
    W, codes = solve(Z, C, 0.0, tol=1e-10)
    assert codes.converged.all()
    for w, z in zip(W, Z, strict=True):
        np.testing.assert_allclose(w, nnls(C.T, z)[0], atol=1e-8)


def test_large_penalty_and_zero_rows_give_zero_codes():
    rng = np.random.default_rng(3)
    C = random_dictionary(rng, 40, 10)
    Z = signals(rng, C, 5)
    W, codes = solve(Z, C, 10.0)  # l1 > 2 * max |c.z|: w = 0 is optimal
    assert not W.any() and codes.converged.all()
    Z[2] = 0
    W, _ = solve(Z, C, 0.1)
    assert not W[2].any() and W[[0, 1, 3, 4]].any(axis=1).all()


@pytest.mark.parametrize("solver", SOLVERS)
def test_rows_do_not_depend_on_their_batch(solver):
    rng = np.random.default_rng(4)
    C = correlated_dictionary(rng, 300, 32)
    Z = signals(rng, C, 40, n_active=8)
    together, _ = solve(Z, C, 0.1, solver=solver)
    permutation = rng.permutation(40)
    shuffled, _ = solve(Z[permutation], C, 0.1, solver=solver)
    # FISTA runs hundreds of iterations per call: one row in five is solved alone.
    alone = range(0, 40, 5 if solver == "fista" else 1)
    one_by_one = np.vstack([solve(Z[i : i + 1], C, 0.1, solver=solver)[0] for i in alone])
    halves = np.vstack([solve(part, C, 0.1, solver=solver)[0] for part in (Z[:17], Z[17:])])
    np.testing.assert_allclose(shuffled, together[permutation], rtol=0, atol=1e-12)
    np.testing.assert_allclose(one_by_one, together[list(alone)], rtol=0, atol=1e-9)
    np.testing.assert_allclose(halves, together, rtol=0, atol=1e-9)


def test_float32_inputs_give_float32_codes_with_float64_accuracy():
    rng = np.random.default_rng(5)
    C = correlated_dictionary(rng, 500, 48)
    Z = signals(rng, C, 50, n_active=10)
    W64, _ = solve(Z, C, 0.2, tol=1e-10)
    W32, codes = solve(Z.astype(np.float32), C.astype(np.float32), 0.2)
    assert codes.values.dtype == torch.float32 and codes.converged.all()
    gap = objective(W32.astype(np.float64), Z, C, 0.2) / objective(W64, Z, C, 0.2) - 1
    assert np.max(np.abs(gap)) < 1e-6
    assert np.mean(((W32 > 0) == (W64 > 0)).all(axis=1)) >= 0.98


def test_duplicate_concepts_are_handled():
    rng = np.random.default_rng(6)
    C = random_dictionary(rng, 30, 12)
    C = np.vstack([C, C[:5]])  # exact duplicates make the Gram matrix singular
    Z = signals(rng, C, 10, n_active=4, noise=0.1)
    W, codes = solve(Z, C, 0.05, tol=1e-8)
    assert codes.converged.all()
    gap = objective(W, Z, C, 0.05) / objective(lasso_oracle(Z, C, 0.05), Z, C, 0.05) - 1
    assert np.max(gap) < 1e-6


def test_warm_start_keeps_supports_larger_than_a_working_set():
    # Starting from a small l1 whose supports exceed 64 concepts (two working-set size
    # steps), every previous support stays whole: the first round then sees it all.
    # (Supports of 180-220 of d = 256: far enough from d that cold starts converge in a
    # few rounds; near d, as l1 = 0.005 with 3,000 concepts gave, this took 10-400 s.)
    rng = np.random.default_rng(17)
    C = torch.from_numpy(random_dictionary(rng, 1500, 256))
    Z = torch.from_numpy(signals(rng, C.numpy(), 8, n_active=120, noise=0.5))
    previous = nonnegative_lasso(Z, C, 0.03, tol=1e-9)
    support = (previous.values > 0).sum(dim=1)
    assert previous.converged.all() and support.min() > 64
    warm = nonnegative_lasso(Z, C, 0.024, tol=1e-9, init=previous)
    cold = nonnegative_lasso(Z, C, 0.024, tol=1e-9)
    assert warm.converged.all()
    torch.testing.assert_close(warm.to_dense(1500), cold.to_dense(1500), rtol=0, atol=1e-8)
    # A cold start grows each working set 32 concepts per round; a warm one starts whole.
    assert warm.n_iter.sum() < cold.n_iter.sum() / 4


def test_warm_start_from_the_solution_itself_certifies_it_without_a_round():
    rng = np.random.default_rng(9)
    C = torch.from_numpy(correlated_dictionary(rng, 500, 32))
    Z = torch.from_numpy(signals(rng, C.numpy(), 25, n_active=8))
    solved = nonnegative_lasso(Z, C, 0.2, tol=1e-9)
    again = nonnegative_lasso(Z, C, 0.2, tol=1e-9, init=solved)
    assert again.converged.all() and (again.n_iter == 0).all()
    torch.testing.assert_close(again.to_dense(500), solved.to_dense(500), rtol=0, atol=0)


@pytest.mark.parametrize("previous_l1", [0.02, 0.3, 0.6, 50.0])
def test_warm_start_from_any_l1_matches_cold(previous_l1):
    # From a smaller l1 (supports shrink), larger ones, and one so large that every
    # previous solution is zero: the same solutions as a cold start, in no more rounds.
    rng = np.random.default_rng(7)
    C = torch.from_numpy(correlated_dictionary(rng, 400, 32))
    Z = torch.from_numpy(signals(rng, C.numpy(), 30, n_active=8))
    previous = nonnegative_lasso(Z, C, previous_l1, tol=1e-10)
    warm = nonnegative_lasso(Z, C, 0.15, tol=1e-10, init=previous)
    cold = nonnegative_lasso(Z, C, 0.15, tol=1e-10)
    assert warm.converged.all()
    torch.testing.assert_close(warm.to_dense(400), cold.to_dense(400), rtol=0, atol=1e-9)
    assert warm.n_iter.sum() <= cold.n_iter.sum()


def test_warm_start_of_other_rows_is_refused():
    rng = np.random.default_rng(11)
    C = torch.from_numpy(correlated_dictionary(rng, 100, 16))
    Z = torch.from_numpy(signals(rng, C.numpy(), 6, n_active=4))
    previous = nonnegative_lasso(Z[:4], C, 0.2)
    with pytest.raises(ValueError, match="init holds 4 rows but Z has 6"):
        nonnegative_lasso(Z, C, 0.2, init=previous)


def test_max_iter_reports_unconverged_rows_with_feasible_codes():
    rng = np.random.default_rng(8)
    C = correlated_dictionary(rng, 600, 32)
    Z = signals(rng, C, 20, n_active=12)
    W, codes = solve(Z, C, 0.05, max_iter=1)
    assert (~codes.converged).any()
    assert (codes.n_iter <= 1).all() and (W >= 0).all()
    W_full, full = solve(Z, C, 0.05)
    assert full.converged.all()
    assert (objective(W_full, Z, C, 0.05) <= objective(W, Z, C, 0.05) + 1e-12).all()


def test_empty_batch_and_bad_arguments():
    C = torch.eye(3, dtype=torch.float64)
    codes = nonnegative_lasso(torch.zeros(0, 3, dtype=torch.float64), C, 0.1)
    assert codes.to_dense(3).shape == (0, 3)
    with pytest.raises(ValueError, match="n_features"):
        nonnegative_lasso(torch.zeros(2, 4, dtype=torch.float64), C, 0.1)
    with pytest.raises(ValueError, match="dtype"):
        nonnegative_lasso(torch.ones(2, 3), C, 0.1)
    with pytest.raises(ValueError, match="solver"):
        nonnegative_lasso(torch.ones(2, 3, dtype=torch.float64), C, 0.1, solver="admm")


def test_budgets_must_be_positive_integers():
    with pytest.raises(ValueError, match=r"Budgets.gram must be a positive int, got 0"):
        Budgets(gram=0)
    with pytest.raises(ValueError, match=r"Budgets.gather_chunk must be a positive int"):
        Budgets(gather_chunk=2.5)
    C = torch.eye(3, dtype=torch.float64)
    with pytest.raises(TypeError, match="budgets must be a Budgets, got dict"):
        nonnegative_lasso(torch.ones(2, 3, dtype=torch.float64), C, 0.1, budgets={"gram": 1})


@cuda
@pytest.mark.gpu
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(solver, dtype):
    rng = np.random.default_rng(9)
    C = torch.from_numpy(correlated_dictionary(rng, 800, 64)).to(dtype)
    Z = torch.from_numpy(signals(rng, C.double().numpy(), 64, n_active=10)).to(dtype)
    cpu = nonnegative_lasso(Z, C, 0.2, solver=solver)
    gpu = nonnegative_lasso(Z.cuda(), C.cuda(), 0.2, solver=solver)
    assert gpu.converged.all()
    Wc = cpu.to_dense(800).double().numpy()
    Wg = gpu.to_dense(800).cpu().double().numpy()
    Zn, Cn = Z.double().numpy(), C.double().numpy()
    gap = objective(Wg, Zn, Cn, 0.2) / objective(Wc, Zn, Cn, 0.2) - 1
    assert np.max(np.abs(gap)) < 1e-6


def test_supports_as_large_as_the_dimension_converge_in_a_batch():
    # Tiny penalties in few dimensions make working sets larger than the rank: the
    # pivoting fallback must still certify every row, whatever rows share its batch.
    rng = np.random.default_rng(10)
    C = correlated_dictionary(rng, 80, 16)
    Z = signals(rng, C, 60, n_active=6, noise=0.5)
    for l1 in (0.005, 0.02):
        W, codes = solve(Z, C, l1, tol=1e-9)
        assert codes.converged.all()
        assert ((W > 0).sum(axis=1) >= 12).any()  # some supports are near d = 16
        gap = objective(W, Z, C, l1) / objective(lasso_oracle(Z, C, l1), Z, C, l1) - 1
        assert np.max(gap) < 1e-6


def test_gram_memory_budget_splits_groups_without_changing_results():
    # A budget of a few working sets forces many small groups, each followed through its
    # rounds before the next (depth first): the solutions must not change.
    rng = np.random.default_rng(11)
    C = correlated_dictionary(rng, 500, 48)
    Z = signals(rng, C, 40, n_active=20, noise=0.4)
    W, codes = solve(Z, C, 0.02, tol=1e-9)
    assert codes.converged.all() and codes.n_iter.max() >= 3  # several rounds, groups
    W_small, codes_small = solve(Z, C, 0.02, tol=1e-9, budgets=Budgets(gram=3 * 64**2))
    assert codes_small.converged.all()
    np.testing.assert_allclose(W_small, W, rtol=0, atol=1e-12)
    # Working sets beyond 32 concepts solved one row at a time.
    one_row = Budgets(gram=3 * 64**2, large_working_set=32, large_gram=1)
    W_rows, codes_rows = solve(Z, C, 0.02, tol=1e-9, budgets=one_row)
    assert codes_rows.converged.all()
    np.testing.assert_allclose(W_rows, W, rtol=0, atol=1e-12)
    gap = objective(W, Z, C, 0.02) / objective(lasso_oracle(Z, C, 0.02), Z, C, 0.02) - 1
    assert np.max(gap) < 1e-6


def test_chunks_of_different_rounds_share_a_product_without_changing_results(monkeypatch):
    # Small Gram chunks leave a few rows each for later rounds; those rows share one
    # product with the next chunks, whatever their round, instead of paying one each.
    # Each row still counts its own rounds, and stops at its own max_iter.
    import skplice.decomposition._solvers._active_set as active_set

    rng = np.random.default_rng(12)
    C = correlated_dictionary(rng, 500, 48)
    Z = signals(rng, C, 40, n_active=20, noise=0.4)
    rounds_per_product = []
    sharing = active_set._sharing_a_product

    def recorded(stack, budgets):
        chunks = sharing(stack, budgets)
        rounds_per_product.append({chunk.round for chunk in chunks})
        return chunks

    monkeypatch.setattr(active_set, "_sharing_a_product", recorded)
    small_chunks = {"gram": 4 * 64**2, "large_gram": 4 * 64**2}
    for max_iter in (100, 2):
        runs = []
        for product_gram in (1, 12 * 64**2):  # one chunk per product; a few per product
            rounds_per_product.clear()
            budgets = Budgets(**small_chunks, product_gram=product_gram)
            W, codes = solve(Z, C, 0.02, tol=1e-9, max_iter=max_iter, budgets=budgets)
            runs.append((W, codes, len(rounds_per_product)))
        (W_alone, alone, n_alone), (W_shared, shared, n_shared) = runs
        assert n_shared < n_alone
        if max_iter > 2:
            assert any(len(rounds) > 1 for rounds in rounds_per_product)
        np.testing.assert_array_equal(shared.n_iter.numpy(), alone.n_iter.numpy())
        np.testing.assert_array_equal(shared.converged.numpy(), alone.converged.numpy())
        np.testing.assert_allclose(W_shared, W_alone, rtol=0, atol=1e-12)
        assert int(shared.n_iter.max()) <= max_iter
    assert int(alone.n_iter.max()) == 2 and not alone.converged.all()


@pytest.mark.parametrize(
    ("n_samples", "budgets"),
    [(30, STANDARD_BUDGETS), (160, STANDARD_BUDGETS), (30, Budgets(min_rows_per_part=15))],
)
def test_no_operation_runs_on_several_threads_and_the_callers_threads_split_the_batch(
    monkeypatch, n_samples, budgets
):
    # Spinning OpenMP threads of hundreds of small operations made a busy machine
    # several times slower at two threads than at one. Every operation now runs on one
    # OpenMP thread: the caller's threads solve parts of a batch at once, and a batch
    # too small to split (under 2 x 64 rows by default) gives them to its products only.
    # The caller's setting stays, and the thread count changes no result.
    import threading

    import skplice.decomposition._solvers._active_set as active_set

    seen = {"solve": set(), "product": set(), "solving threads": set()}
    working_sets, addmm = active_set.solve_working_sets, torch.addmm

    def recording_solve(*args, **kwargs):
        seen["solve"].add(torch.get_num_threads())
        seen["solving threads"].add(threading.get_ident())
        return working_sets(*args, **kwargs)

    def recording_product(*args, **kwargs):  # the products with the dictionary
        seen["product"].add(torch.get_num_threads())
        return addmm(*args, **kwargs)

    monkeypatch.setattr(active_set, "solve_working_sets", recording_solve)
    monkeypatch.setattr(torch, "addmm", recording_product)
    rng = np.random.default_rng(12)
    C = correlated_dictionary(rng, 300, 32)
    Z = signals(rng, C, n_samples, n_active=8)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        W2, codes = solve(Z, C, 0.1, tol=1e-9, budgets=budgets)
        assert torch.get_num_threads() == 2
        split = n_samples >= 2 * budgets.min_rows_per_part
        assert seen["solve"] == {1}
        assert seen["product"] == ({1} if split else {2})
        assert len(seen["solving threads"]) == (2 if split else 1)
        torch.set_num_threads(1)
        W1, _ = solve(Z, C, 0.1, tol=1e-9)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert codes.converged.all()
    np.testing.assert_allclose(W2, W1, rtol=0, atol=1e-12)


def test_parts_of_a_batch_share_the_gram_budget(monkeypatch):
    # Parts solved at once each get their share of the Gram budgets, so that a split
    # call holds no more working-set Gram entries than one call would.
    import skplice.decomposition._solvers._active_set as active_set

    largest = []
    working_set_gram = active_set._working_set_gram

    def recording(C64, working, *args):
        largest.append(working.shape[0] * working.shape[1] ** 2)
        return working_set_gram(C64, working, *args)

    monkeypatch.setattr(active_set, "_working_set_gram", recording)
    rng = np.random.default_rng(16)
    C = correlated_dictionary(rng, 300, 32)
    Z = signals(rng, C, 200, n_active=8)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        W2, _ = solve(Z, C, 0.1, tol=1e-9, budgets=Budgets(gram=2**14, large_gram=2**14))
    finally:
        torch.set_num_threads(before)
    assert max(largest) <= 2**14 // 2
    np.testing.assert_allclose(W2, lasso_oracle(Z, C, 0.1), rtol=0, atol=1e-5)


def test_threads_are_restored_when_the_solver_fails(monkeypatch):
    import skplice.decomposition._solvers._active_set as active_set

    def failing(*args, **kwargs):
        raise FloatingPointError("a working-set solve failed")

    monkeypatch.setattr(active_set, "solve_working_sets", failing)
    rng = np.random.default_rng(14)
    C = correlated_dictionary(rng, 50, 8)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pytest.raises(FloatingPointError, match="working-set solve failed"):
            solve(signals(rng, C, 4), C, 0.1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_concurrent_calls_from_threads_agree_with_one_call():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(13)
    C = correlated_dictionary(rng, 400, 32)
    Z = signals(rng, C, 64, n_active=8)
    parts = np.array_split(Z, 8)
    one_at_a_time = [solve(part, C, 0.1)[0] for part in parts]
    before = torch.get_num_threads()
    with ThreadPoolExecutor(4) as pool:
        concurrent = list(pool.map(lambda part: solve(part, C, 0.1)[0], parts))
    assert torch.get_num_threads() == before
    for alone, together in zip(one_at_a_time, concurrent, strict=True):
        np.testing.assert_array_equal(together, alone)
    np.testing.assert_allclose(np.vstack(concurrent), solve(Z, C, 0.1)[0], rtol=0, atol=1e-12)


def test_gram_gather_chunks_do_not_change_results():
    # The working-set Gram matrices are built a chunk of rows at a time: 64 rows on a
    # CPU (cache), many more on a GPU (kernel launches). Chunks change no solution.
    rng = np.random.default_rng(15)
    C = correlated_dictionary(rng, 400, 32)
    Z = signals(rng, C, 50, n_active=10)
    results = [
        solve(Z, C, 0.05, tol=1e-9, budgets=Budgets(gather_chunk=chunk))[0]
        for chunk in (3, 64, 10_000)
    ]
    np.testing.assert_allclose(results[0], results[1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(results[2], results[1], rtol=0, atol=1e-12)


@cuda
@pytest.mark.gpu
def test_cuda_gather_chunks_do_not_change_results():
    # On a GPU the Gram chunks are as large as device_gather_entries allow (at least
    # gather_chunk rows): one chunk per group, or 4 rows per chunk, give one solution.
    rng = np.random.default_rng(15)
    C = torch.from_numpy(correlated_dictionary(rng, 400, 32)).cuda()
    Z = torch.from_numpy(signals(rng, C.cpu().numpy(), 50, n_active=10)).cuda()
    one_chunk = nonnegative_lasso(Z, C, 0.05, tol=1e-9)
    small = nonnegative_lasso(
        Z, C, 0.05, tol=1e-9, budgets=Budgets(gather_chunk=4, device_gather_entries=1)
    )
    assert one_chunk.converged.all() and small.converged.all()
    torch.testing.assert_close(small.to_dense(400), one_chunk.to_dense(400), rtol=0, atol=1e-12)
