"""The optimality (KKT) conditions that both solvers stop on.

With the gradient ``g = l1 - 2 * C @ (z - C.T @ w)`` of the objective, ``w`` is optimal
when ``g_j = 0`` where ``w_j > 0`` and ``g_j >= 0`` where ``w_j = 0``. A row's violation
is the largest ``|g_j|`` over active concepts and ``max(0, -g_j)`` over inactive ones;
a row is done once it is at most ``tol``.
"""

import torch

from skplice.decomposition._solvers._threads import intra_op_threads


def gradient(residual, C, l1_scalar, buffer, threads=None):
    """``l1 - 2 * residual @ C.T``, written into the first rows of ``buffer``.

    One buffer serves every product of a solve: on CPU, allocating a fresh
    (n, n_concepts) block per product costs a fifth of the product in page faults
    (blocks that large go straight back to the operating system when freed). The
    product runs on ``threads`` OpenMP threads (None: as set).
    """
    with intra_op_threads(threads):
        return torch.addmm(l1_scalar, residual, C.T, alpha=-2.0, out=buffer[: residual.shape[0]])


def violation(weights, grad):
    """Largest violation per row, for weights and gradients over the same concepts."""
    return torch.where(weights > 0, grad.abs(), (-grad).clamp_min(0)).max(dim=1).values


def working_set_violation(grad, working, weights):
    """Largest violation per row over all concepts, for weights on a working set.

    ``grad`` (n, n_concepts) is overwritten on the working set, which is judged
    through ``weights`` (float64, one per working-set concept).
    """
    inside = violation(weights, grad.gather(1, working).double())
    grad.scatter_(1, working, torch.inf)
    outside = (-grad.min(dim=1).values).clamp_min(0).double()
    return torch.maximum(inside, outside)
