"""FISTA: accelerated projected gradient with adaptive restart.

Two products with the whole dictionary per iteration: simple and robust, kept as a
cross-check of the active-set solver and as a baseline.
"""

import torch

from skplice.decomposition._solvers._codes import dense_to_codes
from skplice.decomposition._solvers._kkt import violation


def fista(Z, C, l1, *, tol, max_iter, check_every=10):
    """Solve every row with FISTA on dense (n, n_concepts) weights.

    Rows are checked every ``check_every`` iterations (a check costs a product with
    the dictionary); converged rows leave the computation.
    """
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
        done = violation(w, grad) <= tol
        out[rows[done]] = w[done]
        converged[rows[done]] = True
        if bool(done.all()):
            break
        rows, z, w, y, momentum = (t[~done] for t in (rows, z, w, y, momentum))
    out[rows[~converged[rows]]] = w[~converged[rows]]
    return dense_to_codes(out, n_iter, converged)
