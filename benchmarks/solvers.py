"""Compare non-negative lasso solvers on SpLiCE problems; one table per setting.

Run from the repository root, e.g.::

    python -m benchmarks.solvers                      # one MiniLM setting, all methods
    python -m benchmarks.solvers --full               # the whole grid (hours on 2 cores)
    python -m benchmarks.solvers --kind synthetic --d 512 --n-concepts 15000 --l1 0.1 0.3

Tables are printed and written to benchmarks/results/ (CSV and markdown).
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from benchmarks._data import CACHE_DIR, KINDS, load_problem
from benchmarks._measure import MB, measure, run_isolated
from benchmarks._methods import DEFAULT_SUBSET, LABELS, METHODS, missing
from benchmarks._report import RESULTS_DIR, accuracy, save, to_text

FULL_GRID = {
    "kind": list(KINDS),
    "n_samples": [1000, 10000],
    "n_concepts": [10000, 15000],
    "d": [384, 512],
    "l1": [0.1, 0.2, 0.3],
}


def add_common_arguments(parser, batch_size=True):
    """Options shared by the benchmark scripts."""
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--tol", type=float, default=1e-6, help="skplice KKT tolerance")
    if batch_size:
        parser.add_argument("--batch-size", type=int, default=1024, help="rows per solver call")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch/BLAS threads per method (default: torch's choice); on a shared "
        "machine --threads 1 gives stable per-core numbers",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)


def add_warm_runs_argument(parser):
    """``--warm-runs``: how every method is timed after its first call."""
    parser.add_argument(
        "--warm-runs",
        type=int,
        default=3,
        help="timed runs after the first call, whose median is reported (1 for methods "
        "whose first call took over 10 s)",
    )


def check_device(parser, device):
    """Refuse a CUDA device torch cannot see, with a clear message."""
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        parser.error(
            f"--device {device}: torch {torch.__version__} sees no CUDA device on this "
            "machine (torch.cuda.is_available() is False). Run on a machine with a GPU "
            "and a CUDA build of torch, or use --device cpu."
        )


def options(args):
    """The method options (a JSON-able dict) from parsed arguments."""
    return {
        "device": args.device,
        "dtype": args.dtype,
        "tol": args.tol,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "threads": args.threads,
        "warm_runs": getattr(args, "warm_runs", 3),
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", nargs="+", choices=KINDS, default=["minilm"])
    parser.add_argument("--n-samples", nargs="+", type=int, default=[1000])
    parser.add_argument("--n-concepts", nargs="+", type=int, default=[10000])
    parser.add_argument("--d", nargs="+", type=int, default=[384])
    parser.add_argument("--l1", nargs="+", type=float, default=[0.2])
    parser.add_argument("--full", action="store_true", help="the whole grid (overrides above)")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument(
        "--subset",
        nargs="+",
        default=[],
        metavar="METHOD=N",
        help="run METHOD on the first N samples only (0: all); defaults: "
        + ", ".join(f"{m}={n}" for m, n in DEFAULT_SUBSET.items()),
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run methods in this process (faster; no memory measurement)",
    )
    add_common_arguments(parser)
    add_warm_runs_argument(parser)
    args = parser.parse_args(argv)
    check_device(parser, args.device)
    subset = dict(DEFAULT_SUBSET)
    for item in args.subset:
        method, _, n = item.partition("=")
        if method not in METHODS or not n.isdigit():
            parser.error(f"--subset {item!r}: expected METHOD=N with METHOD in {list(METHODS)}")
        subset[method] = int(n) or None
    args.subset = subset
    if args.full:
        for name, values in FULL_GRID.items():
            setattr(args, name, values)
    return args


def settings(args):
    """The (kind, n_samples, n_concepts, d, l1) grid; MiniLM exists only with d=384."""
    for kind in args.kind:
        for d in args.d:
            if kind == "minilm" and d != 384:
                continue
            for n_concepts in args.n_concepts:
                for n_samples in args.n_samples:
                    for l1 in args.l1:
                        yield kind, n_samples, n_concepts, d, l1


def memory_bound_mb(n_concepts, d, batch, dtype):
    """The issue's bound for skplice: 4 * (n_concepts * d + batch * n_concepts) floats."""
    return 4 * (n_concepts * d + batch * n_concepts) * np.dtype(dtype).itemsize / MB


def run_setting(kind, n_samples, n_concepts, d, l1, args):
    """Run every method on one setting; return the table."""
    C, Z, D_raw, X_raw = load_problem(kind, n_samples, n_concepts, d, args.seed, args.cache_dir)
    opts = options(args)
    rows, solutions = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        problem_path = Path(tmp) / "problem.npz"
        np.savez(problem_path, C=C, Z=Z, D_raw=D_raw, X_raw=X_raw)
        problem = {"C": C, "Z": Z, "D_raw": D_raw, "X_raw": X_raw}
        for method in tqdm(args.methods, desc=f"{kind} n={n_samples} k={n_concepts}", leave=False):
            n_run = min(n_samples, args.subset.get(method) or n_samples)
            if skipped := missing(method):
                rows.append((method, {"method": LABELS[method], "samples": 0, "note": skipped}))
                continue
            if args.in_process:
                result, memory = measure(method, problem, l1, opts, n_run, memory=False)
            else:
                result, memory = run_isolated(method, problem_path, l1, opts, n_run, tmp)
            if result.W is not None:
                solutions[method] = result.W
            row = {
                "method": LABELS[method],
                "samples": n_run,
                "wall (s)": result.seconds,
                "samples/s": n_run / result.seconds,
                "first call (s)": result.first_seconds,
                "cpu (s)": result.cpu_seconds,
                "iters": result.iters,
                **memory,
            }
            if "torch peak (MB)" in memory:
                batch = min(args.batch_size, n_run)
                bound = memory_bound_mb(n_concepts, d, batch, args.dtype)
                row["peak / bound"] = memory["torch peak (MB)"] / bound
            row["note"] = result.note
            rows.append((method, row))
    table = pd.DataFrame([row for _, row in rows], index=[method for method, _ in rows])
    table = table.join(accuracy(solutions, C, Z, l1))
    columns = ["method", "samples", "wall (s)", "samples/s", "first call (s)", "cpu (s)"]
    columns += ["mean rel gap", "max rel gap", "mean l0", "same support", "iters"]
    columns += [c for c in table.columns if c not in [*columns, "note"]] + ["note"]
    return table[columns]


def title(kind, n_samples, n_concepts, d, l1, args):
    batch = min(args.batch_size, n_samples)
    bound = memory_bound_mb(n_concepts, d, batch, args.dtype)
    square = n_concepts**2 * np.dtype(args.dtype).itemsize / MB
    return (
        f"## {kind} dictionary: n_samples={n_samples}, n_concepts={n_concepts}, d={d}, "
        f"l1={l1} ({args.dtype}, {args.device}, threads: {args.threads or 'default'})\n\n"
        f"skplice memory bound 4*(n_concepts*d + batch*n_concepts) floats = {bound:,.0f} MB "
        f"(batch={batch}; 'peak / bound' divides skplice's torch peak by it); one "
        f"n_concepts x n_concepts matrix = {square:,.0f} MB. "
        "Gaps and supports are against the best solution found for each sample."
    )


def main(argv=None):
    """Run the benchmark; return all tables concatenated, with the setting as columns."""
    args = parse_args(argv)
    tables = []
    for kind, n_samples, n_concepts, d, l1 in settings(args):
        table = run_setting(kind, n_samples, n_concepts, d, l1, args)
        heading = title(kind, n_samples, n_concepts, d, l1, args)
        print(f"\n{heading}\n\n{to_text(table)}\n", flush=True)
        name = f"solvers-{kind}-n{n_samples}-k{n_concepts}-d{d}-l1_{l1:g}-{args.device}"
        save(table, name.replace(":", ""), heading, args.results_dir)
        setting = {"kind": kind, "n_samples": n_samples, "n_concepts": n_concepts}
        tables.append(table.assign(**setting, d=d, l1=l1))
    if not tables:
        raise SystemExit("No setting to run: kind 'minilm' exists only with --d 384.")
    return pd.concat(tables, ignore_index=True)


if __name__ == "__main__":
    main()
