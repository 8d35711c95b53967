"""Inner solvers: the non-negative least-squares problem of each row's working set.

Each row's problem is ``min_{w >= 0} w'Qw/2 - target'w`` with ``Q`` the (float64,
symmetric positive semi-definite) Gram matrix of its working set. Block principal
pivoting solves most rows in a few exchanges; Lawson-Hanson, slower but monotone,
takes the rows where pivoting cycles (on singular working sets). Both reduce to
Cholesky solves on free sets, batched over rows.
"""

import torch

# Block principal pivoting exchanges before a row falls back to the slower but
# monotone Lawson-Hanson method (pivoting can cycle on singular working sets).
_MAX_PIVOTING = 30
# Free-set sizes are rounded up to a multiple of this to batch Cholesky solves.
_SOLVE_BUCKET = 8


def solve_working_sets(gram, target, free, tol, ridge, max_free):
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
