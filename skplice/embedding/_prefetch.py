"""Run a per-item function in background threads, batch by batch, one batch ahead.

Image decoding (PIL releases the GIL) then overlaps with the model's forward pass on the
calling thread, and at most two batches of decoded items are held in memory.
"""

from collections import deque
from concurrent.futures import ThreadPoolExecutor


def _call(fn, index):
    try:
        return index, fn(index), None
    except Exception as exc:
        return index, None, exc


def prefetched_batches(fn, n_items, batch_size, n_threads):
    """Yield, per batch of consecutive indices, a list of ``(index, result, error)``.

    ``fn(index)`` runs in a pool of ``n_threads`` threads; exactly one of ``result`` and
    ``error`` is None. Batches always hold the same indices whatever the thread count.

    Examples
    --------
    >>> from skplice.embedding._prefetch import prefetched_batches
    >>> [[r for _, r, _ in b] for b in prefetched_batches(lambda i: i * i, 5, 2, 2)]
    [[0, 1], [4, 9], [16]]
    """
    executor = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="skplice-decode")
    pending = deque()
    submitted = 0
    try:
        for start in range(0, n_items, batch_size):
            stop = min(start + batch_size, n_items)
            # keep the next batch in flight while the caller works on this one
            while submitted < min(n_items, stop + batch_size):
                pending.append(executor.submit(_call, fn, submitted))
                submitted += 1
            yield [pending.popleft().result() for _ in range(stop - start)]
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
