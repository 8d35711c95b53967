"""Run one method on a problem, in this process or in a fresh one, and measure it.

Peak extra memory is only meaningful in a fresh process (``run_isolated``): the worker
loads the problem, warms the method up on a tiny problem, takes the baseline, runs the
method and reports the growth of its resident set size over the baseline, the larger of

- ``getrusage`` max RSS of the worker (exact, but blind to child processes), and
- the RSS of the worker plus its children (joblib workers), sampled every 50 ms;

and on CUDA ``torch.cuda.max_memory_allocated`` over the allocated baseline.

Worker usage (what ``run_isolated`` calls): ``python -m benchmarks._measure SPEC_JSON``.
"""

import json
import resource
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil
import scipy.sparse as sp
import torch
from threadpoolctl import threadpool_limits

from benchmarks._methods import METHODS, Result

ROOT = Path(__file__).resolve().parent.parent
MB = 2**20


def _max_rss_bytes():
    scale = 1 if sys.platform == "darwin" else 1024  # Linux reports kilobytes
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


class PeakMemory:
    """Peak memory growth of this process (and its children) between start and stop."""

    def __init__(self, device):
        self.cuda = torch.device(device).type == "cuda"
        self.process = psutil.Process()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _tree_rss(self):
        total = self.process.memory_info().rss
        for child in self.process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def _sample(self):
        while not self._done.wait(0.05):
            self.tree_peak = max(self.tree_peak, self._tree_rss())

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.cuda_base = torch.cuda.memory_allocated()
        self.max_rss_base = _max_rss_bytes()
        self.tree_base = self.tree_peak = self._tree_rss()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        own = _max_rss_bytes() - self.max_rss_base
        self.rss_mb = max(own, self.tree_peak - self.tree_base) / MB
        self.cuda_mb = float("nan")
        if self.cuda:
            self.cuda_mb = (torch.cuda.max_memory_allocated() - self.cuda_base) / MB


def _tiny(problem):
    """A few samples and concepts of the problem, to warm a method up (threads, pools)."""
    return {
        "C": problem["C"][:64],
        "Z": problem["Z"][:2],
        "D_raw": problem["D_raw"][:64],
        "X_raw": problem["X_raw"][:2],
    }


@contextmanager
def threads(n):
    """Limit torch and the BLAS/OpenMP pools to ``n`` threads (None: leave as is)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def measure(method, problem, l1, opts, n_samples, *, memory=True):
    """Run ``method`` on the first ``n_samples`` samples; return (Result, rss_mb, cuda_mb)."""
    cut = dict(problem, Z=problem["Z"][:n_samples])
    with threads(opts["threads"]):
        METHODS[method](_tiny(problem), l1, opts)
        if not memory:
            return METHODS[method](cut, l1, opts), float("nan"), float("nan")
        with PeakMemory(opts["device"]) as peak:
            result = METHODS[method](cut, l1, opts)
    return result, peak.rss_mb, peak.cuda_mb


def run_isolated(method, problem_path, l1, opts, n_samples, workdir):
    """``measure`` in a fresh Python process; ``problem_path`` is an .npz of the problem."""
    out = Path(workdir) / method
    spec = {
        "method": method,
        "problem": str(problem_path),
        "l1": l1,
        "opts": opts,
        "n_samples": n_samples,
        "out": str(out),
    }
    cmd = [sys.executable, "-m", "benchmarks._measure", json.dumps(spec)]
    subprocess.run(cmd, cwd=ROOT, check=True)
    meta = json.loads(out.with_suffix(".json").read_text())
    W = sp.load_npz(out.with_suffix(".npz")) if meta.pop("has_W") else None
    rss_mb, cuda_mb = meta.pop("rss_mb"), meta.pop("cuda_mb")
    return Result(W, **meta), rss_mb, cuda_mb


def _worker(spec):
    with np.load(spec["problem"]) as data:
        problem = {name: data[name] for name in data.files}
    result, rss_mb, cuda_mb = measure(
        spec["method"], problem, spec["l1"], spec["opts"], spec["n_samples"]
    )
    out = Path(spec["out"])
    if result.W is not None:
        sp.save_npz(out.with_suffix(".npz"), result.W)
    meta = {
        "has_W": result.W is not None,
        "seconds": result.seconds,
        "iters": result.iters,
        "note": result.note,
        "rss_mb": rss_mb,
        "cuda_mb": cuda_mb,
    }
    out.with_suffix(".json").write_text(json.dumps(meta))


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]))
