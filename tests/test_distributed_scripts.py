"""The distributed example and benchmark run (offline, at tiny sizes) and agree with a
local run."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:No pretrained weights")]

ROOT = Path(__file__).resolve().parents[1]

_RUN_EXAMPLE = """
import runpy, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
runpy.run_path(sys.argv[1], run_name="__main__")
assert plt.get_fignums(), "no figure"
"""


def test_example_runs_as_a_script(tmp_path):
    """Run the way a user (or a gallery test) runs it: as __main__, from a file, so that
    spawned workers re-import it."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _RUN_EXAMPLE, str(ROOT / "examples" / "plot_distributed.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "identical to the local run" in result.stdout


def test_benchmark_table(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("SKPLICE_HOME", str(tmp_path / "home"))
    bench = importlib.import_module("benchmarks.distributed")
    args = ["--tiny", "--images", "12", "--image-size", "48", "--n-concepts", "30"]
    args += ["--workers", "1", "--partitions-per-worker", "2"]
    args += ["--cache-dir", str(tmp_path / "cache"), "--results-dir", str(tmp_path / "out")]
    table = bench.main(args)
    assert list(table["run"]) == ["this process", "this process", "LocalCluster"]
    assert list(table["processes"]) == [1, 1, 1]
    assert (table["images/s"] > 0).all() and (table["CPU (s)"] > 0).all()
    assert (table["max |W - local|"] < 1e-6).all()
    assert table["torch threads each"].iloc[-1] == 1
    assert {p.suffix for p in (tmp_path / "out").iterdir()} == {".csv", ".md"}
