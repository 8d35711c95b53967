"""Scaling of skplice's active-set solver with n_samples and n_concepts.

Times ``nonnegative_lasso(solver="active_set")`` and the floor (one Z @ C.T product) for
every (n_samples, n_concepts) pair, each in a fresh process, with its memory (see
``_measure.py``) next to the bound 4 * (n_concepts * d + batch * n_concepts) floats. The
cost per sample per concept should stay flat if the solver is linear in both. Run from
the repository root::

    python -m benchmarks.scaling                      # MiniLM, up to all 37,445 LAION words
    python -m benchmarks.scaling --kind synthetic --d 512 --n-concepts 10000 15000 30000
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._data import KINDS, load_problem
from benchmarks._measure import run_isolated
from benchmarks._report import save, to_text
from benchmarks.solvers import add_common_arguments, check_device, memory_bound_mb, options


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=KINDS, default="minilm")
    parser.add_argument("--n-samples", nargs="+", type=int, default=[1000, 10000])
    parser.add_argument("--n-concepts", nargs="+", type=int, default=[10000, 15000, 37445])
    parser.add_argument("--d", type=int, default=384)
    parser.add_argument("--l1", type=float, default=0.2)
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    check_device(parser, args.device)
    return args


def main(argv=None):
    """Run the scaling benchmark; return its table."""
    args = parse_args(argv)
    opts = options(args)
    rows = []
    for n_concepts in args.n_concepts:
        for n_samples in args.n_samples:
            C, Z, D_raw, X_raw = load_problem(
                args.kind, n_samples, n_concepts, args.d, args.seed, args.cache_dir
            )
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "problem.npz"
                np.savez(path, C=C, Z=Z, D_raw=D_raw, X_raw=X_raw)
                solved, memory = run_isolated("active_set", path, args.l1, opts, n_samples, tmp)
                floor, _ = run_isolated("floor", path, args.l1, opts, n_samples, tmp)
            batch = min(args.batch_size, n_samples)
            rows.append(
                {
                    "n_samples": n_samples,
                    "n_concepts": n_concepts,
                    "wall (s)": solved.seconds,
                    "samples/s": n_samples / solved.seconds,
                    "us per sample per 1k concepts": 1e9
                    * solved.seconds
                    / (n_samples * n_concepts),
                    "x floor": solved.seconds / floor.seconds,
                    "mean rounds": solved.iters,
                    **memory,
                    "bound (MB)": memory_bound_mb(n_concepts, args.d, batch, args.dtype),
                }
            )
    table = pd.DataFrame(rows)
    heading = (
        f"## Scaling of active_set: {args.kind} dictionary, d={args.d}, l1={args.l1:g} "
        f"({args.dtype}, {args.device}, tol={args.tol:g})"
    )
    print(f"\n{heading}\n\n{to_text(table)}\n")
    name = f"scaling-{args.kind}-d{args.d}-l1_{args.l1:g}-{args.device}".replace(":", "")
    save(table, name, heading, args.results_dir)
    return table


if __name__ == "__main__":
    main()
