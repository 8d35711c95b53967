"""Accept torch tensors where skplice expects arrays of embeddings."""

import sys


def tensor_to_numpy(X):
    """A torch tensor as a NumPy array on the CPU; anything else is returned unchanged.

    float16 and bfloat16 tensors (e.g. embeddings from a half-precision model) are
    widened to float32, which NumPy can hold and skplice's solver runs in; other dtypes
    keep theirs. Gradients are detached.

    Examples
    --------
    >>> import torch
    >>> from skplice.utils._tensors import tensor_to_numpy
    >>> tensor_to_numpy(torch.ones(2, 3, dtype=torch.bfloat16)).dtype
    dtype('float32')
    >>> tensor_to_numpy([[1.0, 2.0]])
    [[1.0, 2.0]]
    """
    torch = sys.modules.get("torch")  # no tensor can exist unless torch was imported
    if torch is None or not isinstance(X, torch.Tensor):
        return X
    X = X.detach().cpu()
    if X.dtype in (torch.float16, torch.bfloat16):
        X = X.float()
    return X.numpy()
