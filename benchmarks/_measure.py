"""Run one method on a problem, in this process or in a fresh one, and measure it.

Peak extra memory is only meaningful in a fresh process (``run_isolated``): the worker
loads the problem, warms the method up on a tiny problem, takes the baseline, runs the
method and reports the growth of its resident set size over the baseline, the larger of

- ``getrusage`` max RSS of the worker (exact, but blind to child processes), and
- the RSS of the worker plus its children (joblib workers), sampled every 50 ms;

and on CUDA ``torch.cuda.max_memory_allocated`` over the allocated baseline (all on the
first, cold call). Every method is then timed warm the same way (``_warm``). RSS also
counts memory the C allocator keeps after a free, so for skplice's methods the worker
then solves one batch again under the torch profiler and reports what torch allocated
(``torch_allocations``): its peak, and the largest allocation of a single op.

Worker usage (what ``run_isolated`` calls): ``python -m benchmarks._measure SPEC_JSON``.
"""

import json
import os
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
# skplice methods whose torch allocations are profiled (FISTA's 20,000 iterations are not).
PROFILED = ("active_set", "transformer")
# Every method is timed the same way: the median of WARM_RUNS runs after the first,
# measured, one (a fresh process pays page faults on its first large blocks, and
# libraries warm their caches), and the first call's time is reported beside it. A
# method whose first call took more than SLOW_SECONDS runs once more only.
WARM_RUNS = 3
SLOW_SECONDS = 10.0


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


def torch_allocations(method, problem, l1, opts, n_samples):
    """Peak and largest torch allocation while ``method`` solves one batch (profiler, MB).

    The peak is the largest running total of the memory every torch op allocates (net of
    its frees) in time order, inputs included; the largest is the most one op allocates.
    The profiler sees the calling thread's ops only, so the batch is solved on one
    thread (at T threads, skplice's T parts share the same buffers and Gram budgets).
    """
    cut = dict(problem, Z=problem["Z"][: min(n_samples, opts["batch_size"])])
    cuda = torch.device(opts["device"]).type == "cuda"
    activities = [torch.profiler.ProfilerActivity.CPU]
    if cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with threads(1), torch.profiler.profile(activities=activities, profile_memory=True) as profile:
        METHODS[method](cut, l1, opts | {"threads": 1})
    events = sorted(profile.events(), key=lambda event: event.time_range.start)
    usage = np.array(
        [e.self_device_memory_usage if cuda else e.self_cpu_memory_usage for e in events]
    )
    return {
        "torch peak (MB)": max(np.cumsum(usage).max(), 0) / MB,
        "largest op alloc (MB)": usage.max() / MB,
    }


def measure(method, problem, l1, opts, n_samples, *, memory=True):
    """Run ``method`` on the first ``n_samples`` samples; return (Result, memory in MB).

    ``memory`` holds the peak RSS growth, on CUDA the peak allocated growth, and for
    methods in PROFILED the torch allocations of one batch; all NaN when not measured.
    """
    cut = dict(problem, Z=problem["Z"][:n_samples])
    cuda = torch.device(opts["device"]).type == "cuda"
    keys = ["peak RSS (MB)"] + ["peak CUDA (MB)"] * cuda
    if method in PROFILED:
        keys += ["torch peak (MB)", "largest op alloc (MB)"]
    with threads(opts["threads"]):
        METHODS[method](_tiny(problem), l1, opts)
        if not memory:
            first = METHODS[method](cut, l1, opts)
            return _warm(method, cut, l1, opts, first), dict.fromkeys(keys, float("nan"))
        with PeakMemory(opts["device"]) as peak:
            first = METHODS[method](cut, l1, opts)
        result = _warm(method, cut, l1, opts, first)
        stats = {"peak RSS (MB)": peak.rss_mb}
        if cuda:
            stats["peak CUDA (MB)"] = peak.cuda_mb
        if method in PROFILED:
            stats |= torch_allocations(method, problem, l1, opts, n_samples)
    return result, stats


def _warm(method, problem, l1, opts, first):
    """The median-time run of WARM_RUNS more (one for slow methods), with the first's time.

    ``opts["warm_runs"]``, when given, replaces WARM_RUNS.
    """
    n_runs = opts.get("warm_runs", WARM_RUNS) if first.seconds <= SLOW_SECONDS else 1
    runs = sorted(
        (METHODS[method](problem, l1, opts) for _ in range(n_runs)),
        key=lambda result: result.seconds,
    )
    median = runs[len(runs) // 2]
    median.first_seconds = first.seconds
    median.note = "; ".join(filter(None, [median.note, f"median of {n_runs} warm runs"]))
    return median


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
    # KINETO_LOG_LEVEL silences the profiler's complaint about a missing GPU.
    subprocess.run(cmd, cwd=ROOT, check=True, env=os.environ | {"KINETO_LOG_LEVEL": "5"})
    meta = json.loads(out.with_suffix(".json").read_text())
    W = sp.load_npz(out.with_suffix(".npz")) if meta.pop("has_W") else None
    memory = meta.pop("memory")
    return Result(W, **meta), memory


def _worker(spec):
    with np.load(spec["problem"]) as data:
        problem = {name: data[name] for name in data.files}
    result, memory = measure(spec["method"], problem, spec["l1"], spec["opts"], spec["n_samples"])
    out = Path(spec["out"])
    if result.W is not None:
        sp.save_npz(out.with_suffix(".npz"), result.W)
    meta = {
        "has_W": result.W is not None,
        "seconds": result.seconds,
        "iters": result.iters,
        "note": result.note,
        "cpu_seconds": result.cpu_seconds,
        "first_seconds": result.first_seconds,
        "memory": memory,
    }
    out.with_suffix(".json").write_text(json.dumps(meta))


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]))
