"""Retry device work with smaller batches when the accelerator runs out of memory.

A GPU shared with other processes, a large dictionary or a large model can make a batch
that usually fits fail with :class:`torch.OutOfMemoryError`. The helpers here catch that
error, release the cached device memory, halve the batch and try again, down to one item;
only an item that does not fit on its own is an error. The batch size stays reduced for the
rest of the call (memory pressure rarely goes away by itself), and a
:class:`~skplice.exceptions.BatchSizeReducedWarning` says which ``batch_size`` would
have avoided the retries.

Nothing here is specific to an estimator: callers pass a function of a slice of their
inputs. The retried function must have no side effects that a failed attempt could leave
half done.
"""

import gc
import warnings

import torch

from skplice.exceptions import BatchSizeReducedWarning

#: The error torch raises when a device allocation fails (``torch.OutOfMemoryError``
#: since torch 2.5, ``torch.cuda.OutOfMemoryError`` before; the same class).
OutOfMemoryError = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def _release_device_memory():
    """Return the memory of the failed attempt to the device before retrying."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _give_up(what, device, first_size, exc):
    return OutOfMemoryError(
        f"{what}: out of memory on {device} even with one item per batch (batch_size "
        f"was reduced from {first_size} to 1). A single item does not fit in the "
        "free device memory: free memory held by other processes or models, use a "
        "smaller model or dictionary, or run on the CPU (device='cpu'). The device "
        f"said: {exc}"
    )


def _warn_reduced(what, device, failed, size, stacklevel):
    warnings.warn(
        BatchSizeReducedWarning(
            f"{what}: out of memory on {device} with {failed} items per batch; "
            f"retrying with {size}. Set batch_size={size} or lower to avoid the retries."
        ),
        stacklevel=stacklevel,
    )


class ShrinkingBatches:
    """Cover ``range(n)`` with consecutive slices, halving them after an out-of-memory error.

    One instance serves one call of an estimator method (it is never stored on an
    estimator): once a slice length failed, later slices use the reduced length too.

    Parameters
    ----------
    batch_size : int
        Length of the first slice tried.
    what : str
        What is being computed, for messages (e.g. ``"SpLiCETransformer.transform"``).
    device : object
        The device, for messages.

    Examples
    --------
    >>> import warnings
    >>> from skplice.utils._oom import OutOfMemoryError, ShrinkingBatches
    >>> def square(start, stop):  # pretend more than 2 items at once do not fit
    ...     if stop - start > 2:
    ...         raise OutOfMemoryError("CUDA out of memory")
    ...     return [i * i for i in range(start, stop)]
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     list(ShrinkingBatches(8, what="demo", device="cuda").run(square, 5))
    [(0, 2, [0, 1]), (2, 4, [4, 9]), (4, 5, [16])]
    """

    def __init__(self, batch_size, *, what, device):
        self.size = int(batch_size)
        self.first_size = self.size
        self.what = what
        self.device = device

    def run(self, fn, n):
        """Yield ``(start, stop, fn(start, stop))`` over consecutive slices covering ``range(n)``.

        ``fn`` is called again on a shorter slice (half the failed length) after it
        raises :class:`torch.OutOfMemoryError`; any other error propagates unchanged.
        """
        start = 0
        while start < n:
            stop = min(start + self.size, n)
            try:
                result = fn(start, stop)
            except OutOfMemoryError as exc:
                failed = stop - start
                if failed == 1:
                    raise _give_up(self.what, self.device, self.first_size, exc) from exc
            else:
                yield start, stop, result
                start = stop
                continue
            # Outside the except block, so the failed attempt's frames (and tensors) are freed.
            self.size = max(1, failed // 2)
            _release_device_memory()
            _warn_reduced(self.what, self.device, failed, self.size, stacklevel=4)


def call_with_shrinking_batch(fn, batch_size, *, what, device):
    """Return ``fn(size)`` for the largest ``size`` (``batch_size`` halved as needed) that fits.

    For work that batches internally (e.g. sentence-transformers' ``encode``): the
    whole call is repeated with half the batch size after an out-of-memory error.

    Examples
    --------
    >>> import warnings
    >>> from skplice.utils._oom import OutOfMemoryError, call_with_shrinking_batch
    >>> def encode(batch_size):
    ...     if batch_size > 16:
    ...         raise OutOfMemoryError("CUDA out of memory")
    ...     return batch_size
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     call_with_shrinking_batch(encode, 64, what="demo", device="cuda")
    16
    """
    size = int(batch_size)
    while True:
        try:
            return fn(size)
        except OutOfMemoryError as exc:
            if size == 1:
                raise _give_up(what, device, batch_size, exc) from exc
        failed, size = size, max(1, size // 2)
        _release_device_memory()
        _warn_reduced(what, device, failed, size, stacklevel=3)
