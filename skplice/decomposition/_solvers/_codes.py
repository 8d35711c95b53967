"""The solvers' result: row-wise sparse codes, and how they are split and joined."""

from dataclasses import dataclass

import torch


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


def empty_codes(dtype, device):
    """The codes of a batch without rows."""
    empty = torch.zeros(0, 0, dtype=dtype, device=device)
    none = torch.zeros(0, dtype=torch.int64, device=device)
    return SparseCodes(empty.long(), empty, none, none.bool())


def dense_to_codes(dense, n_iter, converged):
    """SparseCodes of a dense (n_samples, n_concepts) solution, as wide as its largest support."""
    width = max(int((dense > 0).sum(dim=1).max()), 1)
    values, indices = dense.topk(width, dim=1)
    return SparseCodes(indices, values, n_iter, converged)


def rows_of(codes, rows):
    """The given rows of ``codes``."""
    return SparseCodes(
        *(t[rows] for t in (codes.indices, codes.values, codes.n_iter, codes.converged))
    )


def concatenate(codes):
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
