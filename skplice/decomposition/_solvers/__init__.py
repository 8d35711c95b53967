"""Batched non-negative lasso on torch tensors, on CPU or CUDA.

For every row ``z`` of ``Z`` (independently) the solvers compute

    w* = argmin_{w >= 0}  ||C.T @ w - z||^2 + l1 * sum(w)

where ``C`` has shape (n_concepts, n_features). These are pure functions of torch
tensors: nothing here knows about scikit-learn or numpy.

Both solvers stop a row once it meets the optimality (KKT) conditions within ``tol``
(``_kkt``), and converged rows leave the computation. Every row starts from ``w = 0``
(or from its own warm start), so a row's result does not depend on the other rows of
its batch.

``active_set`` (the default, ``_active_set``) exploits sparsity: a solution uses a few
dozen of thousands of concepts. Each round it solves the problem restricted to a small
per-row working set (``_working_sets``) exactly, with block principal pivoting on the
working set's Gram matrix in float64 (``_nnls``), then certifies the result with one
product against the whole dictionary; concepts that violate the optimality conditions
join the working set. ``Budgets`` (``_budgets``) bound the memory it holds. On the CPU
the caller's threads each solve a part of the batch (``_threads``).

``fista`` (``_fista``) is accelerated projected gradient with adaptive restart, kept as
a cross-check and as a baseline.
"""

from skplice.decomposition._solvers._budgets import STANDARD_BUDGETS, Budgets
from skplice.decomposition._solvers._codes import SparseCodes
from skplice.decomposition._solvers._lasso import DEFAULT_MAX_ITER, SOLVERS, nonnegative_lasso

__all__ = [
    "DEFAULT_MAX_ITER",
    "SOLVERS",
    "STANDARD_BUDGETS",
    "Budgets",
    "SparseCodes",
    "nonnegative_lasso",
]
