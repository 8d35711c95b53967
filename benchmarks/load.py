"""Time under load: each method at 1 and 2 threads, on a quiet machine and beside busy loops.

A machine shared with other work (a laptop, a busy server) gives a solver fewer cores
than it asks for. This script times the same solve with ``--threads`` 1 and 2, first
alone, then with ``--busy`` processes spinning ``while True: pass`` beside it, each
method in a fresh process (``benchmarks._measure.run_isolated``, timed like
``benchmarks.solvers``: the median of warm runs after a first call). Run from the
repository root::

    python -m benchmarks.load                       # MiniLM headline, skplice vs SPAMS
    python -m benchmarks.load --l1 0.1 --methods transformer spams_cholesky

The table gives, per method and setting, the wall and CPU time, the wall time over
the same method's at one thread on the quiet machine (``x 1 thread``; the issue's
target for skplice: at most 1.2 with 2 threads under load), and skplice's speed-up
over SPAMS float64 (``cholesky=True``) in the same setting.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._data import load_problem
from benchmarks._measure import run_isolated
from benchmarks._methods import LABELS, METHODS, missing
from benchmarks._report import save, to_text
from benchmarks.solvers import (
    add_common_arguments,
    add_warm_runs_argument,
    check_device,
    options,
)

DEFAULT_METHODS = ["floor", "transformer", "active_set", "spams_cholesky", "spams"]
REFERENCE = "spams_cholesky"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="minilm", choices=["minilm", "synthetic"])
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-concepts", type=int, default=10000)
    parser.add_argument("--d", type=int, default=384)
    parser.add_argument("--l1", type=float, default=0.2)
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=DEFAULT_METHODS)
    parser.add_argument(
        "--thread-counts", nargs="+", type=int, default=[1, 2], help="--threads of each run"
    )
    parser.add_argument(
        "--busy", nargs="+", type=int, default=[0, 1], help="busy-loop processes beside it"
    )
    add_common_arguments(parser)
    add_warm_runs_argument(parser)
    args = parser.parse_args(argv)
    check_device(parser, args.device)
    return args


class BusyLoops:
    """``n`` processes spinning on a core each, for as long as the block runs."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        command = [sys.executable, "-c", "while True: pass"]
        self.processes = [subprocess.Popen(command) for _ in range(self.n)]
        return self

    def __exit__(self, *exc):
        for process in self.processes:
            process.kill()
            process.wait()


def main(argv=None):
    """Run every (busy, threads, method) setting; return the table."""
    args = parse_args(argv)
    C, Z, D_raw, X_raw = load_problem(
        args.kind, args.n_samples, args.n_concepts, args.d, args.seed, args.cache_dir
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        problem = Path(tmp) / "problem.npz"
        np.savez(problem, C=C, Z=Z, D_raw=D_raw, X_raw=X_raw)
        for busy in args.busy:
            with BusyLoops(busy):
                for threads in args.thread_counts:
                    opts = options(args) | {"threads": threads}
                    for method in args.methods:
                        if note := missing(method):
                            print(f"{method}: {note}", file=sys.stderr)
                            continue
                        result, _ = run_isolated(method, problem, args.l1, opts, len(Z), tmp)
                        rows.append(
                            {
                                "method": LABELS[method],
                                "key": method,
                                "threads": threads,
                                "busy loops": busy,
                                "wall (s)": result.seconds,
                                "first call (s)": result.first_seconds,
                                "cpu (s)": result.cpu_seconds,
                            }
                        )
    table = pd.DataFrame(rows)
    quiet_one = table[(table["threads"] == 1) & (table["busy loops"] == 0)]
    base = quiet_one.set_index("key")["wall (s)"]
    table["x 1 thread"] = table["wall (s)"] / table["key"].map(base)
    reference = table[table["key"] == REFERENCE].set_index(["threads", "busy loops"])["wall (s)"]
    setting = list(zip(table["threads"], table["busy loops"], strict=True))
    table[f"speed-up vs {REFERENCE}"] = [
        reference.get(s, np.nan) / wall for s, wall in zip(setting, table["wall (s)"], strict=True)
    ]
    table = table.drop(columns="key")
    heading = (
        f"## Under load: {args.kind} dictionary, n_samples={args.n_samples}, "
        f"n_concepts={args.n_concepts}, d={args.d}, l1={args.l1:g} ({args.dtype}, "
        f"{args.device}); busy loops: processes running `while True: pass` beside each run"
    )
    print(f"\n{heading}\n\n{to_text(table)}\n", flush=True)
    name = f"load-{args.kind}-n{args.n_samples}-k{args.n_concepts}-d{args.d}-l1_{args.l1:g}"
    save(table, name, heading, args.results_dir)
    return table


if __name__ == "__main__":
    main()
