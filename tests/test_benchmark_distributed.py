"""The distributed benchmark runs (offline, at tiny sizes) and agrees with a local run.

(tests/test_docs.py runs examples/plot_distributed.py with the other gallery examples.)"""

import importlib
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:No pretrained weights")]

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("torch_threads", ["default", 1])
def test_benchmark_table(monkeypatch, tmp_path, torch_threads):
    torch = pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("SKPLICE_HOME", str(tmp_path / "home"))
    bench = importlib.import_module("benchmarks.distributed")
    args = ["--tiny", "--images", "12", "--image-size", "48", "--n-concepts", "30"]
    args += ["--workers", "1", "--partitions-per-worker", "2"]
    args += ["--cache-dir", str(tmp_path / "cache"), "--results-dir", str(tmp_path / "out")]
    previous = torch.get_num_threads()
    if torch_threads != "default":  # as under OMP_NUM_THREADS=1, or on a one-core machine
        torch.set_num_threads(torch_threads)
    try:
        table = bench.main(args)
    finally:
        torch.set_num_threads(previous)
    local_runs = len({previous if torch_threads == "default" else torch_threads, 1})
    assert list(table["run"]) == ["this process"] * local_runs + ["LocalCluster"]
    assert list(table["processes"]) == [1] * (local_runs + 1)
    assert (table["images/s"] > 0).all() and (table["CPU (s)"] > 0).all()
    assert (table["max |W - local|"] < 1e-6).all()
    assert table["torch threads each"].iloc[-1] == 1
    assert {p.suffix for p in (tmp_path / "out").iterdir()} == {".csv", ".md"}
