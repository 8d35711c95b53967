"""Regularization path: solve a grid of l1 values cold, or warm-started along the path.

For each l1 of the grid, ``cold`` starts every sample from zero; ``warm, decreasing``
walks the grid from the largest l1 down and starts each solve from the solution at the
previous l1 (``init=``), ``warm, increasing`` walks it upwards. Accuracy is the relative
objective difference to the cold solutions (the same tolerance should give the same
accuracy). Run from the repository root::

    python -m benchmarks.path
    python -m benchmarks.path --kind synthetic --d 512 --n-concepts 15000
"""

import argparse

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from benchmarks._data import KINDS, load_problem
from benchmarks._measure import threads
from benchmarks._methods import Stopwatch, codes_to_csr
from benchmarks._report import objective, save, to_text
from benchmarks.solvers import add_common_arguments, check_device
from skplice.decomposition._solvers import nonnegative_lasso

STRATEGIES = ("cold", "warm, decreasing l1", "warm, increasing l1")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=KINDS, default="minilm")
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-concepts", type=int, default=10000)
    parser.add_argument("--d", type=int, default=384)
    parser.add_argument(
        "--l1",
        nargs="+",
        type=float,
        default=np.linspace(0.05, 0.5, 10).round(2).tolist(),
        help="the l1 grid (default: 0.05, 0.10, ..., 0.50)",
    )
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    check_device(parser, args.device)
    args.l1 = sorted(args.l1)
    return args


def solve_path(Z, C, grid, strategy, args):
    """Solve every l1 of ``grid``; return {l1: (seconds, codes per batch)}."""
    order = grid[::-1] if strategy == "warm, decreasing l1" else grid
    step = args.batch_size
    previous = [None] * len(range(0, Z.shape[0], step))
    out = {}
    for l1 in tqdm(order, desc=strategy, leave=False):
        with Stopwatch(args.device) as clock:
            codes = [
                nonnegative_lasso(
                    Z[start : start + step],
                    C,
                    l1,
                    tol=args.tol,
                    init=None if strategy == "cold" else previous[i],
                )
                for i, start in enumerate(range(0, Z.shape[0], step))
            ]
        out[l1] = (clock.seconds, codes)
        previous = codes
    return out


def main(argv=None):
    """Run the path benchmark; return (summary table, per-l1 time table)."""
    args = parse_args(argv)
    C_np, Z_np, _, _ = load_problem(
        args.kind, args.n_samples, args.n_concepts, args.d, args.seed, args.cache_dir
    )
    dtype = getattr(torch, args.dtype)
    C = torch.tensor(C_np, dtype=dtype, device=args.device)
    Z = torch.tensor(Z_np, dtype=dtype, device=args.device)
    with threads(args.threads):
        nonnegative_lasso(Z[:2], C[:64], args.l1[0])  # warm-up
        paths = {strategy: solve_path(Z, C, args.l1, strategy, args) for strategy in STRATEGIES}

    cold = {
        l1: objective(codes_to_csr(codes, C.shape[0]), C_np, Z_np, l1)
        for l1, (_, codes) in paths["cold"].items()
    }
    summary, per_l1 = [], {}
    for strategy, path in paths.items():
        diffs, rounds = [], []
        for l1, (_, codes) in path.items():
            f = objective(codes_to_csr(codes, C.shape[0]), C_np, Z_np, l1)
            diffs.append(np.abs(f - cold[l1]) / cold[l1])
            rounds.append(torch.cat([c.n_iter for c in codes]).double().mean().item())
        diffs = np.concatenate(diffs)
        seconds = sum(s for s, _ in path.values())
        summary.append(
            {
                "strategy": strategy,
                "wall (s)": seconds,
                "samples/s": len(args.l1) * args.n_samples / seconds,
                "speed-up": sum(s for s, _ in paths["cold"].values()) / seconds,
                "mean rounds": np.mean(rounds),
                "mean |rel diff| vs cold": diffs.mean(),
                "max |rel diff| vs cold": diffs.max(),
            }
        )
        per_l1[strategy] = {l1: s for l1, (s, _) in path.items()}
    summary = pd.DataFrame(summary)
    per_l1 = pd.DataFrame(per_l1).rename_axis("l1").reset_index().sort_values("l1")

    heading = (
        f"## Regularization path: {args.kind} dictionary, n_samples={args.n_samples}, "
        f"n_concepts={args.n_concepts}, d={args.d}, {len(args.l1)} l1 values "
        f"{args.l1[0]:g}..{args.l1[-1]:g} ({args.dtype}, {args.device}, tol={args.tol:g})"
    )
    print(f"\n{heading}\n\n{to_text(summary)}\n\nSeconds per l1:\n\n{to_text(per_l1)}\n")
    name = f"path-{args.kind}-n{args.n_samples}-k{args.n_concepts}-d{args.d}-{args.device}"
    save(summary, name.replace(":", ""), heading, args.results_dir)
    save(per_l1, f"{name.replace(':', '')}-per-l1", heading + ": seconds per l1", args.results_dir)
    return summary, per_l1


if __name__ == "__main__":
    main()
