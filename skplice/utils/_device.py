"""Resolve the ``device`` parameter of skplice estimators at call time."""

import torch


def resolve_device(device=None):
    """Turn a ``device`` parameter into a :class:`torch.device`.

    ``None`` means CUDA when it is available, else the CPU. The result is never
    stored on an estimator: estimators keep the plain value their user gave.

    Examples
    --------
    >>> from skplice.utils._device import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a device torch understands; "
            "use None (CUDA if available, else CPU), 'cpu', 'cuda' or 'cuda:N'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA, but torch sees no CUDA device on this "
            "machine; use device='cpu' or device=None (CUDA when available). An estimator "
            "fitted on a GPU machine keeps its fitted state in NumPy and runs here once "
            "its device is changed: estimator.set_params(device=None), or "
            "pipeline.set_params(<step>__device=None) for a step of a pipeline."
        )
    return resolved
