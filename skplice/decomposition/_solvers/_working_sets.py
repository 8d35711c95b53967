"""Working sets of the active-set solver: the records of a group of rows, and how they form.

Rows are processed in groups sharing a working-set size, so that the few rows with
large supports do not make every row pay for large systems. A row's working set is
its current support and the concepts that violate the optimality conditions most;
it grows a size step per round until the solve on it is optimal for the whole
dictionary.
"""

from typing import NamedTuple

import torch

from skplice.decomposition._solvers._kkt import gradient

# Working-set size of the first, approximate round of a cold start.
FIRST_WORKING_SET = 32
# Working-set sizes are multiples of this, so that rows share groups.
SIZE_STEP = 32


class WorkingSetGroup(NamedTuple):
    """Rows that solve their next round on working sets of one size.

    The first ``known_gram.shape[1]`` concepts of each working set are those of the
    row's previous round, whose Gram block is carried over rather than recomputed.
    """

    rows: torch.Tensor  # (m,) int64: the rows' positions in the batch
    working_set: torch.Tensor  # (m, size) int64: concepts of each row's working set
    starts_free: torch.Tensor  # (m, size) bool: concepts that start in the free set
    known_gram: torch.Tensor  # (m, known, known) float64: Gram block carried over
    known_corr: torch.Tensor  # (m, known) float64: their correlations with the signal

    @property
    def gram_entries(self):
        """Float64 entries of the group's working-set Gram matrices."""
        return self.working_set.numel() * self.working_set.shape[1]

    def split(self, rows_per_chunk):
        """The group as consecutive chunks of at most ``rows_per_chunk`` rows (views)."""
        parts = (t.split(rows_per_chunk) for t in self)
        return [WorkingSetGroup(*chunk) for chunk in zip(*parts, strict=True)]


class SolvedGroup(NamedTuple):
    """A group after its working-set solve, with what its next round can reuse."""

    rows: torch.Tensor  # (m,) int64: the rows' positions in the batch
    working_set: torch.Tensor  # (m, size) int64
    gram: torch.Tensor  # (m, size, size) float64: the working set's Gram matrices
    corr: torch.Tensor  # (m, size) float64: correlations with the signal
    weights: torch.Tensor  # (m, size) float64: the solution on the working set
    free: torch.Tensor  # (m, size) bool: its final free set
    pivoting_done: torch.Tensor  # (m,) bool: the inner solve reached a feasible point


def first_group(rows, grad, size, tol):
    """The group of a cold start's first round: each row's ``size`` most violating concepts."""
    working, free = _next_working_set(grad, None, None, size, tol)
    return WorkingSetGroup(rows, working, free, *_nothing_known(rows, working))


def warm_start(Z, C, l1_scalar, indices, values, buffer, tol, limit, threads=None):
    """Rows already optimal at a previous solution, and first working sets for the rest.

    One product gives the gradient at the previous solution (``indices``, ``values``,
    e.g. from a neighbouring ``l1``). A row that meets the optimality conditions there
    is done. For the others, the previous support stays in the working set and starts
    free, joined by the concepts that violate the conditions at the previous solution:
    at most half as many as the support (or one size step), since far along a path many
    concepts violate slightly and a solve costs the cube of the working-set size.
    """
    start = torch.nn.functional.embedding_bag(indices, C, per_sample_weights=values, mode="sum")
    grad = gradient(Z - start, C, l1_scalar, buffer, threads)
    previous = values > 0
    inside = torch.where(previous, grad.gather(1, indices).abs(), 0).max(dim=1).values
    kept = torch.zeros_like(grad, dtype=torch.bool).scatter_(1, indices, previous)
    n_kept = kept.sum(dim=1)
    room = torch.clamp(n_kept // 2, min=SIZE_STEP)
    # Kept concepts sort first, then the others by gradient: one top-k of all rows
    # serves every row (selecting rows of the full gradient would copy it).
    grad.masked_fill_(kept, -torch.inf)
    largest = _rounded_sizes(n_kept + room, limit).max()
    width = int(torch.clamp(torch.maximum(largest, n_kept.max() + 1), max=C.shape[0]))
    smallest, concepts = grad.topk(width, dim=1, largest=False)
    # The smallest gradient outside the support comes right after the kept concepts
    # (working_set_violation would cost another pass over grad, and would hide concept
    # 0, which the padding entries of ``indices`` name, from the top-k).
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
        groups.append(WorkingSetGroup(members, working, free, *_nothing_known(members, working)))
    return optimal, groups


def next_groups(solved, grad, finished, limit, tol):
    """The groups of the next round for the rows of ``solved`` that are not ``finished``.

    ``grad`` is the gradient of the solved rows over the whole dictionary, with their
    working sets already judged (see ``working_set_violation``). A row keeps its
    support (a row whose pivoting hit its bound keeps its whole working set).
    """
    left = (~finished).nonzero().squeeze(1)
    rows, working, weights, free = (
        t[left] for t in (solved.rows, solved.working_set, solved.weights, solved.free)
    )
    keep = free | (weights > 0) | ~solved.pivoting_done[left][:, None]
    size = working.shape[1]
    needed = _working_set_sizes(keep.sum(dim=1), size, limit)
    groups = []
    if size + SIZE_STEP <= limit:
        # Grow: the working set keeps all its concepts (and their Gram block, computed
        # once) and gains the most violating others.
        needed = torch.clamp(needed, min=size + SIZE_STEP)
        newcomer_values, newcomer_indices = _most_violating(
            grad, ~finished, int(needed.max()) - size
        )
        for new_size in torch.unique(needed).tolist():
            members = needed == new_size
            slots = slice(0, new_size - size)
            groups.append(
                WorkingSetGroup(
                    rows[members],
                    torch.cat([working[members], newcomer_indices[members, slots]], 1),
                    torch.cat(
                        [free[members] & keep[members], newcomer_values[members, slots] < -tol],
                        1,
                    ),
                    # The Gram block is copied once, straight from the solved group.
                    _take(solved.gram, left[members]),
                    _take(solved.corr, left[members]),
                )
            )
        return groups
    grad = grad[left]
    # At the size limit: rebuild from the kept concepts and the most violating.
    kept = torch.zeros_like(grad, dtype=torch.bool).scatter_(1, working, keep)
    kept_free = torch.zeros_like(grad, dtype=torch.bool)
    kept_free.scatter_(1, working, free & keep)
    for new_size in torch.unique(needed).tolist():
        members = needed == new_size
        new_working, new_free = _next_working_set(
            grad[members], kept[members], kept_free[members], new_size, tol
        )
        groups.append(
            WorkingSetGroup(
                rows[members], new_working, new_free, *_nothing_known(rows[members], new_working)
            )
        )
    return groups


def _rounded_sizes(counts, limit):
    """Working-set sizes: ``counts`` rounded up to a multiple of SIZE_STEP, within limit."""
    sizes = (counts + SIZE_STEP - 1) // SIZE_STEP * SIZE_STEP
    return torch.clamp(sizes, min=min(SIZE_STEP, limit), max=limit)


def _working_set_sizes(n_kept, size, limit):
    """Per-row working-set size: a multiple of SIZE_STEP at least 1.5 x the kept concepts.

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


def _most_violating(grad, rows, count):
    """The ``count`` smallest gradient entries (values and concepts) of the selected rows.

    Selecting rows copies a (rows, n_concepts) array, which costs about as much as
    the selection itself: with most rows selected, select among the top entries.
    """
    if 2 * int(rows.sum()) > rows.numel():
        values, indices = grad.topk(count, dim=1, largest=False)
        return values[rows], indices[rows]
    return grad[rows].topk(count, dim=1, largest=False)


def _take(tensor, index):
    """``tensor[index]`` for sorted row indices, without a copy when they are all rows."""
    if index.numel() == tensor.shape[0]:
        return tensor
    return tensor.index_select(0, index)


def _nothing_known(rows, working):
    """Empty known Gram block and correlations, for working sets built from scratch."""
    empty = torch.empty(rows.shape[0], 0, 0, dtype=torch.float64, device=working.device)
    return empty, empty.new_empty(rows.shape[0], 0)
