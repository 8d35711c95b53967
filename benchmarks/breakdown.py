"""Where ``active_set``'s time goes, in units of the floor, and why its rounds are needed.

For each l1, one batch is solved at one thread (CPU seconds, the best of ``--repeats``
runs) with the solver's stages timed by wrapping them:

- ``products``: the products with the whole dictionary (the first at w = 0, then one
  per round, shared by the rows that reach it together), with how many there were and
  how many full-batch products their rows add up to;
- ``gram``: the float64 working-set Gram blocks and correlations;
- ``solves``: the working-set non-negative least-squares solves, with the Cholesky
  factorisations (free sets) per row and round;
- ``working sets``: choosing each round's working sets (top-k of the gradient);
- ``other``: the rest (KKT checks, bookkeeping, assembling the result).

A second table asks whether the first product could have found the supports: the
fraction of the solution's support among each row's top-k concepts by correlation with
the signal (the gradient at w = 0), and the median rank of a row's lowest-ranked support
concept. Run from the repository root::

    python -m benchmarks.breakdown                  # MiniLM headline, l1 = 0.2 and 0.1
    python -m benchmarks.breakdown --l1 0.3 0.2 0.1 --repeats 5
"""

import argparse
import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from unittest import mock

import pandas as pd

import benchmarks._methods as methods
import skplice.decomposition._solvers._active_set as active_set_module
import skplice.decomposition._solvers._nnls as nnls_module
from benchmarks._data import KINDS, load_problem
from benchmarks._measure import threads
from benchmarks._report import save, to_text
from benchmarks.solvers import add_common_arguments
from skplice.decomposition._solvers import nonnegative_lasso

# The solver's stages: (module, function, stage name).
STAGES = (
    (active_set_module, "gradient", "products"),
    (active_set_module, "_working_set_gram", "gram"),
    (active_set_module, "solve_working_sets", "solves"),
    (active_set_module, "first_group", "working sets"),
    (active_set_module, "next_groups", "working sets"),
)
TOP_K = (32, 64, 128, 256, 512)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=KINDS, default="minilm")
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-concepts", type=int, default=10000)
    parser.add_argument("--d", type=int, default=384)
    parser.add_argument("--l1", nargs="+", type=float, default=[0.2, 0.1])
    parser.add_argument("--repeats", type=int, default=3, help="timed solves per l1")
    add_common_arguments(parser, batch_size=False)
    args = parser.parse_args(argv)
    if args.device != "cpu":
        parser.error("the breakdown times CPU seconds: run it with --device cpu")
    return args


@contextmanager
def timed_stages(seconds, counts):
    """Add each stage's CPU seconds to ``seconds`` while the solver runs (one thread)."""

    def timed(function, stage):
        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[stage] += time.process_time() - start
                if stage == "products":
                    counts["products"] += 1
                    counts["product rows"] += args[0].shape[0]

        return wrapper

    def counted_free_set_solves(function):
        def wrapper(gram, target, free, ridge, rows):
            counts["factorised rows"] += rows.numel()
            return function(gram, target, free, ridge, rows)

        return wrapper

    with ExitStack() as stack:
        for module, name, stage in STAGES:
            wrapped = timed(getattr(module, name), stage)
            stack.enter_context(mock.patch.object(module, name, wrapped))
        wrapped = counted_free_set_solves(nnls_module._solve_on_free_set)
        stack.enter_context(mock.patch.object(nnls_module, "_solve_on_free_set", wrapped))
        yield


def breakdown(Z, C, l1, tol, repeats, floor):
    """One line of the time table: the best of ``repeats`` timed solves, in ``floor``s."""
    best = None
    for _ in range(repeats):
        seconds, counts = Counter(), Counter()
        with timed_stages(seconds, counts):
            start = time.process_time()
            codes = nonnegative_lasso(Z, C, l1, tol=tol)
            total = time.process_time() - start
        if best is None or total < best[0]:
            best = (total, seconds, counts)
    total, seconds, counts = best
    n = Z.shape[0]
    rounds = codes.n_iter.double().mean().item()
    line = {"l1": l1, "floor (s)": floor, "total (s)": total, "x floor": total / floor}
    for stage in ("products", "gram", "solves", "working sets"):
        line[stage] = seconds[stage] / floor
    line["other"] = (total - sum(seconds.values())) / floor
    line["products (n)"] = counts["products"]
    line["product rows / batch"] = counts["product rows"] / n
    line["mean rounds"] = rounds
    line["factorisations / row / round"] = counts["factorised rows"] / (n * rounds)
    line["mean l0"] = (codes.values > 0).sum(dim=1).double().mean().item()
    return line, codes


def support_ranks(Z, C, codes, l1):
    """One line of the rank table: how much of each support the first product ranks high."""
    correlation = Z @ C.T
    rank = correlation.argsort(dim=1, descending=True).argsort(dim=1)
    in_support = codes.values > 0
    ranks = rank.gather(1, codes.indices).masked_fill(~in_support, -1)
    line = {"l1": l1}
    for k in TOP_K:
        line[f"in top {k}"] = ((ranks >= 0) & (ranks < k)).sum().item() / in_support.sum().item()
    lowest = ranks.max(dim=1).values.double()
    line["median lowest rank"] = lowest[in_support.any(dim=1)].median().item()
    return line


def main(argv=None):
    """Run the breakdown; return (time table, support-rank table)."""
    args = parse_args(argv)
    C_np, Z_np, _, _ = load_problem(
        args.kind, args.n_samples, args.n_concepts, args.d, args.seed, args.cache_dir
    )
    problem, opts = {"C": C_np, "Z": Z_np}, {"dtype": args.dtype, "device": "cpu"}
    C, Z = methods.tensors(problem, opts)
    times, ranks = [], []
    with threads(args.threads or 1):
        nonnegative_lasso(Z[:100], C, args.l1[0], tol=args.tol)  # warm-up
        for l1 in args.l1:
            # CPU seconds of one product (median of five), as the solvers benchmark's floor.
            floor = methods.floor(problem, l1, opts).cpu_seconds
            line, codes = breakdown(Z, C, l1, args.tol, args.repeats, floor)
            times.append(line)
            ranks.append(support_ranks(Z, C, codes, l1))
    times, ranks = pd.DataFrame(times), pd.DataFrame(ranks)
    heading = (
        f"## active_set time by stage, in floors (one {args.dtype} Z @ C.T): {args.kind}, "
        f"n_samples={args.n_samples}, n_concepts={args.n_concepts}, d={args.d}, "
        f"tol={args.tol:g}, {args.threads or 1} thread(s), CPU seconds, best of {args.repeats}"
    )
    rank_heading = "## Share of the support among the top-k concepts by correlation (w = 0)"
    print(f"\n{heading}\n\n{to_text(times)}\n\n{rank_heading}\n\n{to_text(ranks)}\n")
    name = f"breakdown-{args.kind}-n{args.n_samples}-k{args.n_concepts}-d{args.d}"
    save(times, name, heading, args.results_dir)
    save(ranks, f"{name}-ranks", rank_heading, args.results_dir)
    return times, ranks


if __name__ == "__main__":
    main()
