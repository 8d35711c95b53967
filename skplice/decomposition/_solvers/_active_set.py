"""The active-set solver: exact solves on small working sets, certified on the whole dictionary.

A solution uses a few dozen of thousands of concepts. Each round solves the problem
restricted to each row's working set exactly (in float64), then certifies the result
with one product against the whole dictionary; concepts that violate the optimality
conditions join the working set. Memory is O(n_concepts * n_features + batch *
n_concepts), bounded further by the Gram budgets; no n_concepts x n_concepts matrix is
ever formed.
"""

from typing import NamedTuple

import torch

from skplice.decomposition._solvers._codes import SparseCodes
from skplice.decomposition._solvers._kkt import gradient, working_set_violation
from skplice.decomposition._solvers._nnls import solve_working_sets
from skplice.decomposition._solvers._working_sets import (
    FIRST_WORKING_SET,
    SolvedGroup,
    WorkingSetGroup,
    first_group,
    next_groups,
    warm_start,
)


class _Scheduled(NamedTuple):
    """A group waiting for its round."""

    round: int
    group: WorkingSetGroup


class _Finished(NamedTuple):
    """Rows whose weights are final (optimal, or out of rounds)."""

    rows: torch.Tensor  # (m,) int64: the rows' positions in the batch
    working_set: torch.Tensor  # (m, size) int64
    weights: torch.Tensor  # (m, size) float64


def active_set(Z, C, l1, *, tol, max_iter, init, budgets, threads=None, C64=None):
    """Solve every row of ``Z`` with the active-set method; see the package docstring.

    The products with ``C`` run on ``threads`` OpenMP threads (None: as set). ``C64``
    is ``C`` in float64 when the caller has it (parts of one batch share it).
    ``budgets`` bounds the Gram blocks held at once.
    """
    n, k = Z.shape[0], C.shape[0]
    device = Z.device
    # A small ridge keeps the free-set systems positive definite when concepts are
    # (nearly) collinear; it moves the gradient by ridge * w, well below tol.
    ridge = max(0.1 * tol, 1e-12)
    # Working-set systems are formed and solved in float64 whatever the input
    # precision: they are small, and float32 Gram errors (~1e-7 * |w|_1) would
    # otherwise dominate the tolerance.
    C64 = C.double() if C64 is None else C64
    l1_scalar = torch.tensor(l1, dtype=Z.dtype, device=device)

    # Every round's gradient is written into this one buffer (see ``gradient``).
    buffer = torch.empty(n, k, dtype=Z.dtype, device=device)
    rows = torch.arange(n, device=device)
    n_iter = torch.zeros(n, dtype=torch.int64, device=device)
    converged = torch.zeros(n, dtype=torch.bool, device=device)
    results = []
    # Beyond n_features concepts a working set's Gram matrix is singular: an optimal
    # support never needs more (in general position), and pivoting would stall.
    limit = min(k, max(Z.shape[1], FIRST_WORKING_SET))

    groups = []
    if init is None:
        grad = gradient(Z, C, l1_scalar, buffer, threads)
        # Rows whose gradient at w = 0 is non-negative are solved by w = 0.
        zero = grad.min(dim=1).values >= -tol
        if bool(zero.any()):
            converged[zero] = True
            rows, grad = rows[~zero], grad[~zero]
        if rows.numel():
            groups = [first_group(rows, grad, min(limit, FIRST_WORKING_SET), tol)]
    else:
        indices = init.indices.to(device)
        values = init.values.to(device=device, dtype=Z.dtype).clamp_min(0)
        optimal, groups = warm_start(Z, C, l1_scalar, indices, values, buffer, tol, limit, threads)
        converged[optimal] = True
        results.append(_Finished(rows[optimal], indices[optimal], values[optimal].double()))
    # Groups are followed depth first: a group's unfinished rows go on to their next
    # round before the next group starts, so only one group's Gram blocks (at most
    # budgets.gram entries, or the chunks sharing a product, and the carried blocks of
    # a few pending groups) are held at a time, whatever l1 and the batch size.
    stack = [_Scheduled(1, group) for group in reversed(_bounded(groups, budgets))]
    while stack:
        chunks = _sharing_a_product(stack, budgets)
        rounds = [chunk.round for chunk in chunks]
        solved, residuals = [], []
        while chunks:  # popped, so that each carried Gram block is freed once extended
            round_, group = chunks.pop(0)
            n_iter[group.rows] = round_
            z = Z[group.rows]
            gram, corr = _working_set_gram(
                C64, group.working_set, z.double(), group.known_gram, group.known_corr, budgets
            )
            rows, working, free = group.rows, group.working_set, group.starts_free
            del group
            weights, free, pivoting_done = solve_working_sets(
                gram, corr - l1 / 2, free, tol / 2, ridge, max_free=Z.shape[1]
            )
            residuals.append(
                z
                - torch.nn.functional.embedding_bag(
                    working, C, per_sample_weights=weights.to(Z.dtype), mode="sum"
                )
            )
            solved.append(SolvedGroup(rows, working, gram, corr, weights, free, pivoting_done))
            del gram, corr
        # One product for the popped chunks: a product of a few dozen rows (the chunks of
        # large working sets) costs twice as much per row as one of a few hundred.
        residual = torch.cat(residuals)
        del residuals
        grads = gradient(residual, C, l1_scalar, buffer, threads).split(
            [chunk.rows.shape[0] for chunk in solved]
        )
        following = []
        for round_, grad in zip(rounds, grads, strict=True):
            chunk = solved.pop(0)
            violation = working_set_violation(grad, chunk.working_set, chunk.weights)
            done = (violation <= tol) & chunk.pivoting_done
            converged[chunk.rows[done]] = True
            # Rows still running when max_iter ends keep their current feasible weights.
            finished = done if round_ < max_iter else torch.ones_like(done)
            results.append(
                _Finished(
                    chunk.rows[finished], chunk.working_set[finished], chunk.weights[finished]
                )
            )
            if not bool(finished.all()):
                following.extend(
                    _Scheduled(round_ + 1, group)
                    for group in _bounded(next_groups(chunk, grad, finished, limit, tol), budgets)
                )
            del chunk
        stack.extend(reversed(following))

    indices, values = _assemble(results, n, device)
    return SparseCodes(indices, values.to(Z.dtype), n_iter, converged)


def _bounded(groups, budgets):
    """Split groups into chunks of at most ``budgets.gram`` Gram entries each.

    Working sets beyond ``budgets.large_working_set`` get ``budgets.large_gram``.
    """
    chunks = []
    for group in groups:
        size = group.working_set.shape[1]
        budget = budgets.gram if size <= budgets.large_working_set else budgets.large_gram
        chunks.extend(group.split(max(1, budget // size**2)))
    return chunks


def _sharing_a_product(stack, budgets):
    """Pop the top chunk, and the next ones while their Gram blocks fit.

    The popped chunks share one product with the dictionary, so their Gram blocks are
    held together until it decides which rows go on: at most ``budgets.product_gram``
    entries (or one chunk). Chunks of different rounds may share it (each row counts
    its own rounds): the few rows a group leaves for its later rounds would otherwise
    pay a product each, at up to 20 times the cost per row of one of a few hundred.
    """
    first = stack.pop()
    chunks = [first]
    entries = first.group.gram_entries
    while stack:
        entries += stack[-1].group.gram_entries
        if entries > budgets.product_gram:
            break
        chunks.append(stack.pop())
    return chunks


def _working_set_gram(C64, working, z64, known_gram, known_corr, budgets):
    """Per-row float64 Gram matrix of the working set and its correlations with the signal.

    The first ``known_gram.shape[1]`` concepts of each working set are those of the
    previous round, whose block is reused: only the newcomers' rows are computed.
    """
    rows, size = working.shape
    old = known_gram.shape[1]
    gram = torch.empty(rows, size, size, dtype=torch.float64, device=C64.device)
    corr = torch.empty(rows, size, dtype=torch.float64, device=C64.device)
    gram[:, :old, :old] = known_gram
    corr[:, :old] = known_corr
    step = budgets.gather_chunk
    if C64.device.type != "cpu":
        step = max(step, budgets.device_gather_entries // (size * C64.shape[1]))
    for start in range(0, rows, step):
        stop = start + step
        chunk = working[start:stop]
        # index_select is several times faster than advanced indexing on CPU.
        block = C64.index_select(0, chunk.reshape(-1)).view(*chunk.shape, -1)
        new = torch.bmm(block[:, old:], block.transpose(1, 2))
        gram[start:stop, old:] = new
        gram[start:stop, :old, old:] = new[:, :, :old].transpose(1, 2)
        corr[start:stop, old:] = torch.bmm(block[:, old:], z64[start:stop, :, None]).squeeze(2)
    return gram, corr


def _assemble(results, n, device):
    """Pack per-round results into padded (n, n_stored) index and value arrays of non-zeros."""
    width = max(
        (int((r.weights > 0).sum(dim=1).max()) for r in results if r.weights.numel()), default=0
    )
    width = max(width, 1)
    indices = torch.zeros(n, width, dtype=torch.int64, device=device)
    values = torch.zeros(n, width, dtype=torch.float64, device=device)
    for rows, working, weights in results:
        nonzero_first = torch.argsort((weights <= 0).to(torch.int8), dim=1, stable=True)
        take = nonzero_first[:, :width]
        idx = working.gather(1, take)
        val = weights.gather(1, take)
        pad = width - idx.shape[1]
        if pad > 0:
            idx = torch.nn.functional.pad(idx, (0, pad))
            val = torch.nn.functional.pad(val, (0, pad))
        indices[rows] = idx
        values[rows] = val
    return indices, values
