"""The entry point: argument checks, and the dispatch to a solver (in parts on a CPU)."""

import torch

from skplice.decomposition._solvers._active_set import active_set
from skplice.decomposition._solvers._budgets import STANDARD_BUDGETS, Budgets
from skplice.decomposition._solvers._codes import empty_codes
from skplice.decomposition._solvers._fista import fista
from skplice.decomposition._solvers._threads import in_parts, intra_op_threads

SOLVERS = ("active_set", "fista")
DEFAULT_MAX_ITER = {"active_set": 100, "fista": 20000}


def nonnegative_lasso(
    Z, C, l1, *, solver="active_set", tol=1e-5, max_iter=None, init=None, budgets=STANDARD_BUDGETS
):
    """Solve the non-negative lasso for every row of ``Z``.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_samples, n_features)
        Signals, float32 or float64.
    C : torch.Tensor of shape (n_concepts, n_features)
        Dictionary, same dtype and device as ``Z``.
    l1 : float
        Non-negative sparsity penalty.
    solver : {"active_set", "fista"}, default="active_set"
        Algorithm (see the package docstring).
    tol : float, default=1e-5
        Largest KKT violation accepted for a row (see ``_kkt``).
    max_iter : int, default=None
        Rounds for ``active_set`` (each costs one product with the dictionary),
        iterations for ``fista``. None uses ``DEFAULT_MAX_ITER[solver]``.
    init : SparseCodes, default=None
        Warm start for ``active_set``, e.g. the solution of the same rows at a
        neighbouring ``l1`` (a regularization path): one product certifies the
        rows that are already optimal (``n_iter`` 0), and the others start from
        their previous support. Ignored by ``fista``.
    budgets : Budgets, default=STANDARD_BUDGETS
        Memory and work-size budgets of ``active_set``: they change its speed and
        peak memory, not its solutions. Ignored by ``fista``.

    Returns
    -------
    SparseCodes
        Weights in ``Z``'s dtype, with per-row iteration counts and convergence.
    """
    if Z.dim() != 2 or C.dim() != 2 or Z.shape[1] != C.shape[1]:
        raise ValueError(f"Z {tuple(Z.shape)} and C {tuple(C.shape)} must share n_features.")
    if Z.dtype != C.dtype or Z.device != C.device:
        raise ValueError("Z and C must have the same dtype and device.")
    if solver not in SOLVERS:
        raise ValueError(f"solver={solver!r} is not one of {SOLVERS}.")
    if init is not None and init.indices.shape[0] != Z.shape[0]:
        raise ValueError(
            f"init holds {init.indices.shape[0]} rows but Z has {Z.shape[0]}: pass the "
            "solution of the same rows (e.g. at a neighbouring l1), or init=None."
        )
    if not isinstance(budgets, Budgets):
        raise TypeError(f"budgets must be a Budgets, got {type(budgets).__name__}.")
    if max_iter is None:
        max_iter = DEFAULT_MAX_ITER[solver]
    if Z.shape[0] == 0:
        return empty_codes(Z.dtype, Z.device)
    if solver == "fista":
        return fista(Z, C, float(l1), tol=tol, max_iter=max_iter)
    options = {"tol": tol, "max_iter": max_iter}
    if Z.device.type != "cpu":
        return active_set(Z, C, float(l1), init=init, budgets=budgets, **options)
    # On the CPU no operation runs on more than one OpenMP thread (see ``_threads``):
    # the caller's threads solve parts of the batch, each with its share of the
    # budgets and the one float64 dictionary; a batch too small to split keeps the
    # threads for its products.
    threads = torch.get_num_threads()
    parts = max(1, min(threads, Z.shape[0] // budgets.min_rows_per_part))
    with intra_op_threads(1):
        if parts == 1:
            return active_set(
                Z, C, float(l1), init=init, threads=threads, budgets=budgets, **options
            )
        C64, shared = C.double(), budgets.shared(parts)

        def solve_part(z, part_init):
            return active_set(z, C, float(l1), init=part_init, budgets=shared, C64=C64, **options)

        return in_parts(solve_part, Z, init, parts)
