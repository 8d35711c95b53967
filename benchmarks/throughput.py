"""GPU mode: embeddings per minute of skplice's active-set solver on a large stream.

Synthetic problem (n_concepts=15000, d=512 by default): signals are generated on the
device in batches (untimed), centred by the mean of the first batch as
``SpLiCETransformer.fit`` would, and solved batch by batch (timed). The solutions of the
first ``--check-samples`` signals are compared with a float64 CPU solve. Run from the
repository root on a machine with a GPU::

    python -m benchmarks.throughput                               # 1,000,000 on cuda
    python -m benchmarks.throughput --batch-size 4096 16384 65536
    python -m benchmarks.throughput --device cpu --n-samples 20000   # CPU, small
"""

import argparse

import pandas as pd
import torch
from tqdm.auto import tqdm

from benchmarks._data import (
    SyntheticSignals,
    cached,
    content_hash,
    splice_process,
    synthetic_dictionary,
)
from benchmarks._measure import MB, threads
from benchmarks._methods import Stopwatch, codes_to_csr
from benchmarks._report import accuracy, save, to_text
from benchmarks.solvers import add_common_arguments, check_device
from skplice.decomposition._preprocessing import mean_of_unit_rows, process_embeddings
from skplice.decomposition._solvers import nonnegative_lasso


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=1_000_000)
    parser.add_argument("--n-concepts", type=int, default=15000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--l1", type=float, default=0.2)
    parser.add_argument("--check-samples", type=int, default=200)
    parser.add_argument(
        "--batch-size", nargs="+", type=int, default=[16384], help="one run per batch size"
    )
    add_common_arguments(parser, batch_size=False)
    parser.set_defaults(device="cuda")
    args = parser.parse_args(argv)
    check_device(parser, args.device)
    return args


def run(C, args, batch_size):
    """Stream ``args.n_samples`` signals through the solver; return (row, first Z, codes)."""
    device = torch.device(args.device)
    signals = SyntheticSignals(C, args.seed + 1)
    first = signals.sample(min(batch_size, args.n_samples))
    # The mean SpLiCETransformer.fit learns (float64), as transform casts it.
    mean = torch.as_tensor(mean_of_unit_rows(first.cpu().numpy())).to(first)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds, rounds, nonzeros, failed, check = 0.0, 0, 0, 0, None
    for start in tqdm(range(0, args.n_samples, batch_size), desc=f"batch {batch_size}"):
        n = min(batch_size, args.n_samples - start)
        Z = process_embeddings(first[:n] if start == 0 else signals.sample(n), mean, center=True)
        with Stopwatch(device) as clock:
            codes = nonnegative_lasso(Z, C, args.l1, tol=args.tol)
        seconds += clock.seconds
        rounds += int(codes.n_iter.sum())
        nonzeros += int((codes.values > 0).sum())
        failed += int((~codes.converged).sum())
        if check is None:
            k = min(args.check_samples, n)
            check = (Z[:k], codes_to_csr([codes], C.shape[0])[:k])
    row = {
        "batch size": batch_size,
        "samples": args.n_samples,
        "solve (s)": seconds,
        "embeddings/min": 60 * args.n_samples / seconds,
        "mean rounds": rounds / args.n_samples,
        "mean l0": nonzeros / args.n_samples,
        "not converged": failed,
    }
    if device.type == "cuda":
        row["peak CUDA (MB)"] = torch.cuda.max_memory_allocated(device) / MB
    return row, check


def check_against_cpu(C, Z, W, args):
    """Relative objective gap and support agreement of W with a float64 CPU solve of Z."""
    C64, Z64 = C.double().cpu(), Z.double().cpu()
    reference = codes_to_csr([nonnegative_lasso(Z64, C64, args.l1, tol=args.tol)], C.shape[0])
    table = accuracy({"device": W, "cpu64": reference}, C64.numpy(), Z64.numpy(), args.l1)
    return {
        "mean rel gap vs cpu64": table.loc["device", "mean rel gap"],
        "max rel gap vs cpu64": table.loc["device", "max rel gap"],
        "same support vs cpu64": table.loc["device", "same support"],
    }


def main(argv=None):
    """Run the throughput benchmark; return its table."""
    args = parse_args(argv)
    D_raw = cached(
        "synthetic-dictionary",
        content_hash(args.n_concepts, args.d, args.seed),
        lambda: synthetic_dictionary(args.n_concepts, args.d, args.seed),
        args.cache_dir,
    )
    C = torch.tensor(splice_process(D_raw), dtype=getattr(torch, args.dtype), device=args.device)
    rows = []
    with threads(args.threads):
        nonnegative_lasso(C[:2], C, args.l1)  # warm-up
        for batch_size in args.batch_size:
            row, (Z, W) = run(C, args, batch_size)
            rows.append(row | check_against_cpu(C, Z, W, args))
    table = pd.DataFrame(rows)
    device = torch.cuda.get_device_name(args.device) if C.is_cuda else "cpu"
    heading = (
        f"## Throughput of active_set on {device}: synthetic dictionary, "
        f"n_concepts={args.n_concepts}, d={args.d}, l1={args.l1:g} ({args.dtype}, "
        f"tol={args.tol:g}); accuracy on the first {args.check_samples} samples"
    )
    print(f"\n{heading}\n\n{to_text(table)}\n")
    name = f"throughput-k{args.n_concepts}-d{args.d}-l1_{args.l1:g}-{args.device}"
    save(table, name.replace(":", ""), heading, args.results_dir)
    return table


if __name__ == "__main__":
    main()
