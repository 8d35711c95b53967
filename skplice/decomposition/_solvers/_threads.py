"""CPU threading: one OpenMP thread per operation, the caller's threads over parts of a batch.

On the CPU, no operation of the solver runs on more than one OpenMP thread: the
threads of an operation wait for each other at its end, spinning, and with hundreds
of small operations per call and a core held by another process, that waiting
multiplied the CPU time by 4.7 and the wall time by 3.5 at two threads. The caller's
threads solve independent parts of the batch instead (rows do not depend on each
other).
"""

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch

from skplice.decomposition._solvers._codes import concatenate, rows_of


@contextmanager
def intra_op_threads(n):
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


def in_parts(solve, Z, init, parts):
    """Solve contiguous parts of the rows of ``Z`` on ``parts`` threads, one OpenMP thread each.

    ``solve(rows_of_Z, rows_of_init)`` returns the SparseCodes of those rows (``init``
    may be None); the parts' codes are joined in row order. A part's results are
    those of the same rows in any other batch.
    """

    def solve_rows(rows):
        # A new thread starts with the process's default thread count, not the caller's.
        torch.set_num_threads(1)
        return solve(Z[rows], None if init is None else rows_of(init, rows))

    bounds = torch.arange(Z.shape[0], device=Z.device).tensor_split(parts)
    with ThreadPoolExecutor(parts, thread_name_prefix="skplice-solver") as pool:
        codes = list(pool.map(solve_rows, bounds))
    return concatenate(codes)
