"""Batched non-negative lasso on torch tensors, on CPU or CUDA.

For every row ``z`` of ``Z`` (independently) the solvers compute

    w* = argmin_{w >= 0}  ||C.T @ w - z||^2 + l1 * sum(w)

where ``C`` has shape (n_concepts, n_features). These are pure functions of torch
tensors: nothing here knows about scikit-learn or numpy.

Optimality (KKT) conditions, with the gradient ``g = l1 - 2 * C @ (z - C.T @ w)``:
``g_j = 0`` where ``w_j > 0`` and ``g_j >= 0`` where ``w_j = 0``. Both solvers stop
a row once its KKT violation -- the largest ``|g_j|`` over active concepts and
``max(0, -g_j)`` over inactive ones -- is at most ``tol``, and converged rows
leave the computation. Every row starts from ``w = 0`` (or from its own warm
start), so a row's result does not depend on the other rows of its batch.

``active_set`` (the default) exploits sparsity: a solution uses a few dozen of
thousands of concepts. Each round it solves the problem restricted to a small
per-row working set exactly (block principal pivoting on the working set's Gram
matrix, in float64), then certifies the result with one product against the
whole dictionary; concepts that violate the optimality conditions join the
working set. Memory is O(n_concepts * n_features + batch * n_concepts); no
n_concepts x n_concepts matrix is ever formed. On the CPU no operation runs on more
than one OpenMP thread (hundreds of small operations per call would spin waiting for
each other on a busy machine); the caller's threads (``torch.get_num_threads()``) each
solve a contiguous part of the batch instead.

``fista`` is accelerated projected gradient with adaptive restart: two
products with the dictionary per iteration, simple and robust, kept as a
cross-check and as a baseline.
"""

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import torch

# Rows per chunk when gathering working-set dictionary rows: keeps the gathered
# (chunk, m, n_features) block in cache, which halves the cost of the Gram matrices.
_GATHER_CHUNK = 64
# On a GPU, where each chunk costs a few kernel launches, chunks are as large as this
# many gathered float64 entries (128 MB) allow.
_DEVICE_GATHER_ENTRIES = 2**24
# Working-set size of the first, approximate round of a cold start.
_FIRST_WORKING_SET = 32
# Working-set sizes are multiples of this, so that rows share groups.
_SIZE_STEP = 32
# Float64 entries of the per-row working-set Gram matrices held at once: groups of
# rows with large working sets are solved in chunks, which bounds memory at any l1.
# Beyond _LARGE_WORKING_SET concepts (small l1) a chunk's solve holds several
# copies of its Gram block and the pending groups carry theirs, so the budget is
# smaller: that keeps the peak within 4 x (n_concepts x d + batch x n_concepts)
# floats at l1=0.1 (about 10% slower there; working sets at l1 >= 0.2 stay small).
_GRAM_BUDGET = 2**22
_LARGE_WORKING_SET = 96
_LARGE_GRAM_BUDGET = 2**20
# Gram entries of the chunks that share one product with the dictionary (their blocks
# are held until it decides which rows go on).
_PRODUCT_GRAM_BUDGET = 2**21
# Rows per part, at least, when a CPU call is split across the caller's threads.
_MIN_ROWS_PER_PART = 64
# Block principal pivoting exchanges before a row falls back to the slower but
# monotone Lawson-Hanson method (pivoting can cycle on singular working sets).
_MAX_PIVOTING = 30
# Free-set sizes are rounded up to a multiple of this to batch Cholesky solves.
_SOLVE_BUCKET = 8

SOLVERS = ("active_set", "fista")
DEFAULT_MAX_ITER = {"active_set": 100, "fista": 20000}


@dataclass
class SparseCodes:
    """Row-wise sparse solution of a batch.

    Attributes
    ----------
    indices : torch.Tensor of shape (n_samples, n_stored), int64
        Concept index of each stored weight. Padding entries have weight 0.
    values : torch.Tensor of shape (n_samples, n_stored)
        Non-negative weights; exactly zero for padding and inactive concepts.
    n_iter : torch.Tensor of shape (n_samples,), int64
        Rounds (``active_set``) or iterations (``fista``) each row used.
    converged : torch.Tensor of shape (n_samples,), bool
        Whether the row met the tolerance within ``max_iter``.
    """

    indices: torch.Tensor
    values: torch.Tensor
    n_iter: torch.Tensor
    converged: torch.Tensor

    def to_dense(self, n_concepts):
        """Return the codes as a dense (n_samples, n_concepts) tensor."""
        dense = torch.zeros(
            self.values.shape[0], n_concepts, dtype=self.values.dtype, device=self.values.device
        )
        return dense.scatter_add_(1, self.indices, self.values)


def nonnegative_lasso(Z, C, l1, *, solver="active_set", tol=1e-5, max_iter=None, init=None):
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
        Algorithm (see the module docstring).
    tol : float, default=1e-5
        Largest KKT violation accepted for a row (see the module docstring).
    max_iter : int, default=None
        Rounds for ``active_set`` (each costs one product with the dictionary),
        iterations for ``fista``. None uses ``DEFAULT_MAX_ITER[solver]``.
    init : SparseCodes, default=None
        Warm start for ``active_set``, e.g. the solution of the same rows at a
        neighbouring ``l1`` (a regularization path): one product certifies the
        rows that are already optimal (``n_iter`` 0), and the others start from
        their previous support. Ignored by ``fista``.

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
    if max_iter is None:
        max_iter = DEFAULT_MAX_ITER[solver]
    if Z.shape[0] == 0:
        empty = torch.zeros(0, 0, dtype=Z.dtype, device=Z.device)
        none = torch.zeros(0, dtype=torch.int64, device=Z.device)
        return SparseCodes(empty.long(), empty, none, none.bool())
    if solver == "fista":
        return _fista(Z, C, float(l1), tol=tol, max_iter=max_iter)
    options = {"tol": tol, "max_iter": max_iter}
    if Z.device.type != "cpu":
        return _active_set(Z, C, float(l1), init=init, **options)
    # On the CPU, no operation of the solver runs on more than one OpenMP thread: the
    # threads of an operation wait for each other at its end, spinning, and with
    # hundreds of small operations per call and a core held by another process, that
    # waiting multiplied the CPU time by 4.7 and the wall time by 3.5 at two threads.
    # The caller's threads solve independent parts of the batch instead (rows do not
    # depend on each other); a batch too small to split keeps them for its products.
    threads = torch.get_num_threads()
    parts = max(1, min(threads, Z.shape[0] // _MIN_ROWS_PER_PART))
    with _intra_op_threads(1):
        if parts == 1:
            return _active_set(Z, C, float(l1), init=init, threads=threads, **options)
        return _in_parts(Z, C, float(l1), parts, init=init, **options)


@contextmanager
def _intra_op_threads(n):
    """Run torch's CPU operations on ``n`` threads inside the block (None: unchanged).

    ``torch.set_num_threads`` sets the calling thread's OpenMP and MKL thread counts
    (and the count that threads started later begin with); the caller's count is
    restored on exit, whatever happens inside.
    """
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _in_parts(Z, C, l1, parts, *, init, **options):
    """Solve contiguous parts of the rows of ``Z`` on ``parts`` threads, one OpenMP thread each.

    Each part is a whole active-set solve of its rows with its share of the Gram
    budget, so that memory stays that of one call; the float64 dictionary is shared.
    A part's results are those of the same rows in any other batch.
    """
    C64 = C.double()

    def solve(rows):
        # A new thread starts with the process's default thread count, not the caller's.
        torch.set_num_threads(1)
        part_init = None if init is None else _rows_of(init, rows)
        return _active_set(Z[rows], C, l1, init=part_init, C64=C64, share=parts, **options)

    bounds = torch.arange(Z.shape[0], device=Z.device).tensor_split(parts)
    with ThreadPoolExecutor(parts, thread_name_prefix="skplice-solver") as pool:
        codes = list(pool.map(solve, bounds))
    return _concatenate(codes)


def _rows_of(codes, rows):
    """The given rows of ``codes``."""
    return SparseCodes(
        *(t[rows] for t in (codes.indices, codes.values, codes.n_iter, codes.converged))
    )


def _concatenate(codes):
    """One SparseCodes of the rows of several, padded to the widest."""
    width = max(c.indices.shape[1] for c in codes)

    def padded(t):
        return torch.nn.functional.pad(t, (0, width - t.shape[1]))

    return SparseCodes(
        torch.cat([padded(c.indices) for c in codes]),
        torch.cat([padded(c.values) for c in codes]),
        torch.cat([c.n_iter for c in codes]),
        torch.cat([c.converged for c in codes]),
    )


# --------------------------------------------------------------------------- active set


def _active_set(Z, C, l1, *, tol, max_iter, init, threads=None, C64=None, share=1):
    """The active-set solver; the products with ``C`` run on ``threads`` (None: as set).

    ``C64`` is ``C`` in float64 when the caller has it; ``share`` divides the Gram
    budgets (parts of one batch solved at once).
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

    # Every round's gradient is written into this one buffer: on CPU, allocating a
    # fresh (n, n_concepts) block per product costs a fifth of the product in page
    # faults (blocks that large go straight back to the operating system when freed).
    buffer = torch.empty(n, k, dtype=Z.dtype, device=device)
    rows = torch.arange(n, device=device)
    n_iter = torch.zeros(n, dtype=torch.int64, device=device)
    converged = torch.zeros(n, dtype=torch.bool, device=device)
    results = []  # (rows, working set, float64 weights) of finished rows
    # Beyond n_features concepts a working set's Gram matrix is singular: an optimal
    # support never needs more (in general position), and pivoting would stall.
    limit = min(k, max(Z.shape[1], _FIRST_WORKING_SET))

    # Rows are processed in groups sharing a working-set size, so that the few
    # rows with large supports do not make every row pay for large systems. A group
    # also carries the Gram block of the concepts its rows already had (none here).
    groups = []
    if init is None:
        grad = _gradient(Z, C, l1_scalar, buffer, threads)
        # Rows whose gradient at w = 0 is non-negative are solved by w = 0.
        zero = grad.min(dim=1).values >= -tol
        if bool(zero.any()):
            converged[zero] = True
            rows, grad = rows[~zero], grad[~zero]
        if rows.numel():
            size = min(limit, _FIRST_WORKING_SET)
            working, free = _next_working_set(grad, None, None, size, tol)
            groups = [(rows, working, free, *_nothing_known(rows, working))]
    else:
        indices = init.indices.to(device)
        values = init.values.to(device=device, dtype=Z.dtype).clamp_min(0)
        optimal, groups = _warm_start(
            Z, C, l1_scalar, indices, values, buffer, tol, limit, threads
        )
        converged[optimal] = True
        results.append((rows[optimal], indices[optimal], values[optimal].double()))
    # Groups are followed depth first: a group's unfinished rows go on to their next
    # round before the next group starts, so only one group's Gram blocks (at most
    # _GRAM_BUDGET entries, or the chunks sharing a product, and the carried blocks of
    # a few pending groups) are held at a time, whatever l1 and the batch size.
    stack = [(1, group) for group in reversed(_bounded(groups, share))]
    while stack:
        chunks, solved = _same_round(stack, share), []
        while chunks:  # popped, so that each carried Gram block is freed once extended
            round_, (rows, working, free, known_gram, known_corr) = chunks.pop(0)
            n_iter[rows] = round_
            z = Z[rows]
            gram, corr = _working_set_gram(C64, working, z.double(), known_gram, known_corr)
            del known_gram, known_corr
            weights, free, pivoting_done = _solve_working_sets(
                gram, corr - l1 / 2, free, tol / 2, ridge, max_free=Z.shape[1]
            )
            residual = z - torch.nn.functional.embedding_bag(
                working, C, per_sample_weights=weights.to(Z.dtype), mode="sum"
            )
            solved.append([rows, working, gram, corr, weights, free, pivoting_done, residual])
        # One product for the popped chunks: a product of a few dozen rows (the chunks of
        # large working sets) costs twice as much per row as one of a few hundred.
        residual = torch.cat([chunk.pop() for chunk in solved])
        grads = _gradient(residual, C, l1_scalar, buffer, threads).split(
            [chunk[0].shape[0] for chunk in solved]
        )
        following = []
        for grad in grads:
            rows, working, gram, corr, weights, free, pivoting_done = solved.pop(0)
            violation = _kkt_violation(grad, working, weights)
            done = (violation <= tol) & pivoting_done
            converged[rows[done]] = True
            # Rows still running when max_iter ends keep their current feasible weights.
            finished = done if round_ < max_iter else torch.ones_like(done)
            results.append((rows[finished], working[finished], weights[finished]))
            if bool(finished.all()):
                continue
            left = (~finished).nonzero().squeeze(1)
            rows, working, weights, free = (t[left] for t in (rows, working, weights, free))
            # Keep the support; a row whose pivoting hit its bound keeps everything.
            keep = free | (weights > 0) | ~pivoting_done[left][:, None]
            size = working.shape[1]
            needed = _working_set_sizes(keep.sum(dim=1), size, limit)
            if size + _SIZE_STEP <= limit:
                # Grow: the working set keeps all its concepts (and their Gram block,
                # computed once) and gains the most violating others.
                needed = torch.clamp(needed, min=size + _SIZE_STEP)
                newcomer_values, newcomer_indices = _most_violating(
                    grad, ~finished, int(needed.max()) - size
                )
                for new_size in torch.unique(needed).tolist():
                    members = needed == new_size
                    slots = slice(0, new_size - size)
                    following.append(
                        (
                            rows[members],
                            torch.cat([working[members], newcomer_indices[members, slots]], 1),
                            torch.cat(
                                [
                                    free[members] & keep[members],
                                    newcomer_values[members, slots] < -tol,
                                ],
                                1,
                            ),
                            # The Gram block is copied once, straight from the solved group.
                            _take(gram, left[members]),
                            _take(corr, left[members]),
                        )
                    )
            else:
                grad = grad[left]
                # At the size limit: rebuild from the kept concepts and the most violating.
                kept = torch.zeros_like(grad, dtype=torch.bool).scatter_(1, working, keep)
                kept_free = torch.zeros_like(grad, dtype=torch.bool)
                kept_free.scatter_(1, working, free & keep)
                for new_size in torch.unique(needed).tolist():
                    members = needed == new_size
                    nxt = _next_working_set(
                        grad[members], kept[members], kept_free[members], new_size, tol
                    )
                    following.append((rows[members], *nxt, *_nothing_known(rows[members], nxt[0])))
            del gram, corr
        stack.extend((round_ + 1, group) for group in reversed(_bounded(following, share)))

    indices, values = _assemble(results, n, device)
    return SparseCodes(indices, values.to(Z.dtype), n_iter, converged)


def _same_round(stack, share=1):
    """Pop the top chunk and the next ones of its round while their Gram blocks fit
    _PRODUCT_GRAM_BUDGET / share together (they share one product with the dictionary)."""
    round_, group = stack.pop()
    chunks = [(round_, group)]
    entries = group[1].numel() * group[1].shape[1]
    while stack and stack[-1][0] == round_:
        working = stack[-1][1][1]
        entries += working.numel() * working.shape[1]
        if entries > _PRODUCT_GRAM_BUDGET // share:
            break
        chunks.append(stack.pop())
    return chunks


def _gradient(residual, C, l1_scalar, buffer, threads=None):
    """``l1 - 2 * residual @ C.T``, written into the first rows of ``buffer``."""
    with _intra_op_threads(threads):
        return torch.addmm(l1_scalar, residual, C.T, alpha=-2.0, out=buffer[: residual.shape[0]])


def _warm_start(Z, C, l1_scalar, indices, values, buffer, tol, limit, threads=None):
    """Rows already optimal at a previous solution, and first working sets for the rest.

    One product gives the gradient at the previous solution (``indices``, ``values``,
    e.g. from a neighbouring ``l1``). A row that meets the optimality conditions there
    is done. For the others, the previous support stays in the working set and starts
    free, joined by the concepts that violate the conditions at the previous solution:
    at most half as many as the support (or one size step), since far along a path many
    concepts violate slightly and a solve costs the cube of the working-set size.
    """
    start = torch.nn.functional.embedding_bag(indices, C, per_sample_weights=values, mode="sum")
    grad = _gradient(Z - start, C, l1_scalar, buffer, threads)
    previous = values > 0
    inside = torch.where(previous, grad.gather(1, indices).abs(), 0).max(dim=1).values
    kept = torch.zeros_like(grad, dtype=torch.bool).scatter_(1, indices, previous)
    n_kept = kept.sum(dim=1)
    room = torch.clamp(n_kept // 2, min=_SIZE_STEP)
    # Kept concepts sort first, then the others by gradient: one top-k of all rows
    # serves every row (selecting rows of the full gradient would copy it).
    grad.masked_fill_(kept, -torch.inf)
    largest = _rounded_sizes(n_kept + room, limit).max()
    width = int(torch.clamp(torch.maximum(largest, n_kept.max() + 1), max=C.shape[0]))
    smallest, concepts = grad.topk(width, dim=1, largest=False)
    # The smallest gradient outside the support comes right after the kept concepts
    # (_kkt_violation would cost another pass over grad, and would hide concept 0,
    # which the padding entries of ``indices`` name, from the top-k).
    after_kept = smallest.gather(1, n_kept.clamp(max=width - 1)[:, None]).squeeze(1)
    outside = torch.where(n_kept < width, -after_kept, 0).clamp_min(0)
    optimal = torch.maximum(inside, outside) <= tol
    n_violators = ((smallest < -tol) & (smallest > -torch.inf)).sum(dim=1)
    needed = _rounded_sizes(n_kept + torch.minimum(n_violators, room), limit)
    groups = []
    left = (~optimal).nonzero().squeeze(1)
    for size in torch.unique(needed[left]).tolist():
        members = left[needed[left] == size]
        order = concepts[members, :size].argsort(dim=1)
        working = concepts[members, :size].gather(1, order)
        free = smallest[members, :size].gather(1, order) < -tol
        groups.append((members, working, free, *_nothing_known(members, working)))
    return optimal, groups


def _rounded_sizes(counts, limit):
    """Working-set sizes: ``counts`` rounded up to a multiple of _SIZE_STEP, within limit."""
    sizes = (counts + _SIZE_STEP - 1) // _SIZE_STEP * _SIZE_STEP
    return torch.clamp(sizes, min=min(_SIZE_STEP, limit), max=limit)


def _take(tensor, index):
    """``tensor[index]`` for sorted row indices, without a copy when they are all rows."""
    if index.numel() == tensor.shape[0]:
        return tensor
    return tensor.index_select(0, index)


def _most_violating(grad, rows, count):
    """The ``count`` smallest gradient entries (values and concepts) of the selected rows.

    Selecting rows copies a (rows, n_concepts) array, which costs about as much as
    the selection itself: with most rows selected, select among the top entries.
    """
    if 2 * int(rows.sum()) > rows.numel():
        values, indices = grad.topk(count, dim=1, largest=False)
        return values[rows], indices[rows]
    return grad[rows].topk(count, dim=1, largest=False)


def _bounded(groups, share=1):
    """Split groups so that each holds at most _GRAM_BUDGET / share Gram entries (large
    sets: less)."""
    chunks = []
    for group in groups:
        size = group[1].shape[1]
        budget = _GRAM_BUDGET if size <= _LARGE_WORKING_SET else _LARGE_GRAM_BUDGET
        budget //= share
        rows_per_chunk = max(1, budget // size**2)
        chunks.extend(zip(*(t.split(rows_per_chunk) for t in group), strict=True))
    return chunks


def _working_set_sizes(n_kept, size, limit):
    """Per-row working-set size: a multiple of _SIZE_STEP at least 1.5 x the kept concepts.

    Rounding to a multiple (rather than a power of two) keeps the working sets of
    rows with large supports tight: their cost grows with the square of the size.
    """
    return _rounded_sizes(torch.clamp(n_kept * 3 // 2, min=size), limit)


def _next_working_set(grad, kept, kept_free, size, tol):
    """Working set = the kept concepts, then the most violating others, sorted by index.

    ``grad`` is overwritten where ``kept``. Returns the (rows, size) working set and
    which of its entries start in the free set: kept free ones and new violators.
    """
    if kept is not None:
        grad[kept] = -torch.inf
    working = grad.topk(size, dim=1, largest=False).indices.sort(dim=1).values
    free = grad.gather(1, working) < -tol
    if kept is not None:
        free = (free & ~kept.gather(1, working)) | kept_free.gather(1, working)
    return working, free


def _nothing_known(rows, working):
    """Empty known Gram block and correlations, for working sets built from scratch."""
    empty = torch.empty(rows.shape[0], 0, 0, dtype=torch.float64, device=working.device)
    return empty, empty.new_empty(rows.shape[0], 0)


def _working_set_gram(C64, working, z64, known_gram, known_corr):
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
    step = _GATHER_CHUNK
    if C64.device.type != "cpu":
        step = max(step, _DEVICE_GATHER_ENTRIES // (size * C64.shape[1]))
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


def _kkt_violation(grad, working, weights):
    """Largest violation of the optimality conditions per row, over all concepts."""
    inside = grad.gather(1, working).double()
    inside = torch.where(weights > 0, inside.abs(), (-inside).clamp_min(0)).max(dim=1).values
    grad.scatter_(1, working, torch.inf)  # working-set entries are judged above
    outside = (-grad.min(dim=1).values).clamp_min(0).double()
    return torch.maximum(inside, outside)


def _solve_working_sets(gram, target, free, tol, ridge, max_free):
    """Solve each row's working-set problem: pivoting first, Lawson-Hanson where it fails."""
    weights, free, done = _block_principal_pivoting(
        gram, target, free, tol, ridge, _MAX_PIVOTING, max_free
    )
    failed = (~done).nonzero().squeeze(1)
    if failed.numel():
        w, f, ok = _lawson_hanson(gram[failed], target[failed], tol, ridge)
        weights[failed], free[failed], done[failed] = w, f, ok
    return weights, free, done


def _block_principal_pivoting(gram, target, free, tol, ridge, max_iter, max_free):
    """Solve min_{w >= 0} w'Qw/2 - target'w for each row, from a starting free set.

    Block principal pivoting (Judice & Pires; Kim & Park, 2011): solve on the
    free set, exchange every infeasible index while their number drops, and fall
    back to exchanging the last one (Murty's rule, which terminates) otherwise, or
    when a full exchange would free more than ``max_free`` indices (the rank bound).

    Returns the weights (zeros off the free set), the free sets, and which rows
    reached a sign-feasible point within ``max_iter`` exchanges (the caller
    certifies optimality with the full gradient).
    """
    rows, size = target.shape
    device = target.device
    positions = torch.arange(size, device=device)
    weights = torch.zeros_like(target)
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    free = free.clone()
    backup = torch.full((rows,), 3, device=device)
    fewest = torch.full((rows,), size + 1, device=device)
    active = torch.arange(rows, device=device)
    for _ in range(max_iter):
        f = free[active]
        w, y = _solve_on_free_set(gram, target, free, ridge, active)
        infeasible = (f & (w < 0)) | (~f & (y < -tol))
        count = infeasible.sum(dim=1)
        finished = count == 0
        improved = count < fewest[active]
        fewest[active] = torch.where(improved, count, fewest[active])
        chances = torch.where(improved, 3, backup[active])
        # More free concepts than features would make the free-set system singular.
        too_many = (f ^ infeasible).sum(dim=1) > max_free
        exchange_all = (improved | (chances >= 1)) & ~too_many
        backup[active] = torch.where(~improved & (chances >= 1), chances - 1, chances)
        last = torch.where(infeasible, positions, -1).argmax(dim=1)
        exchange = torch.where(
            exchange_all[:, None], infeasible, (positions == last[:, None]) & infeasible
        )
        weights[active] = w
        done[active[finished]] = True
        free[active] = torch.where(finished[:, None], f, f ^ exchange)
        active = active[~finished]
        if active.numel() == 0:
            break
    return weights.clamp_min(0), free, done


def _lawson_hanson(gram, target, tol, ridge):
    """Primal active-set method for min_{w >= 0} w'Qw/2 - target'w, one row per batch entry.

    From w = 0, add the most violating index, solve on the free set, and step
    back along the segment to the last feasible point when the solution leaves
    the orthant (dropping the indices that reach zero). The objective decreases
    monotonically, so unlike pivoting it cannot cycle on singular systems.
    """
    rows, size = target.shape
    device = target.device
    weights = torch.zeros_like(target)
    grad = -target  # Q w - target at w = 0
    free = torch.zeros(rows, size, dtype=torch.bool, device=device)
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    optimal_on_free = torch.ones(rows, dtype=torch.bool, device=device)
    active = torch.arange(rows, device=device)
    for _ in range(3 * size + 10):
        # Rows at the optimum of their free set add their most violating index, or stop.
        adding = active[optimal_on_free[active]]
        if adding.numel():
            g = grad[adding].masked_fill(free[adding], torch.inf)
            best = g.min(dim=1)
            finished = best.values >= -tol
            done[adding[finished]] = True
            free[adding[~finished], best.indices[~finished]] = True
            active = active[~done[active]]
        if active.numel() == 0:
            break
        solution, solution_grad = _solve_on_free_set(gram, target, free, ridge, active)
        w, f = weights[active], free[active]
        blocked = f & (solution <= 0)
        # Largest step towards the solution that keeps every free weight non-negative.
        ratio = torch.where(blocked, w / (w - solution).clamp_min(1e-300), torch.inf)
        step, blocking = ratio.min(dim=1)
        full = step >= 1.0
        step = step.clamp(max=1.0)[:, None]
        w = torch.where(f, w + step * (solution - w), 0.0).clamp_min(0)
        # The blocking weight is zero by construction; rounding would leave it tiny
        # but positive and stuck in the free set, so it is set to zero explicitly.
        partial = (~full).nonzero().squeeze(1)
        w[partial, blocking[partial]] = 0.0
        weights[active] = w
        grad[active] = grad[active] + step * (solution_grad - grad[active])
        free[active] = f & ((w > 0) | full[:, None])
        optimal_on_free[active] = full
    return weights, free, done


def _solve_on_free_set(gram, target, free, ridge, rows):
    """For the given rows, solve gram[F, F] w[F] = target[F] (w = 0 off F) with a small ridge.

    Returns the weights and the gradient-like residual ``gram @ w - target``.
    Rows are grouped by the size of their free set and each group is solved with
    a batched Cholesky factorisation of the compacted system: the cost of a
    Cholesky solve grows steeply with its size.
    """
    free, target = free[rows], target[rows]
    weights = torch.zeros_like(target)
    residual = -target
    free_first = torch.argsort((~free).to(torch.int8), dim=1, stable=True)
    bucket = (free.sum(dim=1) + _SOLVE_BUCKET - 1) // _SOLVE_BUCKET
    for b in torch.unique(bucket).tolist():
        if b == 0:
            continue  # empty free set: w = 0
        group = (bucket == b).nonzero().squeeze(1)
        width = min(b * _SOLVE_BUCKET, target.shape[1])
        order = free_first[group, :width]
        mask = free[group].gather(1, order).to(gram.dtype)
        # Only the free rows of each Gram matrix are read (gram is symmetric).
        flat = (rows[group] * gram.shape[1])[:, None] + order
        free_rows = gram.view(-1, gram.shape[2]).index_select(0, flat.reshape(-1))
        free_rows = free_rows.view(*order.shape, -1)
        system = free_rows.gather(2, order[:, None, :].expand(-1, width, -1))
        system *= mask[:, :, None] * mask[:, None, :]
        system.diagonal(dim1=1, dim2=2).add_(1.0 - mask + ridge * mask)
        t = target[group]
        solution = _spd_solve(system, t.gather(1, order) * mask) * mask
        weights[group] = torch.zeros_like(t).scatter_(1, order, solution)
        residual[group] = torch.bmm(solution[:, None, :], free_rows).squeeze(1) - t
    return weights, residual


def _spd_solve(system, rhs):
    """Batched symmetric positive-definite solve; escalates the ridge where Cholesky fails."""
    factor, info = torch.linalg.cholesky_ex(system, upper=True)
    failed = (info > 0).nonzero().squeeze(1)
    eye = torch.eye(system.shape[1], dtype=system.dtype, device=system.device)
    extra = 1e-10
    # Numerically singular systems come from (near-)duplicate concepts.
    while failed.numel():
        if extra > 1.0:
            raise FloatingPointError("Cholesky failed on a non-finite working-set system.")
        factor[failed], info = torch.linalg.cholesky_ex(system[failed] + extra * eye, upper=True)
        failed = failed[info > 0]
        extra *= 100
    # Two triangular solves with U' U = system, the first from the right so that neither
    # needs a transposed copy of U: on CPU, torch.cholesky_solve took 3x as long.
    half = torch.linalg.solve_triangular(factor, rhs[:, None, :], upper=True, left=False)
    return torch.linalg.solve_triangular(factor, half.mT, upper=True).squeeze(2)


def _assemble(results, n, device):
    """Pack per-round results into padded (n, n_stored) index and value arrays of non-zeros."""
    width = max((int((w > 0).sum(dim=1).max()) for _, _, w in results if w.numel()), default=0)
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


# --------------------------------------------------------------------------- FISTA


def _fista(Z, C, l1, *, tol, max_iter, check_every=10):
    n, k = Z.shape[0], C.shape[0]
    device = Z.device
    # Lipschitz constant of the gradient: 2 * largest eigenvalue of C'C (d x d only).
    lipschitz = 2 * float(torch.linalg.eigvalsh(C.T @ C)[-1].clamp_min(1e-12))
    step = 1.0 / lipschitz
    l1_scalar = torch.tensor(l1, dtype=Z.dtype, device=device)
    out = torch.zeros(n, k, dtype=Z.dtype, device=device)
    n_iter = torch.zeros(n, dtype=torch.int64, device=device)
    converged = torch.zeros(n, dtype=torch.bool, device=device)

    rows = torch.arange(n, device=device)
    z = Z
    w = torch.zeros(n, k, dtype=Z.dtype, device=device)
    y = w.clone()
    momentum = torch.ones(n, 1, dtype=Z.dtype, device=device)
    for it in range(1, max_iter + 1):
        grad_y = torch.addmm(l1_scalar, y @ C - z, C.T, alpha=2.0)
        w_next = (y - step * grad_y).clamp_min(0)
        momentum_next = (1 + torch.sqrt(1 + 4 * momentum**2)) / 2
        # Adaptive restart (O'Donoghue & Candes): drop momentum when it points uphill.
        uphill = ((grad_y * (w_next - w)).sum(dim=1, keepdim=True) > 0).to(Z.dtype)
        beta = (momentum - 1) / momentum_next * (1 - uphill)
        y = w_next + beta * (w_next - w)
        momentum = torch.where(uphill > 0, torch.ones_like(momentum), momentum_next)
        w = w_next
        n_iter[rows] = it
        if it % check_every and it != max_iter:
            continue
        grad = torch.addmm(l1_scalar, w @ C - z, C.T, alpha=2.0)
        violation = torch.where(w > 0, grad.abs(), (-grad).clamp_min(0)).max(dim=1).values
        done = violation <= tol
        out[rows[done]] = w[done]
        converged[rows[done]] = True
        if bool(done.all()):
            break
        rows, z, w, y, momentum = (t[~done] for t in (rows, z, w, y, momentum))
    out[rows[~converged[rows]]] = w[~converged[rows]]
    return _dense_to_codes(out, n_iter, converged)


def _dense_to_codes(dense, n_iter, converged):
    width = max(int((dense > 0).sum(dim=1).max()), 1)
    values, indices = dense.topk(width, dim=1)
    return SparseCodes(indices, values, n_iter, converged)
