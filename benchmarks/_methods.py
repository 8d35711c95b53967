"""The compared methods. Each solves, for every row z of Z,

    min_{w >= 0} ||C.T @ w - z||^2 + l1 * ||w||_1

and returns its solutions as a float64 CSR matrix with the time of the solve only
(inputs are converted to the method's format before the clock starts).

A method is ``method(problem, l1, opts) -> Result`` where ``problem`` holds numpy arrays:
``C`` and ``Z`` as processed by SpLiCE (``Z`` cut to the samples the method runs), and the
raw ``D_raw`` and ``X_raw`` (all samples, for ``SpLiCETransformer.fit``); ``opts`` holds
``device``, ``dtype``, ``tol``, ``batch_size``, ``seed`` and ``threads`` (None: each
library's default, all cores).

Penalties are converted exactly: SPAMS' ``lasso(mode=2)`` and scikit-learn's
``sparse_encode`` minimise 0.5 ||x - D a||^2 + lambda1 ||a||_1, so lambda1 = l1 / 2;
``Lasso``-style estimators (scikit-learn, celer, skglm) minimise
||y - X w||^2 / (2 n_samples) + alpha ||w||_1 with n_samples = d, so alpha = l1 / (2 d).

The scikit-learn methods always run in float64 on the CPU: in float32, sparse_encode's
fixed tolerance (a duality gap of 1e-8) is below float32 rounding, so every sample runs
all max_iter epochs (2.6x slower on MiniLM), and Lasso is no faster in float32.

The peers SPAMS (``pip install spams-bin``), celer and skglm are optional
(``pip install -e ".[bench]"``); a method whose package is missing is skipped with a note.
"""

import importlib.util
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.decomposition import sparse_encode
from sklearn.linear_model import Lasso

from skplice import SpLiCETransformer
from skplice.decomposition._solvers import nonnegative_lasso


@dataclass
class Result:
    W: sp.csr_matrix  # (n_samples, n_concepts) float64 solutions; None for the floor
    seconds: float
    iters: float = float("nan")  # mean iterations (rounds, epochs) per sample
    note: str = ""
    cpu_seconds: float = float("nan")  # CPU time of this process's threads
    first_seconds: float = float("nan")  # the first call's time, when ``seconds`` is warm


class Stopwatch:
    """Wall-clock and process CPU timer that waits for queued CUDA work on entry and exit.

    ``cpu_seconds`` counts every thread of this process (OpenMP and BLAS threads
    included), not child processes such as joblib workers.
    """

    def __init__(self, device):
        self.device = torch.device(device)

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __enter__(self):
        self._sync()
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()
        return self

    def __exit__(self, *exc):
        self._sync()
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = time.process_time() - self.cpu_start


def tensors(problem, opts):
    """C and Z as torch tensors of the benchmark dtype, on the benchmark device."""
    dtype = getattr(torch, opts["dtype"])
    return (torch.tensor(problem[name], dtype=dtype, device=opts["device"]) for name in "CZ")


def codes_to_csr(codes_list, n_concepts):
    """Stack the SparseCodes of successive batches into one float64 CSR matrix."""
    blocks = []
    for codes in codes_list:
        values = codes.values.double().cpu().numpy()
        indices = codes.indices.cpu().numpy()
        keep = values > 0
        indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
        shape = (values.shape[0], n_concepts)
        blocks.append(sp.csr_matrix((values[keep], indices[keep], indptr), shape=shape))
    return sp.vstack(blocks, format="csr")


def _skplice(solver, dtype=None):
    """skplice's solver in batches; ``dtype`` overrides the benchmark's (e.g. float64)."""

    def method(problem, l1, opts):
        C, Z = tensors(problem, {**opts, "dtype": dtype or opts["dtype"]})
        step = opts["batch_size"]
        with Stopwatch(opts["device"]) as clock:
            codes = [
                nonnegative_lasso(Z[i : i + step], C, l1, solver=solver, tol=opts["tol"])
                for i in range(0, Z.shape[0], step)
            ]
        n_iter = torch.cat([c.n_iter for c in codes]).double()
        converged = torch.cat([c.converged for c in codes])
        note = "" if bool(converged.all()) else f"{int((~converged).sum())} not converged"
        W = codes_to_csr(codes, C.shape[0])
        return Result(W, clock.seconds, float(n_iter.mean()), note, clock.cpu_seconds)

    return method


def transformer(problem, l1, opts):
    """``SpLiCETransformer.transform`` end to end: validation, centring, solve, CSR output."""
    X_all = problem["X_raw"].astype(opts["dtype"])
    estimator = SpLiCETransformer(
        l1,
        dictionary=problem["D_raw"],
        solver="active_set",
        tol=opts["tol"],
        batch_size=opts["batch_size"],
        device=opts["device"],
    ).fit(X_all)  # image_mean_ = the mean that centred Z
    X = X_all[: problem["Z"].shape[0]]
    with Stopwatch(opts["device"]) as clock:
        W = estimator.transform(X)
    return Result(W.astype(np.float64), clock.seconds, cpu_seconds=clock.cpu_seconds)


def sklearn_lasso(problem, l1, opts):
    """scikit-learn Lasso(positive=True), one sample at a time, as in the paper's code."""
    C, Z = problem["C"], problem["Z"]
    d = C.shape[1]
    # The paper's settings (splice/model.py): tol=1e-6, max_iter=10000.
    lasso = Lasso(alpha=l1 / (2 * d), positive=True, fit_intercept=False, tol=1e-6, max_iter=10000)
    rows, n_iter = [], []
    with Stopwatch("cpu") as clock:
        for z in Z:
            lasso.fit(C.T, z)
            rows.append(sp.csr_matrix(lasso.coef_))
            n_iter.append(lasso.n_iter_)
    W = sp.vstack(rows, format="csr")
    return Result(W, clock.seconds, float(np.mean(n_iter)), cpu_seconds=clock.cpu_seconds)


def _per_sample(make_estimator):
    """A Lasso-style estimator of ``alpha = l1 / (2 d)`` fitted one sample at a time."""

    def method(problem, l1, opts):
        C, Z = problem["C"], problem["Z"]
        d = C.shape[1]
        estimator = make_estimator(l1 / (2 * d), d, opts)
        rows = []
        with Stopwatch("cpu") as clock:
            for z in Z:
                rows.append(sp.csr_matrix(estimator.fit(C.T, z).coef_))
        W = sp.vstack(rows, format="csr")
        return Result(W, clock.seconds, cpu_seconds=clock.cpu_seconds)

    return method


def _celer(alpha, d, opts):
    import celer

    # celer stops on a duality gap below tol * ||y||^2 / n_samples (the benchmark's tol,
    # 1e-6 by default, as the paper's Lasso).
    return celer.Lasso(alpha=alpha, positive=True, fit_intercept=False, tol=opts["tol"])


def _skglm(alpha, d, opts):
    import skglm

    # skglm stops on a KKT violation of the problem divided by 2 d: tol / (2 d) is the
    # benchmark's tolerance on our gradient (with 1e-6, 10% of supports differ).
    return skglm.Lasso(alpha=alpha, positive=True, fit_intercept=False, tol=opts["tol"] / (2 * d))


def sklearn_sparse_encode(problem, l1, opts):
    """sklearn.decomposition.sparse_encode(lasso_cd, positive=True) on ``threads`` processes.

    sparse_encode solves 0.5 * ||x - code @ dictionary||^2 + alpha * ||code||_1, so
    alpha = l1 / 2 is the same problem. It forms the n_concepts x n_concepts Gram
    matrix.
    """
    C, Z = problem["C"], problem["Z"]
    n_jobs = opts["threads"] or -1
    with Stopwatch("cpu") as clock:
        W = sparse_encode(Z, C, algorithm="lasso_cd", alpha=l1 / 2, positive=True, n_jobs=n_jobs)
    return Result(sp.csr_matrix(W), clock.seconds, cpu_seconds=clock.cpu_seconds)


def _spams(dtype, **options):
    """SPAMS ``lasso(mode=2, pos=True, lambda1=l1 / 2)`` on ``threads`` threads.

    ``gram=True`` passes ``Q = D' D`` and ``q = D' X`` (computed with numpy inside the
    timed call, an n_concepts x n_concepts matrix) instead of the dictionary.
    """
    gram = options.pop("gram", False)

    def method(problem, l1, opts):
        import spams

        # SPAMS takes column-major arrays: signals and atoms as columns.
        X = np.asfortranarray(problem["Z"].T, dtype=dtype)
        D = np.asfortranarray(problem["C"].T, dtype=dtype)
        threads = opts["threads"] or -1
        kwargs = dict(lambda1=l1 / 2, mode=2, pos=True, numThreads=threads, **options)
        with Stopwatch("cpu") as clock:
            if gram:
                Q = np.asfortranarray(D.T @ D)
                q = np.asfortranarray(D.T @ X)
                A = spams.lasso(X, Q=Q, q=q, **kwargs)
            else:
                A = spams.lasso(X, D=D, **kwargs)
        W = sp.csr_matrix(A.T, dtype=np.float64)
        return Result(W, clock.seconds, cpu_seconds=clock.cpu_seconds)

    return method


def paper_admm(problem, l1, opts, rho=5.0, tol=1e-6, max_iter=2000):
    """ADMM with the splitting of the paper's code (splice/admm.py), written anew in torch.

    Splitting w = v with v >= 0 carrying the penalty: with Q = 2 C C^T + rho I,
    factorised once by Cholesky (an n_concepts x n_concepts matrix),

        x <- Q^{-1} (2 C z + rho (v - u))
        v <- max(x + u - l1 / rho, 0)
        u <- u + x - v

    from a random start, for the whole batch at once, until the worst sample has both
    ||x - v|| < tol and rho ||v - v_prev|| < tol, or max_iter iterations (rho=5,
    tol=1e-6 and max_iter=2000 as in the paper's code). Returns v.
    """
    C, Z = tensors(problem, opts)
    k = C.shape[0]
    generator = torch.Generator(device=C.device).manual_seed(opts["seed"])
    x, v, u = (
        torch.randn(k, Z.shape[0], generator=generator, dtype=C.dtype, device=C.device)
        for _ in range(3)
    )
    with Stopwatch(opts["device"]) as clock:
        with Stopwatch(opts["device"]) as setup:
            Q = 2 * C @ C.T + rho * torch.eye(k, dtype=C.dtype, device=C.device)
            factor = torch.linalg.cholesky(Q)
        target = 2 * C @ Z.T
        iteration = 0
        while iteration < max_iter:
            iteration += 1
            v_prev = v
            x = torch.cholesky_solve(target + rho * (v - u), factor)
            v = (x + u - l1 / rho).clamp_min(0)
            u = u + x - v
            primal = torch.linalg.vector_norm(x - v, dim=0).max()
            dual = rho * torch.linalg.vector_norm(v - v_prev, dim=0).max()
            if primal < tol and dual < tol:
                break
    W = sp.csr_matrix(v.T.double().cpu().numpy())
    note = f"Cholesky of Q: {setup.seconds:.1f} s"
    return Result(W, clock.seconds, float(iteration), note, clock.cpu_seconds)


def floor(problem, l1, opts, repeats=5):
    """The time of one Z @ C.T product (median of ``repeats``): no solver can beat it."""
    C, Z = tensors(problem, opts)
    out = torch.empty(Z.shape[0], C.shape[0], dtype=Z.dtype, device=Z.device)
    runs = []
    for _ in range(repeats):
        with Stopwatch(opts["device"]) as clock:
            torch.mm(Z, C.T, out=out)
        runs.append((clock.seconds, clock.cpu_seconds))
    seconds, cpu_seconds = np.median(runs, axis=0)
    return Result(None, float(seconds), note=f"median of {repeats}", cpu_seconds=cpu_seconds)


METHODS = {
    "floor": floor,
    "active_set": _skplice("active_set"),
    "active_set64": _skplice("active_set", dtype="float64"),
    "fista": _skplice("fista"),
    "transformer": transformer,
    "spams": _spams(np.float64),
    "spams_cholesky": _spams(np.float64, cholesky=True),
    "spams_gram": _spams(np.float64, gram=True),
    "spams32": _spams(np.float32),
    "celer": _per_sample(_celer),
    "skglm": _per_sample(_skglm),
    "sparse_encode": sklearn_sparse_encode,
    "lasso": sklearn_lasso,
    "admm": paper_admm,
}
LABELS = {
    "floor": "floor: one Z @ C.T product",
    "active_set": "skplice nonnegative_lasso(active_set)",
    "active_set64": "skplice nonnegative_lasso(active_set), float64",
    "fista": "skplice nonnegative_lasso(fista)",
    "transformer": "skplice SpLiCETransformer.transform",
    "spams": "SPAMS lasso(mode=2, pos=True), float64",
    "spams_cholesky": "SPAMS lasso(..., cholesky=True), float64",
    "spams_gram": "SPAMS lasso(..., Q=D'D, q=D'X), float64",
    "spams32": "SPAMS lasso(mode=2, pos=True), float32",
    "celer": "celer Lasso(positive=True), per sample",
    "skglm": "skglm Lasso(positive=True), per sample",
    "sparse_encode": "sklearn sparse_encode(lasso_cd, n_jobs=threads)",
    "lasso": "sklearn Lasso(positive=True), per sample",
    "admm": "paper's ADMM (c x c Cholesky, rho=5)",
}
# Samples each method runs by default (None: all); slow methods run on a prefix.
DEFAULT_SUBSET = {
    "fista": 20,
    "celer": 100,
    "skglm": 100,
    "sparse_encode": 1000,
    "lasso": 100,
    "admm": 20,
}
# The package each optional method needs, and how to install it.
OPTIONAL = {
    "spams": ("spams", "pip install spams-bin"),
    "spams_cholesky": ("spams", "pip install spams-bin"),
    "spams_gram": ("spams", "pip install spams-bin"),
    "spams32": ("spams", "pip install spams-bin"),
    "celer": ("celer", "pip install celer"),
    "skglm": ("skglm", "pip install skglm"),
}


def missing(method):
    """How to install ``method``'s package when it is not installed, else None."""
    if method not in OPTIONAL:
        return None
    module, install = OPTIONAL[method]
    return None if importlib.util.find_spec(module) else f"skipped: {install}"
