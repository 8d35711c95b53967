"""Memory and work-size budgets of the active-set solver.

They bound what the solver holds and how it splits its work; they change its speed
and peak memory, not its solutions (beyond rounding in batched products). Tests pass
small budgets to exercise the splitting on small problems.
"""

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Budgets:
    """Budgets of one active-set solve (the defaults are tuned on CPU and GPU).

    Attributes
    ----------
    gram : int
        Float64 entries of the per-row working-set Gram matrices held at once: groups
        of rows with large working sets are solved in chunks, which bounds memory at
        any l1.
    large_working_set : int
        Working-set size beyond which ``large_gram`` applies instead of ``gram``.
    large_gram : int
        ``gram`` for working sets larger than ``large_working_set`` (small l1). A
        chunk's solve then holds several copies of its Gram block and the pending
        groups carry theirs, so the budget is smaller: that keeps the peak within
        4 x (n_concepts x d + batch x n_concepts) floats at l1=0.1 (about 10% slower
        there; working sets at l1 >= 0.2 stay small).
    product_gram : int
        Gram entries of the chunks that share one product with the dictionary (their
        blocks are held until it decides which rows go on). A product of a few dozen
        rows costs twice as much per row as one of a few hundred.
    gather_chunk : int
        Rows per chunk when gathering working-set dictionary rows on a CPU: keeps the
        gathered (chunk, size, n_features) block in cache, which halves the cost of
        the Gram matrices.
    device_gather_entries : int
        On a GPU, where each chunk costs a few kernel launches, chunks are as large as
        this many gathered float64 entries (128 MB by default) allow.
    min_rows_per_part : int
        Rows per part, at least, when a CPU call is split across the caller's threads.
    """

    gram: int = 2**22
    large_working_set: int = 96
    large_gram: int = 2**20
    product_gram: int = 2**21
    gather_chunk: int = 64
    device_gather_entries: int = 2**24
    min_rows_per_part: int = 64

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Budgets.{field.name} must be a positive int, got {value!r}.")

    def shared(self, parts):
        """The budgets of one of ``parts`` solves that run at once: their Gram shares.

        Memory then stays that of one call, however many threads split it.
        """
        return replace(
            self,
            gram=max(1, self.gram // parts),
            large_gram=max(1, self.large_gram // parts),
            product_gram=max(1, self.product_gram // parts),
        )


STANDARD_BUDGETS = Budgets()
