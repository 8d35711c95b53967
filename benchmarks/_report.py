"""Accuracy against the best solution found, table formatting and result files."""

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Weights at or below this count as zero when comparing supports (solvers that stop at a
# tolerance may leave dust of that order).
SUPPORT_EPS = 1e-6


def objective(W, C, Z, l1):
    """Per-sample ||C.T @ w - z||^2 + l1 * ||w||_1 in float64 (W is a sparse matrix)."""
    residual = np.asarray(W @ C) - Z[: W.shape[0]]
    return (residual**2).sum(axis=1) + l1 * np.asarray(W.sum(axis=1)).ravel()


def duplicate_groups(C):
    """Group index of each concept: concepts with identical embeddings share one.

    Such concepts make the solution non-unique (MiniLM encodes "e", "é" and "è" alike):
    any split of their weight is optimal, and solvers split it differently (skplice
    evenly, SPAMS onto one of them), so supports are compared over groups.
    """
    return np.unique(np.asarray(C), axis=0, return_inverse=True)[1].ravel()


def _supports(W, groups):
    """Per sample, the sorted groups of concepts whose weights sum above SUPPORT_EPS."""
    n_groups = int(groups.max()) + 1 if groups.size else 0
    merge = sp.csr_matrix(
        (np.ones(groups.size), (np.arange(groups.size), groups)), shape=(groups.size, n_groups)
    )
    W = (W.tocsr() @ merge).tocsr()
    W.data[W.data <= SUPPORT_EPS] = 0
    W.eliminate_zeros()
    W.sort_indices()
    return [W.indices[W.indptr[i] : W.indptr[i + 1]] for i in range(W.shape[0])]


def accuracy(solutions, C, Z, l1):
    """Compare each method with the best solution found for each sample.

    ``solutions`` maps a method name to its (n_run, n_concepts) sparse solutions of the
    first n_run samples. Returns a DataFrame indexed by method with the mean and max
    relative objective gap, the mean number of non-zeros and the fraction of samples whose
    support (weights > SUPPORT_EPS, concepts with identical embeddings counted as one;
    see ``duplicate_groups``) equals the best solution's.
    """
    columns = ["mean rel gap", "max rel gap", "mean l0", "same support"]
    if not solutions:
        return pd.DataFrame(columns=columns, dtype=float)
    objectives = {name: objective(W, C, Z, l1) for name, W in solutions.items()}
    groups = duplicate_groups(C)
    supports = {name: _supports(W, groups) for name, W in solutions.items()}
    n = max(len(f) for f in objectives.values())
    best = np.full(n, np.inf)
    best_support = [None] * n
    for name, f in objectives.items():
        better = np.flatnonzero(f < best[: len(f)])
        best[better] = f[better]
        for i in better:
            best_support[i] = supports[name][i]
    rows = {}
    for name, f in objectives.items():
        gap = (f - best[: len(f)]) / best[: len(f)]
        same = [np.array_equal(s, best_support[i]) for i, s in enumerate(supports[name])]
        rows[name] = {
            "mean rel gap": gap.mean(),
            "max rel gap": gap.max(),
            "mean l0": (solutions[name] > SUPPORT_EPS).sum(axis=1).mean(),
            "same support": np.mean(same),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


FORMATS = {
    "wall (s)": "{:.3g}",
    "first call (s)": "{:.3g}",
    "cpu (s)": "{:.3g}",
    "samples/s": "{:,.4g}",
    "mean rel gap": "{:.1e}",
    "max rel gap": "{:.1e}",
    "mean l0": "{:.1f}",
    "same support": "{:.3f}",
    "iters": "{:.4g}",
    "peak RSS (MB)": "{:,.0f}",
    "peak CUDA (MB)": "{:,.0f}",
    "peak / bound": "{:.2f}",
    "torch peak (MB)": "{:,.0f}",
    "largest op alloc (MB)": "{:,.1f}",
    "bound (MB)": "{:,.0f}",
    "embeddings/min": "{:,.4g}",
    "mean rounds": "{:.3g}",
    "mean rel gap vs cpu64": "{:.1e}",
    "max rel gap vs cpu64": "{:.1e}",
    "same support vs cpu64": "{:.3f}",
    "mean |rel diff| vs cold": "{:.1e}",
    "max |rel diff| vs cold": "{:.1e}",
    "speed-up": "{:.2f}",
    # benchmarks/breakdown.py: stages in floors
    "x floor": "{:.1f}",
    "products": "{:.2f}",
    "gram": "{:.2f}",
    "solves": "{:.2f}",
    "working sets": "{:.2f}",
    "other": "{:.2f}",
    "product rows / batch": "{:.2f}",
    "factorisations / row / round": "{:.2f}",
    "median lowest rank": "{:,.0f}",
}


def _formatters(table):
    """One formatter per column: FORMATS by name, else 4 significant digits for floats."""

    def wrap(fmt):
        return lambda x: "-" if pd.isna(x) or x == "" else fmt.format(x)

    return {
        col: wrap(FORMATS.get(col, "{:.4g}"))
        if col in FORMATS or pd.api.types.is_float_dtype(table[col])
        else str
        for col in table.columns
    }


def to_text(table):
    """The table as aligned plain text, numbers formatted per column."""
    return table.to_string(index=False, formatters=_formatters(table), na_rep="-")


def to_markdown(table):
    """The table as a GitHub-flavoured markdown table (no extra dependency)."""
    formatters = _formatters(table)
    cells = [[formatters[col](value) for col, value in row.items()] for _, row in table.iterrows()]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def save(table, name, title, results_dir=RESULTS_DIR):
    """Write ``<name>.csv`` and ``<name>.md`` (with ``title`` above the table)."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(results_dir / f"{name}.csv", index=False)
    (results_dir / f"{name}.md").write_text(f"{title}\n\n{to_markdown(table)}")
